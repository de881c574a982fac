"""Checking what a client sent, field by field, against protocol v1 and the engine's limits.

Used by the engine on arrival. Every failure is a ProtocolError naming the field (`styles[0].path`)
and what was expected. Standard library + msgpack only, like protocol.py.
"""

import math
import os
from typing import Any, Dict, List, Optional, Sequence

from . import options as job_options
from .protocol import (ALL_OPTIONS_BY_NAME, DTYPES, EXTRA_OPTIONS, EXTRA_OPTIONS_BY_NAME, E_BAD_INPUT, E_FRAME,
                       E_INVALID, E_MISSING, E_TOO_LARGE, F32_SCALES, NORMAL, PRIORITIES, Pixels, ProtocolError,
                       StyleRef, TRANSFERS, _kind)


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


def require_path(header: Dict[str, Any], name: str, max_chars: int, parent: str = "") -> str:
    """A file path on the engine's machine: relative paths are refused (the engine's working folder
    means nothing to a client)."""
    path = require_text(header, name, max_chars, parent, allow_empty=False)
    if not os.path.isabs(path):
        field = _field(parent, name)
        raise ProtocolError(E_INVALID, "%s must be an absolute path on the engine's machine, got %r"
                            % (field, path[:200]), field)
    return path


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
        if not isinstance(key, str) or key not in ALL_OPTIONS_BY_NAME:
            known = ", ".join(sorted(ALL_OPTIONS_BY_NAME))
            raise ProtocolError(E_INVALID, "unknown option %r (known: %s)" % (str(key)[:40], known),
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
            styles.append(StyleRef.file(require_path(item, "path", limits["max_path_chars"], field), weight))
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


def validate_previous_frame(value: Any, image: Pixels, frames: FrameSet, limits: Dict[str, Any]) -> tuple:
    """submit.previous_frame -> (content, result) Pixels, each exactly the image's width x height."""
    if not isinstance(value, dict):
        raise ProtocolError(E_BAD_INPUT, "previous_frame must be a map {content, result} of pixel descriptors, got %s"
                            % _kind(value), "previous_frame")
    pair = []
    for name in ("content", "result"):
        field = "previous_frame." + name
        if value.get(name) is None:
            raise ProtocolError(E_BAD_INPUT, "%s is missing: a previous frame needs its content and its result"
                                % field, field)
        pixels = validate_pixels(value[name], frames, field, limits)
        if (pixels.width, pixels.height) != (image.width, image.height):
            raise ProtocolError(E_BAD_INPUT, "%s: expected %dx%d like image, got %dx%d"
                                % (field, image.width, image.height, pixels.width, pixels.height), field)
        pair.append(pixels)
    return tuple(pair)


class SubmitRequest:
    """A validated submit: image, mask (or None), styles, options (core + extras), priority, and
    previous_frame (None, or the (content, result) Pixels of the sequence's previous frame)."""

    __slots__ = ("image", "mask", "styles", "options", "priority", "previous_frame")

    def __init__(self, image: Pixels, mask: Optional[Pixels], styles: List[StyleRef], options: Dict[str, Any],
                 priority: str = "normal", previous_frame: Optional[tuple] = None):
        self.image = image
        self.mask = mask
        self.styles = styles
        self.options = options
        self.priority = priority
        self.previous_frame = previous_frame


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
    previous_frame = None
    if header.get("previous_frame") is not None:
        previous_frame = validate_previous_frame(header["previous_frame"], image, frame_set, limits)
    styles = validate_styles(header.get("styles"), frame_set, limits)
    options = validate_job_options(header.get("options"), limits)
    priority = header.get("priority", NORMAL)
    if not isinstance(priority, str) or priority not in PRIORITIES:
        raise ProtocolError(E_INVALID, "priority must be one of %s, got %r"
                            % (", ".join(repr(name) for name in PRIORITIES), priority if isinstance(priority, str)
                               and len(priority) <= 40 else _kind(priority)), "priority")
    frame_set.check_all_used()
    return SubmitRequest(image, mask, styles, options, priority, previous_frame)
