"""Krita layer bytes <-> protocol pixel frames (no Krita, no Qt: unit-tested alone).

The protocol wants R, G, B, A order and u8 / u16 / f32 samples. Krita stores integer RGBA as
B, G, R, A, float RGBA as R, G, B, A, and has a half-float depth the protocol lacks (sent as f32).
Conversions use slice assignment and struct (no per-pixel Python loop); the engine worker runs
them, off Krita's UI thread.
"""

import struct
from array import array

# Krita depth -> (protocol dtype, bytes per sample in Krita)
DEPTHS = {"U8": ("u8", 1), "U16": ("u16", 2), "F16": ("f32", 2), "F32": ("f32", 4)}
MODELS = {"RGBA": 4, "GRAYA": 2}
_BGR_DEPTHS = ("U8", "U16")


class UnsupportedLayer(ValueError):
    """A layer whose color model or depth the engine cannot take; str() says what to do."""


def wire_format(layer_name: str, color_model: str, color_depth: str):
    """(channels, dtype) to send a layer as; raises UnsupportedLayer with one clear sentence."""
    if color_model not in MODELS:
        raise UnsupportedLayer(
            "Layer \"%s\" is %s; Neural Style works on RGB or grayscale layers: convert it with "
            "Image ▸ Convert Image Color Space (or Layer ▸ Convert Layer Color Space) first."
            % (layer_name, color_model))
    if color_depth not in DEPTHS:
        raise UnsupportedLayer(
            "Layer \"%s\" has %s channels; Neural Style works on 8-bit, 16-bit integer and 16/32-bit "
            "float layers: convert its color space first." % (layer_name, color_depth))
    return MODELS[color_model], DEPTHS[color_depth][0]


def pixel_bytes(color_model: str, color_depth: str) -> int:
    """Bytes per pixel in Krita's pixelData() for a supported model and depth."""
    return MODELS[color_model] * DEPTHS[color_depth][1]


def transfer_of(profile_name: str) -> str:
    """"linear" for linear-light profiles (Krita's default for 16-bit and float: *-g10.icc, scRGB)."""
    name = (profile_name or "").lower()
    return "linear" if "g10" in name or "linear" in name else "srgb"


def swap_red_blue(data, sample_size: int) -> bytearray:
    """Swap the 1st and 3rd sample of every 4-sample pixel (BGRA <-> RGBA) for any sample size."""
    out = bytearray(data)
    stride = 4 * sample_size
    for k in range(sample_size):
        out[k::stride] = data[2 * sample_size + k::stride]
        out[2 * sample_size + k::stride] = data[k::stride]
    return out


# Samples per struct call: bounds the temporary tuple of Python floats, and releases the GIL often
# enough (the conversion runs in the worker thread) for Krita's UI thread to keep drawing.
_CHUNK = 1 << 16


def half_to_float(data) -> bytes:
    view = memoryview(bytes(data))
    out = array("f")
    for start in range(0, len(view) // 2, _CHUNK):
        chunk = view[2 * start:2 * (start + _CHUNK)]
        out.extend(struct.unpack("<%de" % (len(chunk) // 2), chunk))
    return out.tobytes()


def _pack_half(values) -> bytes:
    try:
        return struct.pack("<%de" % len(values), *values)
    except OverflowError:   # half floats end at 65504; the engine sends 0..1, this only guards odd values
        return struct.pack("<%de" % len(values), *(min(65504.0, max(-65504.0, v)) for v in values))


def float_to_half(data) -> bytes:
    values = array("f")
    values.frombytes(bytes(data))
    return b"".join(_pack_half(values[start:start + _CHUNK]) for start in range(0, len(values), _CHUNK))


def krita_to_wire(data, color_model: str, color_depth: str) -> bytes:
    """Krita's pixelData() bytes -> protocol frame bytes (R, G, B, A order, u8/u16/f32)."""
    data = bytes(data)
    if color_model == "RGBA" and color_depth in _BGR_DEPTHS:
        data = bytes(swap_red_blue(data, DEPTHS[color_depth][1]))
    if color_depth == "F16":
        data = half_to_float(data)
    return data


def wire_to_krita(data, color_model: str, color_depth: str) -> bytes:
    """Protocol frame bytes (same format as sent) -> bytes for Krita's setPixelData()."""
    data = bytes(data)
    if color_depth == "F16":
        data = float_to_half(data)
    if color_model == "RGBA" and color_depth in _BGR_DEPTHS:
        data = bytes(swap_red_blue(data, DEPTHS[color_depth][1]))
    return data
