"""The engine protocol, version 1: message building, encoding, decoding and validation.

Normative description: docs/protocol.md. Every message is multipart: frame 0 is a msgpack map
{"v": 1, "type": ..., ...}; further frames are raw pixel (or file) bytes that descriptors in the
map reference by index ({"width", "height", "channels", "dtype", "frame"}).

Standard library + msgpack only (pyzmq is not needed here), Python 3.9+: this module is copied
into the editors' plugin folders.
"""

import math
from typing import Any, Dict, List, Optional, Sequence

import msgpack

from . import options as job_options

PROTOCOL_VERSION = 1

# Message types, client -> engine.
HELLO = "hello"
SUBMIT = "submit"
CANCEL = "cancel"
STATUS = "status"
SHUTDOWN = "shutdown"
HEARTBEAT = "heartbeat"
BYE = "bye"
STYLE_LIST = "style_list"
STYLE_ADD = "style_add"
STYLE_RENAME = "style_rename"
STYLE_REMOVE = "style_remove"
STYLE_EXPORT = "style_export"
STYLE_IMPORT = "style_import"
# Message types, engine -> client.
WELCOME = "welcome"
ACCEPTED = "accepted"
PROGRESS = "progress"
RESULT = "result"
ERROR = "error"
CANCELLED = "cancelled"
STATUS_REPORT = "status_report"
STYLES = "styles"
STYLE = "style"
EXPORTED = "exported"
OK = "ok"

CLIENT_TYPES = (HELLO, SUBMIT, CANCEL, STATUS, SHUTDOWN, HEARTBEAT, BYE, STYLE_LIST, STYLE_ADD,
                STYLE_RENAME, STYLE_REMOVE, STYLE_EXPORT, STYLE_IMPORT)
JOB_END_TYPES = (RESULT, ERROR, CANCELLED)

# Error codes (machine-readable; the message says the rest in a sentence).
E_BAD_MESSAGE = "bad_message"          # frame 0 is not a msgpack map, or frames are missing
E_VERSION = "unsupported_version"      # "v" is not a version this engine speaks
E_UNKNOWN_TYPE = "unknown_type"
E_MISSING = "missing_field"
E_INVALID = "invalid_field"            # wrong type or out of range
E_TOO_LARGE = "too_large"              # a limit (pixels, bytes, styles) is exceeded
E_FRAME = "bad_frame"                  # a frame index is wrong or its length doesn't match
E_QUEUE_FULL = "queue_full"
E_UNKNOWN_JOB = "unknown_job"
E_NOT_ALLOWED = "not_allowed"          # e.g. shutdown from a remote client
E_UNSUPPORTED = "unsupported"          # e.g. the style library is not available in this engine
E_NOT_FOUND = "not_found"              # a style file or library id that does not exist
E_CLIENT_GONE = "client_gone"
E_SHUTTING_DOWN = "shutting_down"
E_INTERNAL = "internal"

DTYPES = {"u8": 1, "u16": 2, "f32": 4}
TRANSFERS = ("srgb", "linear")
F32_SCALES = (1.0, 255.0)

# Options sent in submit.options besides the engine core's table (shared/options.py).
EXTRA_OPTIONS = (
    job_options.Option("preview_interval_s", "float", 2.0,
                       "seconds between previews (0 = no previews)", 0.0, 3600.0),
    job_options.Option("feather", "int", 4, "soft edge inside the selection, in pixels", 0, 256),
)
EXTRA_OPTIONS_BY_NAME = {option.name: option for option in EXTRA_OPTIONS}

DEFAULT_LIMITS = {
    "max_pixels": 4096 * 4096 * 2,          # per image (layer, mask or style)
    "max_styles": 8,
    "max_iterations": 10000,
    "max_header_bytes": 1 << 20,            # frame 0 of a client message
    "max_frames": 16,
    "max_queue": 32,                        # jobs waiting (not counting the running one)
    "max_queued_bytes": 1 << 30,            # pixel bytes all waiting jobs may hold together
    "max_name_chars": 1000,
    "max_path_chars": 4096,
    "heartbeat_interval_s": 1.0,
    "client_timeout_s": 30.0,               # a client silent this long loses its jobs
}


def max_frame_bytes(limits: Dict[str, Any]) -> int:
    """The largest pixel frame the limits allow (float RGBA at max_pixels)."""
    return int(limits["max_pixels"]) * 4 * DTYPES["f32"]


