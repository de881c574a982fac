"""Pixel formats and region math for the GIMP plug-in: pure Python, no GIMP import.

Layers are read and written through babl formats with perceptual (sRGB-encoded, the ' in R'G'B')
channels, which is what the engine expects, at the image's bit depth: u8 and u16 stay integers,
every other precision (u32, half, float, double) travels as 32-bit float. babl's formats are
native-endian; the protocol is little-endian, so big-endian machines are refused.
"""

import sys
from dataclasses import dataclass
from typing import Optional, Tuple

MASK_FORMAT = "Y u8"           # selection coverage, linear, 0 = outside


@dataclass(frozen=True)
class PixelFormat:
    babl: str                  # e.g. "R'G'B'A u16"
    dtype: str                 # protocol dtype: "u8", "u16" or "f32"
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * {"u8": 1, "u16": 2, "f32": 4}[self.dtype]


_BABL_TYPE = {"u8": "u8", "u16": "u16", "f32": "float"}
_BABL_MODEL = {1: "Y'", 2: "Y'A", 3: "R'G'B'", 4: "R'G'B'A"}


def dtype_for_precision(precision_name: str) -> str:
    """A Gimp.Precision name ("GIMP_PRECISION_U16_NON_LINEAR" or "U16_LINEAR") -> "u8", "u16" or "f32"."""
    name = precision_name.upper().replace("GIMP_PRECISION_", "")
    if name.startswith("U8_"):
        return "u8"
    if name.startswith("U16_"):
        return "u16"
    if name.split("_")[0] in ("U32", "HALF", "FLOAT", "DOUBLE"):
        return "f32"
    raise ValueError("unknown GIMP precision %r" % precision_name)


def pixel_format(dtype: str, channels: int = 4) -> PixelFormat:
    """The babl format that reads/writes `channels` perceptual channels as `dtype`."""
    if sys.byteorder != "little":
        raise ValueError("this machine is big-endian; the engine protocol needs little-endian pixels")
    return PixelFormat("%s %s" % (_BABL_MODEL[channels], _BABL_TYPE[dtype]), dtype, channels)


def layer_image_type(base_type_name: str) -> str:
    """Gimp.ImageBaseType name -> the Gimp.ImageType name of the result layer (always with alpha)."""
    name = base_type_name.upper().replace("GIMP_", "")
    if name == "RGB":
        return "RGBA_IMAGE"
    if name == "GRAY":
        return "GRAYA_IMAGE"
    raise ValueError("indexed images are not supported: "
                     "convert the image with Image \u25b8 Mode \u25b8 RGB first")


def check_frame(width: int, height: int, fmt: PixelFormat, data: bytes, what: str = "pixels") -> None:
    """Raise ValueError when `data` is not exactly width x height pixels of `fmt`."""
    expected = width * height * fmt.bytes_per_pixel
    if len(data) != expected:
        raise ValueError("%s: expected %d bytes (%dx%d %s), got %d"
                         % (what, expected, width, height, fmt.babl, len(data)))


Rect = Tuple[int, int, int, int]   # x, y, width, height


def intersect(a: Rect, b: Rect) -> Optional[Rect]:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def selection_plan(layer_rect: Rect, selection_bounds: Optional[Rect]) -> str:
    """How to treat the selection for one layer: "none" (no selection: the whole layer),
    "mask" (send the selection as a mask over the layer's area) or "outside" (the selection
    misses the layer entirely: nothing to do)."""
    if selection_bounds is None:
        return "none"
    return "mask" if intersect(layer_rect, selection_bounds) else "outside"


def selection_bounds_from_gimp(non_empty: bool, x1: int, y1: int, x2: int, y2: int) -> Optional[Rect]:
    """Gimp.Selection.bounds() values -> (x, y, w, h) in image coordinates, or None without a selection."""
    if not non_empty or x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)
