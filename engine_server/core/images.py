"""Image files in and out (Pillow), and resizing of float images.

Loading converts whatever Pillow can read (grayscale, CMYK, palette, 16-bit, alpha, EXIF-rotated)
to float32 RGB 0..255 and keeps the alpha channel aside. Every failure is an InputError with one
sentence naming the file: missing, a folder, empty, not an image, truncated, 0 pixels, or too many
pixels (decompression-bomb protection: the size is checked before any pixel is decoded).
`check_image_file` does only the checks that need no decoding (what the engine does on arrival).
"""

import os
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps

from . import png16
from .errors import InputError

MAX_PIXELS = 100_000_000        # the largest image file the engine decodes (options.max_size caps the work size)
MAX_SIDE = 65535


def _open(path, what, max_pixels=MAX_PIXELS):
    if not os.path.exists(path):
        raise InputError("%s file %s does not exist" % (what, path))
    if os.path.isdir(path):
        raise InputError("%s path %s is not a file but a folder" % (what, path))
    if not os.path.isfile(path):
        raise InputError("%s path %s is not a file" % (what, path))
    if os.path.getsize(path) == 0:
        raise InputError("%s file %s is empty (0 bytes), not an image" % (what, path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # _check_size decides
            return Image.open(path)
    except Image.DecompressionBombError as error:
        declared = re.search(r"\((\d+) pixels\)", str(error))      # Pillow: "Image size (N pixels) exceeds ..."
        raise InputError("%s file %s declares %s pixels, over the limit of %d; refusing it as a possible "
                         "decompression bomb" % (what, path, declared.group(1) if declared else "too many", max_pixels))
    except Image.UnidentifiedImageError:
        size = _png_header_size(path)
        if size is not None and 0 in size:
            raise InputError("%s file %s has no pixels (%dx%d)" % ((what, path) + size))
        raise InputError("%s file %s is not an image Pillow can read (PNG, JPEG, TIFF, WebP, ...)" % (what, path))
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError("%s file %s cannot be read as an image (%s)" % (what, path, _short(error)))


def _png_header_size(path):
    """(width, height) from a PNG's IHDR, or None (Pillow refuses 0-pixel PNGs without saying why)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    return None


def _short(error):
    return " ".join(str(error).split()).rstrip(".")[:160] or type(error).__name__


def _check_size(image, path, what, max_pixels=MAX_PIXELS):
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InputError("%s file %s has no pixels (%dx%d)" % (what, path, width, height))
    if width > MAX_SIDE or height > MAX_SIDE or width * height > max_pixels:
        raise InputError("%s file %s is %dx%d pixels, over the limit of %d pixels a side and %d in all; refusing it "
                         "as a possible decompression bomb" % (what, path, width, height, MAX_SIDE, max_pixels))


def check_image_file(path, what="image", max_pixels=MAX_PIXELS):
    """Read only the file's header: (width, height), or InputError (missing, a folder, empty, not an
    image Pillow knows, 0 pixels, over MAX_SIDE or `max_pixels`). Decodes no pixel, so it is cheap for
    any file; a file damaged further in is only found by `load_image`."""
    path = os.fspath(path)
    max_pixels = min(int(max_pixels), MAX_PIXELS)      # Pillow's own check (2 x 89 MP) refuses far more
    with _open(path, what, max_pixels) as image:
        _check_size(image, path, what, max_pixels)
        return image.size


def _to_float(image):
    """A loaded Pillow image -> (rgb float32 HxWx3 0..255, alpha float32 HxW 0..255 or None)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values * (255.0 / top), 0, 255).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=-1), None
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        if values.max() <= 1.0:
            values = values * 255.0
        gray = np.clip(values, 0, 255).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=-1), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    converted = image.convert("RGBA" if has_alpha else "RGB")
    pixels = np.asarray(converted, dtype=np.float32)
    if has_alpha:
        return np.ascontiguousarray(pixels[..., :3]), np.ascontiguousarray(pixels[..., 3])
    return pixels, None


def load_image(path, what="image", max_pixels=MAX_PIXELS):
    """path -> (rgb float32 HxWx3 0..255, alpha float32 HxW 0..255 or None). `what` names the file in
    errors; a file of more than `max_pixels` (at most MAX_PIXELS) is refused before it is decoded."""
    path = os.fspath(path)
    max_pixels = min(int(max_pixels), MAX_PIXELS)
    image = _open(path, what, max_pixels)
    with image:
        _check_size(image, path, what, max_pixels)
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            text = _short(error)
            kind = "is truncated or damaged" if "truncat" in text.lower() else "cannot be decoded"
            raise InputError("%s file %s %s (%s)" % (what, path, kind, text))
        _check_size(image, path, what, max_pixels)
        return _to_float(image)


def load_rgb(path, what="image", max_pixels=MAX_PIXELS):
    return load_image(path, what, max_pixels)[0]


def resize(pixels, size):
    """Resize a float32 HxW or HxWxC image to `size` (height, width), Lanczos (antialiased when shrinking)."""
    height, width = int(size[0]), int(size[1])
    pixels = np.asarray(pixels, np.float32)
    if pixels.shape[:2] == (height, width):
        return pixels.copy()
    if pixels.ndim == 2:
        return np.asarray(Image.fromarray(pixels, "F").resize((width, height), Image.LANCZOS), np.float32)
    return np.stack([resize(pixels[..., c], size) for c in range(pixels.shape[2])], axis=-1)


def fit_size(size, longest):
    """(height, width) scaled so the longest side is `longest` (each side at least 1)."""
    height, width = size
    scale = float(longest) / max(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def save_png(path, rgb, alpha=None, bits=8):
    """Write float RGB 0..255 (and optional alpha 0..255) as an 8- or 16-bit PNG."""
    rgb = np.clip(np.nan_to_num(np.asarray(rgb, np.float64)), 0, 255)
    channels = [rgb] if alpha is None else [rgb, np.clip(np.asarray(alpha, np.float64), 0, 255)[..., None]]
    pixels = np.concatenate(channels, axis=-1)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("output folder %s does not exist" % folder)
    try:
        if bits == 8:
            Image.fromarray(np.round(pixels).astype(np.uint8), "RGB" if alpha is None else "RGBA").save(path, "PNG")
        elif bits == 16:
            png16.write(path, np.round(pixels * (65535.0 / 255.0)).astype(">u2"))
        else:
            raise ValueError("bits must be 8 or 16")
    except OSError as error:
        raise InputError("cannot write %s (%s)" % (path, error.strerror or error))


def save_image(path, rgb, alpha=None):
    """Write an 8-bit image in the format of the file's extension (PNG, JPEG, TIFF, WebP, BMP).
    Formats without alpha (JPEG, BMP) get the RGB only."""
    extension = os.path.splitext(path)[1].lower()
    if extension == ".png":
        return save_png(path, rgb, alpha, bits=8)
    if extension in (".jpg", ".jpeg", ".bmp"):
        alpha = None
    pixels = np.clip(np.nan_to_num(np.asarray(rgb, np.float64)), 0, 255)
    if alpha is not None:
        pixels = np.concatenate([pixels, np.clip(np.asarray(alpha, np.float64), 0, 255)[..., None]], axis=-1)
    try:
        image = Image.fromarray(np.round(pixels).astype(np.uint8), "RGB" if alpha is None else "RGBA")
        image.save(path, quality=95) if extension in (".jpg", ".jpeg", ".webp") else image.save(path)
    except (OSError, ValueError, KeyError) as error:
        raise InputError("cannot write %s (%s)" % (path, _short(error)))
