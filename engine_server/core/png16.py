"""16-bit RGB(A) PNG files, written and read without Pillow (which writes 16-bit PNGs only for
grayscale). Only what the engine writes: non-interlaced, filter 0 on every row."""

import struct
import zlib

import numpy as np


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write(path, pixels):
    """Pillow writes 16-bit PNGs only for grayscale, so RGB(A) 16-bit is written here (filter 0 rows)."""
    height, width, channels = pixels.shape
    color_type = {3: 2, 4: 6}[channels]
    rows = pixels.reshape(height, width * channels)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                     + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def read(path):
    """Read back a 16-bit RGB(A) PNG written by `save_png` (non-interlaced, filter 0 rows) -> uint16 HxWxC."""
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
