"""What the library stores and checks: its errors, a style's summary (StyleInfo), names and credits,
image conversions and the safe PNG decoder used for records and packs."""

import io
import os
import unicodedata
import warnings
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
from PIL import Image

from ..core import images   # the engine's safe image-file loader
from ..core.errors import EngineError
from .records import RecordError, StyleRecord

SUFFIX = ".tfrecord"
MAX_STYLE_SIDE = 4096          # larger images are scaled down when added: style_scale rarely needs more
THUMBNAIL_SIDE = 128
MAX_NAME_CHARS = 200
MAX_CREDIT_CHARS = 2000


class LibraryError(EngineError):
    """codes: style_not_found, bad_style, bad_pack, library_busy, library_io."""

    def __init__(self, code: str, message: str, field: Optional[str] = None):
        super().__init__(code, message, field)


@dataclass(frozen=True)
class StyleInfo:
    id: str
    name: str
    width: int
    height: int
    credit: str
    added: float          # unix time
    thumbnail_png: bytes

    def to_dict(self, with_thumbnail: bool = True) -> dict:
        info = asdict(self)
        if not with_thumbnail:
            del info["thumbnail_png"]
        return info

    @classmethod
    def of(cls, record: StyleRecord) -> "StyleInfo":
        return cls(record.id, record.name, record.width, record.height, record.credit,
                   record.added_ms / 1000.0, record.thumbnail_png)


def clean_name(name, what: str = "name", limit: int = MAX_NAME_CHARS, allow_empty: bool = False) -> str:
    """Free Unicode text (quotes, slashes allowed), trimmed; no control characters."""
    if not isinstance(name, str):
        raise LibraryError("bad_style", "the style %s must be text, got %s" % (what, type(name).__name__), what)
    name = unicodedata.normalize("NFC", name).strip()
    if not name and not allow_empty:
        raise LibraryError("bad_style", "the style %s is empty" % what, what)
    if len(name) > limit:
        raise LibraryError("bad_style", "the style %s has %d characters, at most %d are allowed"
                           % (what, len(name), limit), what)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in name) or \
            (what == "name" and any(ch in name for ch in "\n\t")):
        raise LibraryError("bad_style", "the style %s contains control characters" % what, what)
    return name


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def to_rgb_uint8(pixels) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 (alpha composited over white), uint8 or float 0..255."""
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise LibraryError("bad_style", "the style image must be HxW with 1, 3 or 4 channels, got shape %s"
                           % (array.shape,), "image")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise LibraryError("bad_style", "the style image must hold finite numbers 0..255", "image")
        array = np.clip(np.rint(array.astype(np.float32)), 0, 255).astype(np.uint8)
    if array.shape[2] == 4:
        alpha = array[:, :, 3:].astype(np.float32) / 255.0
        array = np.rint(array[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def decode_png(data: bytes, what: str) -> np.ndarray:
    """RGB uint8 from PNG bytes stored in a record. The size is checked before any pixel is
    decoded: no side over MAX_STYLE_SIDE (what add_image stores), so a decompression bomb in a
    shared pack costs nothing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                width, height = image.size
                if max(width, height) > MAX_STYLE_SIDE:
                    raise RecordError("%s is %dx%d pixels, more than the %d-pixel side a style may have"
                                      % (what, width, height, MAX_STYLE_SIDE))
                return np.asarray(image.convert("RGB"))
    except RecordError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RecordError("%s is not a readable PNG" % what) from None


def load_file(path: str) -> np.ndarray:
    """RGBA float 0..255 from an image file through the engine's safe loader (InputError if unusable)."""
    rgb, alpha = images.load_image(path, "style image")
    if alpha is None:
        return rgb
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def file_signature(path: str) -> Optional[tuple]:
    """(mtime, size, inode): files are only ever replaced whole, so an unchanged signature means unchanged content."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
