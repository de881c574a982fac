"""The engine protocol, version 1: message types, limits, pixel descriptors, building and encoding
(validation.py checks what arrives).

Normative description: docs/protocol.md. Every message is multipart: frame 0 is a msgpack map
{"v": 1, "type": ..., ...}; further frames are raw pixel (or file) bytes that descriptors in the
map reference by index ({"width", "height", "channels", "dtype", "frame"}).

Standard library + msgpack only (pyzmq is not needed here), Python 3.9+: this module is copied
into the editors' plugin folders.
"""

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

# submit.priority: a preview runs ahead of normal jobs (pausing a running one between iterations)
# and replaces the same client's previous preview, which ends "cancelled" with reason "superseded".
NORMAL = "normal"
PREVIEW = "preview"
PRIORITIES = (NORMAL, PREVIEW)
SUPERSEDED = "superseded"

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
E_BAD_INPUT = "bad_input"              # pixels that cannot go together (e.g. a previous frame of another size)

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
# Every option submit.options takes; the engine's welcome lists their names (`options`).
ALL_OPTIONS_BY_NAME = dict(job_options.OPTIONS_BY_NAME, **EXTRA_OPTIONS_BY_NAME)

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
    "client_timeout_s": 4.0,                # a client silent this long loses its jobs (clients beat from a thread)
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
# Building client messages

def build_submit(image: Pixels, styles: Sequence[StyleRef], options: Optional[Dict[str, Any]] = None,
                 mask: Optional[Pixels] = None, req: Optional[int] = None, priority: str = NORMAL,
                 previous_frame: Optional[Sequence[Pixels]] = None) -> List[Any]:
    """-> frames of a submit message (header + pixel frames). previous_frame: None, or (the previous
    frame's content, its result) for frame k > 0 of a sequence (docs/protocol.md, "Frames")."""
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
    if previous_frame is not None:
        if isinstance(previous_frame, Pixels) or len(previous_frame) != 2:
            raise TypeError("previous_frame must be a pair (previous content, previous result) of Pixels")
        header["previous_frame"] = {"content": add(previous_frame[0]), "result": add(previous_frame[1])}
    header["options"] = dict(options or {})
    if priority != NORMAL:
        header["priority"] = priority
    return encode(header, frames)


def error_message(code: str, message_text: str, field: Optional[str] = None, req: Any = None,
                  job: Any = None) -> Dict[str, Any]:
    return message(ERROR, code=code, message=message_text, field=field, req=req, job=job)
