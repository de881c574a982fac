"""16-bit RGB(A) PNG files, written without Pillow (which writes 16-bit PNGs only for grayscale):
non-interlaced, filter 0 on every row."""

import struct
import zlib



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
