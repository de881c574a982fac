"""Pixel frames <-> the engine's float RGB 0..255 images, alpha, selection masks and resizing.

Frames follow docs/architecture.md: little-endian, row-major, interleaved R, G, B, A with 1-4
channels, dtype u8, u16 or f32 (0..1). Everything here is vectorized NumPy.
"""

import numpy as np

NUMPY_DTYPES = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f32": np.dtype("<f4")}
SCALE = {"u8": 255.0, "u16": 65535.0, "f32": 1.0}


def srgb_to_linear(v):
    """v in 0..1 (float32 array) -> linear light 0..1."""
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(v):
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)


def as_array(pixels):
    """Pixels -> a (H, W, C) NumPy view of the frame (no copy)."""
    flat = np.frombuffer(pixels.data, dtype=NUMPY_DTYPES[pixels.dtype])
    return flat.reshape(pixels.height, pixels.width, pixels.channels)


CHUNK_PIXELS = 1 << 20      # conversions run over row blocks of about this many pixels: bounded temporaries


def _row_blocks(height, width):
    step = max(1, CHUNK_PIXELS // max(1, width))
    for start in range(0, height, step):
        yield slice(start, min(height, start + step))


def decode(pixels):
    """Pixels -> (rgb float32 HxWx3 in 0..255 sRGB-encoded, alpha float32 HxW in 0..1 or None)."""
    array = as_array(pixels)
    rgb = np.empty((pixels.height, pixels.width, 3), np.float32)
    alpha = np.empty((pixels.height, pixels.width), np.float32) if pixels.channels in (2, 4) else None
    for rows in _row_blocks(pixels.height, pixels.width):
        block = array[rows]
        rgb[rows] = _decode_color(block, pixels)
        if alpha is not None:
            scale = pixels.scale if pixels.dtype == "f32" else SCALE[pixels.dtype]
            values = block[..., -1].astype(np.float32) / np.float32(scale)
            alpha[rows] = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    return rgb, alpha


def _decode_color(block, pixels):
    if pixels.dtype == "f32" and pixels.scale == 255.0 and pixels.transfer == "srgb" and pixels.channels >= 3:
        # The engine's own 0..255 floats, taken as they are: a round trip is exact.
        return np.clip(np.nan_to_num(block[..., :3].astype(np.float32), nan=0.0), 0.0, 255.0)
    color = block[..., :3] if pixels.channels >= 3 else block[..., :1]
    if pixels.dtype == "f32":
        color = np.nan_to_num(color.astype(np.float32) / np.float32(pixels.scale), nan=0.0, posinf=1.0, neginf=0.0)
    else:
        color = color.astype(np.float32) / np.float32(SCALE[pixels.dtype])
    color = linear_to_srgb(color) if pixels.transfer == "linear" else np.clip(color, 0.0, 1.0)
    return color * np.float32(255.0)     # a gray (1-channel) block broadcasts into R, G and B


def _erode(values):
    """3x3 minimum filter; the image border counts as inside (a selection may touch the edge)."""
    padded = np.pad(values, 1, mode="edge")
    rows = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    return np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def soft_mask(mask_pixels, feather):
    """u8 selection mask -> float32 HxW 0..1: 0 outside, ramping up over `feather` px inside the edge.

    The mean of the mask eroded 0..feather-1 times is min(distance to outside, feather) / feather
    (chessboard distance) for a hard mask, and stays soft for an already soft selection.
    """
    values = as_array(mask_pixels)[..., 0].astype(np.float32) / np.float32(255.0)
    if feather <= 0:
        return values
    total = np.zeros_like(values)
    current = values
    for step in range(feather):
        total += current
        if step + 1 < feather:
            current = _erode(current)
    return total / np.float32(feather)


def resize_rgb(rgb, width, height):
    """float32 HxWx3 -> float32 height x width x 3, with the engine's own resampling (Lanczos)."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    from ..core.images import resize
    return resize(rgb, (height, width))


def encode(rgb, alpha, like, mask=None):
    """The image to send back: rgb float32 0..255 (any size: resized to `like`'s size), the source
    alpha (or None), the soft mask (or None) -> Pixels in `like`'s dtype, channel count and transfer.

    A mask without a source alpha channel adds one (gray -> gray+alpha, RGB -> RGBA), so the
    outside of the selection can be transparent.
    """
    from shared.protocol import Pixels

    rgb = resize_rgb(rgb, like.width, like.height)
    channels = like.channels
    out_alpha = alpha
    if mask is not None:
        out_alpha = mask if out_alpha is None else out_alpha * mask
        if channels in (1, 3):
            channels += 1
    out = np.empty((like.height, like.width, channels), NUMPY_DTYPES[like.dtype])
    for rows in _row_blocks(like.height, like.width):
        out[rows] = _encode_block(rgb[rows], None if out_alpha is None else out_alpha[rows], like, channels)
    data = out.reshape(-1).view(np.uint8).data       # a bytes-like view, no copy
    return Pixels(like.width, like.height, channels, like.dtype, data, like.transfer, like.scale)


def _encode_block(rgb, alpha, like, channels):
    color = np.clip(rgb, 0.0, 255.0) / np.float32(255.0)
    if like.transfer == "linear":
        color = srgb_to_linear(color)   # the client sent linear light: send linear back
    if like.channels in (1, 2):
        # Rec. 709 luma of the (sRGB-encoded) result: a gray layer stays gray.
        color = color[..., 0:1] * 0.2126 + color[..., 1:2] * 0.7152 + color[..., 2:3] * 0.0722
    if channels in (2, 4):
        if alpha is None:
            alpha = np.ones(color.shape[:2], np.float32)
        color = np.concatenate([color, alpha[..., None].astype(np.float32)], axis=2)
    if like.dtype == "f32":
        color = color * np.float32(like.scale)
        if like.scale == 255.0 and like.transfer == "srgb" and channels >= 3:
            color[..., :3] = np.clip(rgb, 0.0, 255.0)      # exact, see decode()
        return color
    return np.rint(np.clip(color, 0.0, 1.0) * np.float32(SCALE[like.dtype]))


def rgb_uint8(rgb):
    """float32 0..255 -> uint8 HxWx3 (for the style library)."""
    return np.rint(np.clip(rgb, 0.0, 255.0)).astype(np.uint8)