class ProtocolError(Exception):
    """A message broke the contract: `code` (machine-readable), `field` (or None), `message`."""

    def __init__(self, code: str, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------------------------
# Pixels and style references (what the client API passes around)

class Pixels:
    """An image buffer: little-endian, row-major, interleaved channels R, G, B, A (1-4 of them).

    `data` is bytes-like (bytes, bytearray or memoryview) of exactly width*height*channels*size.
    `transfer` is "srgb" (the usual) or "linear" (linear-light float data, e.g. scRGB).
    `scale` (f32 only) is the value of full intensity: 1.0 (the default) or 255.0 (lets a NumPy
    client send the engine's own 0..255 floats and get them back bit for bit).
    """

    __slots__ = ("width", "height", "channels", "dtype", "data", "transfer", "scale")

    def __init__(self, width: int, height: int, channels: int, dtype: str, data: Any,
                 transfer: str = "srgb", scale: float = 1.0):
        self.width = width
        self.height = height
        self.channels = channels
        self.dtype = dtype
        self.data = data
        self.transfer = transfer
        self.scale = scale

    @property
    def expected_bytes(self) -> int:
        return self.width * self.height * self.channels * DTYPES[self.dtype]

    def descriptor(self, frame: int) -> Dict[str, Any]:
        desc = {"width": self.width, "height": self.height, "channels": self.channels,
                "dtype": self.dtype, "frame": frame}
        if self.transfer != "srgb":
            desc["transfer"] = self.transfer
        if self.scale != 1.0:
            desc["scale"] = float(self.scale)
        return desc

    def __repr__(self) -> str:
        return "Pixels(%dx%d, %d channel(s), %s%s)" % (
            self.width, self.height, self.channels, self.dtype,
            "" if self.transfer == "srgb" else ", " + self.transfer)


class StyleRef:
    """One style of a job: a file on the engine's machine, inline pixels, or a library id."""

    __slots__ = ("kind", "weight", "path", "image", "name", "style_id")

    def __init__(self, kind: str, weight: float = 1.0, path: Optional[str] = None,
                 image: Optional[Pixels] = None, name: Optional[str] = None,
                 style_id: Optional[str] = None):
        self.kind = kind
        self.weight = weight
        self.path = path
        self.image = image      # the Pixels of an inline style
        self.name = name
        self.style_id = style_id

    @classmethod
    def file(cls, path: str, weight: float = 1.0) -> "StyleRef":
        return cls("file", weight, path=path)

    @classmethod
    def pixels(cls, pixels: Pixels, name: str = "", weight: float = 1.0) -> "StyleRef":
        return cls("pixels", weight, image=pixels, name=name)

    @classmethod
    def library(cls, style_id: str, weight: float = 1.0) -> "StyleRef":
        return cls("library", weight, style_id=style_id)

    def __repr__(self) -> str:
        target = {"file": self.path, "pixels": self.image, "library": self.style_id}[self.kind]
        return "StyleRef.%s(%r, weight=%g)" % (self.kind, target, self.weight)


# ---------------------------------------------------------------------------------------------
# Encoding and decoding

def pack_header(header: Dict[str, Any]) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


def message(msg_type: str, **fields: Any) -> Dict[str, Any]:
    header = {"v": PROTOCOL_VERSION, "type": msg_type}
    header.update((key, value) for key, value in fields.items() if value is not None)
    return header


def encode(header: Dict[str, Any], frames: Sequence[Any] = ()) -> List[Any]:
    """A header map and its data frames -> the list of frames to send."""
    return [pack_header(header)] + list(frames)


def decode_header(frame0: bytes, max_bytes: Optional[int] = None) -> Dict[str, Any]:
    """Frame 0 -> the header map, checked for "v" and "type"; raises ProtocolError."""
    if max_bytes is not None and len(frame0) > max_bytes:
        raise ProtocolError(E_TOO_LARGE, "the message header is %d bytes, more than the limit of %d"
                            % (len(frame0), max_bytes))
    try:
        header = msgpack.unpackb(frame0, raw=False, use_list=True, strict_map_key=False)
    except Exception as error:  # msgpack raises many kinds (ExtraData, ValueError, UnicodeDecodeError, ...)
        raise ProtocolError(E_BAD_MESSAGE, "frame 0 is not a valid msgpack map (%s)"
                            % type(error).__name__)
    if not isinstance(header, dict):
        raise ProtocolError(E_BAD_MESSAGE, "frame 0 must be a msgpack map, got %s" % _kind(header))
    version = header.get("v")
    if "v" not in header:
        raise ProtocolError(E_MISSING, "the message has no protocol version \"v\"", "v")
    if isinstance(version, bool) or not isinstance(version, int) or version != PROTOCOL_VERSION:
        raise ProtocolError(E_VERSION, "protocol version %r is not supported; this side speaks version %d"
                            % (version, PROTOCOL_VERSION), "v")
    msg_type = header.get("type")
    if not isinstance(msg_type, str):
        raise ProtocolError(E_MISSING if msg_type is None else E_INVALID,
                            "the message needs a string \"type\"", "type")
    return header


def _kind(value: Any) -> str:
    names = {dict: "a map", list: "a list", str: "a string", bytes: "bytes", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "nil"}
    return names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# Field validation (used by the engine on arrival; the client validates what it sends too)

def _field(parent: str, name: str) -> str:
    return "%s.%s" % (parent, name) if parent else name


def require(header: Dict[str, Any], name: str, kind: type, parent: str = "", optional: bool = False,
            default: Any = None) -> Any:
    field = _field(parent, name)
    if name not in header or header[name] is None:
        if optional:
            return default
        raise ProtocolError(E_MISSING, "%s is missing" % field, field)
    value = header[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ProtocolError(E_INVALID, "%s must be an integer, got %s" % (field, _kind(value)), field)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(E_INVALID, "%s must be a number, got %s" % (field, _kind(value)), field)
        if not math.isfinite(value):
            raise ProtocolError(E_INVALID, "%s must be a finite number" % field, field)
        return float(value)
    if kind not in (int, float) and not isinstance(value, kind):
        raise ProtocolError(E_INVALID, "%s must be %s, got %s" % (field, _kind(kind()), _kind(value)), field)
    return value


def require_text(header: Dict[str, Any], name: str, max_chars: int, parent: str = "",
                 optional: bool = False, allow_empty: bool = True) -> Optional[str]:
    value = require(header, name, str, parent, optional)
    field = _field(parent, name)
    if value is None:
        return None
    if len(value) > max_chars:
        raise ProtocolError(E_TOO_LARGE, "%s is %d characters long, more than the limit of %d"
                            % (field, len(value), max_chars), field)
    if not allow_empty and not value.strip():
        raise ProtocolError(E_INVALID, "%s must not be empty" % field, field)
    if "\x00" in value:
        raise ProtocolError(E_INVALID, "%s must not contain a NUL character" % field, field)
    return value


def _in_range(value: float, low: float, high: float, field: str) -> None:
    if value < low or value > high:
        raise ProtocolError(E_INVALID, "%s must be between %g and %g, got %r" % (field, low, high, value), field)


class FrameSet:
    """The data frames of one message; each may be referenced by exactly one descriptor."""

    def __init__(self, frames: Sequence[Any]):
        self.frames = list(frames)     # frames[0] is the header frame
        self.used = set()

    def take(self, index: Any, field: str) -> Any:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ProtocolError(E_INVALID, "%s must be a frame index (an integer)" % field, field)
        if index < 1 or index >= len(self.frames):
            raise ProtocolError(E_FRAME, "%s refers to frame %d, but the message has frames 1..%d"
                                % (field, index, len(self.frames) - 1), field)
        if index in self.used:
            raise ProtocolError(E_FRAME, "%s refers to frame %d, which another field already uses"
                                % (field, index), field)
        self.used.add(index)
        return self.frames[index]

    def check_all_used(self) -> None:
        unused = sorted(set(range(1, len(self.frames))) - self.used)
        if unused:
            raise ProtocolError(E_FRAME, "frame(s) %s are not referenced by any field"
                                % ", ".join(map(str, unused)))


def frame_length(frame: Any) -> int:
    if hasattr(frame, "buffer"):       # a zmq.Frame received with copy=False
        return len(frame.buffer)
    return len(frame)


def frame_bytes(frame: Any) -> Any:
    """The bytes-like content of a frame (zero-copy memoryview for zmq.Frame)."""
    return frame.buffer if hasattr(frame, "buffer") else frame


def validate_pixels(desc: Any, frames: FrameSet, field: str, limits: Dict[str, Any],
                    channels: Sequence[int] = (1, 2, 3, 4), dtypes: Sequence[str] = tuple(DTYPES)) -> Pixels:
    """A pixel descriptor + its frame -> Pixels, checking every field and the frame's length."""
    if not isinstance(desc, dict):
        raise ProtocolError(E_INVALID, "%s must be a map describing pixels, got %s" % (field, _kind(desc)), field)
    width = require(desc, "width", int, field)
    height = require(desc, "height", int, field)
    _in_range(width, 1, 1 << 20, field + ".width")
    _in_range(height, 1, 1 << 20, field + ".height")
    if width * height > limits["max_pixels"]:
        raise ProtocolError(E_TOO_LARGE, "%s is %dx%d = %d pixels, more than the limit of %d"
                            % (field, width, height, width * height, limits["max_pixels"]), field)
    count = require(desc, "channels", int, field)
    if count not in channels:
        raise ProtocolError(E_INVALID, "%s.channels must be one of %s, got %d"
                            % (field, ", ".join(map(str, channels)), count), field + ".channels")
    dtype = require(desc, "dtype", str, field)
    if dtype not in dtypes:
        raise ProtocolError(E_INVALID, "%s.dtype must be one of %s, got %r"
                            % (field, ", ".join(dtypes), dtype[:20]), field + ".dtype")
    transfer = require(desc, "transfer", str, field, optional=True, default="srgb")
    if transfer not in TRANSFERS:
        raise ProtocolError(E_INVALID, "%s.transfer must be one of %s, got %r"
                            % (field, ", ".join(TRANSFERS), transfer[:20]), field + ".transfer")
    frame = frames.take(desc.get("frame"), field + ".frame")
    scale = require(desc, "scale", float, field, optional=True, default=1.0)
    if scale not in F32_SCALES or (scale != 1.0 and dtype != "f32"):
        raise ProtocolError(E_INVALID, "%s.scale must be 1 or 255, and only f32 pixels may use 255"
                            % field, field + ".scale")
    pixels = Pixels(width, height, count, dtype, frame_bytes(frame), transfer, scale)
    length = frame_length(frame)
    if length != pixels.expected_bytes:
        raise ProtocolError(E_FRAME, "%s: frame %d has %d bytes, but %dx%d pixels x %d channel(s) x %d byte(s) = %d"
                            % (field, desc["frame"], length, width, height, count, DTYPES[dtype],
                               pixels.expected_bytes), field + ".frame")
    return pixels


def validate_job_options(values: Any, limits: Dict[str, Any]) -> Dict[str, Any]:
    """submit.options -> the engine core's validated options plus preview_interval_s and feather."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ProtocolError(E_INVALID, "options must be a map, got %s" % _kind(values), "options")
    core = {}
    extra = {option.name: option.default for option in EXTRA_OPTIONS}
    for key, value in values.items():
        if not isinstance(key, str) or (key not in job_options.OPTIONS_BY_NAME and key not in EXTRA_OPTIONS_BY_NAME):
            known = sorted(list(job_options.OPTIONS_BY_NAME) + list(EXTRA_OPTIONS_BY_NAME))
            raise ProtocolError(E_INVALID, "unknown option %r (known: %s)" % (str(key)[:40], ", ".join(known)),
                                "options.%s" % str(key)[:40])
        if key in EXTRA_OPTIONS_BY_NAME:
            core_or_extra = extra
        else:
            core_or_extra = core
        core_or_extra[key] = value
    try:
        for key in EXTRA_OPTIONS_BY_NAME:
            extra[key] = job_options.validate_option(EXTRA_OPTIONS_BY_NAME[key], extra[key])
        validated = job_options.validate_options(core)
    except job_options.OptionError as error:
        raise ProtocolError(E_INVALID, error.message, error.field)
    if validated["iterations"] > limits["max_iterations"]:
        raise ProtocolError(E_TOO_LARGE, "options.iterations is %d, more than this engine's limit of %d"
                            % (validated["iterations"], limits["max_iterations"]), "options.iterations")
    validated.update(extra)
    return validated


def validate_styles(values: Any, frames: FrameSet, limits: Dict[str, Any]) -> List[StyleRef]:
    if not isinstance(values, list):
        raise ProtocolError(E_INVALID if values is not None else E_MISSING,
                            "styles must be a list of style references", "styles")
    if not values:
        raise ProtocolError(E_INVALID, "styles must name at least one style", "styles")
    if len(values) > limits["max_styles"]:
        raise ProtocolError(E_TOO_LARGE, "styles has %d entries, more than the limit of %d"
                            % (len(values), limits["max_styles"]), "styles")
    styles = []
    for index, item in enumerate(values):
        field = "styles[%d]" % index
        if not isinstance(item, dict):
            raise ProtocolError(E_INVALID, "%s must be a map, got %s" % (field, _kind(item)), field)
        kind = require(item, "kind", str, field)
        weight = require(item, "weight", float, field, optional=True, default=1.0)
        _in_range(weight, 0.0, 1e6, field + ".weight")
        if kind == "file":
            path = require_text(item, "path", limits["max_path_chars"], field, allow_empty=False)
            styles.append(StyleRef.file(path, weight))
        elif kind == "pixels":
            pixels = validate_pixels(item.get("image"), frames, field + ".image", limits)
            name = require_text(item, "name", limits["max_name_chars"], field, optional=True) or ""
            styles.append(StyleRef.pixels(pixels, name, weight))
        elif kind == "library":
            style_id = require_text(item, "id", 200, field, allow_empty=False)
            styles.append(StyleRef.library(style_id, weight))
        else:
            raise ProtocolError(E_INVALID, "%s.kind must be file, pixels or library, got %r"
                                % (field, kind[:40]), field + ".kind")
    return styles


class SubmitRequest:
    """A validated submit: image, mask (or None), styles, options (core + extras)."""

    __slots__ = ("image", "mask", "styles", "options")

    def __init__(self, image: Pixels, mask: Optional[Pixels], styles: List[StyleRef], options: Dict[str, Any]):
        self.image = image
        self.mask = mask
        self.styles = styles
        self.options = options


def validate_submit(header: Dict[str, Any], frames: Sequence[Any], limits: Dict[str, Any]) -> SubmitRequest:
    frame_set = FrameSet(frames)
    if "image" not in header:
        raise ProtocolError(E_MISSING, "image is missing", "image")
    image = validate_pixels(header["image"], frame_set, "image", limits)
    mask = None
    if header.get("mask") is not None:
        mask = validate_pixels(header["mask"], frame_set, "mask", limits, channels=(1,), dtypes=("u8",))
        if (mask.width, mask.height) != (image.width, image.height):
            raise ProtocolError(E_INVALID, "mask is %dx%d but the image is %dx%d; they must match"
                                % (mask.width, mask.height, image.width, image.height), "mask")
    styles = validate_styles(header.get("styles"), frame_set, limits)
    options = validate_job_options(header.get("options"), limits)
    frame_set.check_all_used()
    return SubmitRequest(image, mask, styles, options)


# ---------------------------------------------------------------------------------------------
# Building client messages

def build_submit(image: Pixels, styles: Sequence[StyleRef], options: Optional[Dict[str, Any]] = None,
                 mask: Optional[Pixels] = None, req: Optional[int] = None) -> List[Any]:
    """-> frames of a submit message (header + pixel frames)."""
    frames: List[Any] = []

    def add(pixels: Pixels) -> Dict[str, Any]:
        if not isinstance(pixels, Pixels):
            raise TypeError("expected a Pixels, got %r" % (pixels,))
        if len(pixels.data) != pixels.expected_bytes:
            raise ValueError("%r holds %d bytes, expected %d" % (pixels, len(pixels.data), pixels.expected_bytes))
        frames.append(pixels.data)
        return pixels.descriptor(len(frames))

    header = message(SUBMIT, req=req, image=add(image))
    if mask is not None:
        header["mask"] = add(mask)
    style_maps = []
    for style in styles:
        entry: Dict[str, Any] = {"kind": style.kind, "weight": float(style.weight)}
        if style.kind == "file":
            entry["path"] = style.path
        elif style.kind == "pixels":
            entry["image"] = add(style.image)
            entry["name"] = style.name or ""
        elif style.kind == "library":
            entry["id"] = style.style_id
        else:
            raise ValueError("unknown style kind %r" % style.kind)
        style_maps.append(entry)
    header["styles"] = style_maps
    header["options"] = dict(options or {})
    return encode(header, frames)


def error_message(code: str, message_text: str, field: Optional[str] = None, req: Any = None,
                  job: Any = None) -> Dict[str, Any]:
    return message(ERROR, code=code, message=message_text, field=field, req=req, job=job)
