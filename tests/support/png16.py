"""Reading back the 16-bit PNGs the engine writes (engine_server/core/png16.py), for the tests:
Pillow reads 16-bit RGB(A) PNGs as 8-bit, so the tests decode them here (unfiltered rows only)."""

import struct
import zlib

import numpy as np


def read_png16(path):
    """Read back a 16-bit RGB(A) PNG written by `save_png` (engine_server/core/png16.py) (non-interlaced, filter 0 rows) -> uint16 HxWxC."""
    with open(path, "rb") as handle:
        data = handle.read()
    position, idat, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, color_type = header[:4]
    channels = {2: 3, 6: 4}[color_type]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels * 2)
    if depth != 16 or raw[:, 0].any():
        raise ValueError("only unfiltered 16-bit PNGs are supported")
    return raw[:, 1:].copy().view(">u2").reshape(height, width, channels).astype(np.uint16)
