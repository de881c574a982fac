"""The live preview's pixels: which rows of a layer to read, the layer shrunk to ≈160 px, and the
engine's answer as 8-bit RGBA for the docker's picture (no Krita, no Qt: unit-tested alone).

The UI thread reads only the rows the preview uses (one pixelData() call per row); the worker
picks the columns with slices (C speed, no per-pixel Python loop) and converts for display.
"""

import math
from array import array

PREVIEW_SIZE = 160               # longest side of the preview's working image, in pixels
PREVIEW_INTERVAL_S = 0.25        # the engine sends a refined preview this often
_DISPLAY_LUT_SIZE = 4096


def step_for(width: int, height: int, size: int = PREVIEW_SIZE) -> int:
    """Take every step-th row and column so that the longest side is at most `size`."""
    return max(1, int(math.ceil(max(width, height) / float(size))))


def shrunk_size(width: int, height: int, step: int):
    return (width + step - 1) // step, (height + step - 1) // step


def sampled_rows(height: int, step: int):
    """The rows (0-based, within the region) the preview reads."""
    return range(0, height, step)


def pick_columns(rows_data: bytes, width: int, row_count: int, pixel_bytes: int, step: int) -> bytes:
    """Every step-th pixel of each of `row_count` rows of `width` pixels (rows one after another)."""
    if step == 1:
        return bytes(rows_data)
    stride = width * pixel_bytes
    new_width = (width + step - 1) // step
    out = bytearray(new_width * pixel_bytes * row_count)
    out_stride = new_width * pixel_bytes
    view = memoryview(bytes(rows_data))
    for row in range(row_count):
        line = view[row * stride:(row + 1) * stride]
        target = row * out_stride
        for k in range(pixel_bytes):
            out[target + k:target + out_stride:pixel_bytes] = line[k::step * pixel_bytes]
    return bytes(out)


def _srgb_encode(linear: float) -> float:
    if linear <= 0.0031308:
        return 12.92 * linear
    return 1.055 * linear ** (1 / 2.4) - 0.055


_LUTS = {}


def _lut(transfer: str):
    """0..4095 (a sample 0..1) -> 0..255 as the screen shows it."""
    if transfer not in _LUTS:
        encode = _srgb_encode if transfer == "linear" else (lambda value: value)
        _LUTS[transfer] = bytes(int(round(255 * min(1.0, max(0.0, encode(i / (_DISPLAY_LUT_SIZE - 1))))))
                                for i in range(_DISPLAY_LUT_SIZE))
    return _LUTS[transfer]


def _to_bytes8(data: bytes, dtype: str, transfer: str) -> bytes:
    """Samples (u8/u16/f32, 0..1 or 0..max) -> one byte each, encoded for the screen."""
    if dtype == "u8" and transfer != "linear":
        return bytes(data)
    lut = _lut(transfer)
    top = _DISPLAY_LUT_SIZE - 1
    if dtype == "u8":
        return bytes(lut[(value * top + 127) // 255] for value in bytes(data))
    if dtype == "u16":
        values = array("H")
        values.frombytes(bytes(data))
        return bytes(lut[(value * top + 32767) // 65535] for value in values)
    values = array("f")
    values.frombytes(bytes(data))
    return bytes(lut[0 if not value > 0 else top if value >= 1 else int(value * top + 0.5)] for value in values)


def display_rgba8(data: bytes, width: int, height: int, channels: int, dtype: str, transfer: str = "srgb") -> bytes:
    """Protocol pixels (R, G, B, A or gray, alpha; any dtype) -> RGBA 8-bit for QImage.Format_RGBA8888.

    Alpha is never transfer-encoded. Channels 1 and 3 get an opaque alpha.
    """
    count = width * height
    samples = _to_bytes8(data, dtype, "srgb")
    if transfer == "linear":
        color = _to_bytes8(data, dtype, "linear")
    else:
        color = samples
    out = bytearray(b"\xff" * (count * 4))
    if channels in (1, 2):
        gray = color[0::channels]
        for k in range(3):
            out[k::4] = gray
        if channels == 2:
            out[3::4] = samples[1::2]
    else:
        for k in range(3):
            out[k::4] = color[k::channels]
        if channels == 4:
            out[3::4] = samples[3::4]
    return bytes(out)
