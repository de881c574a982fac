"""Luminance/chroma split (YIQ) for "preserve colors": transfer luminance only, keep the content's colors.

Follows Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016), luminance-only
transfer: the optimization sees luminance images only (the style's luminance matched to the
content's mean and spread), and the result's luminance is recombined with the content's I and Q.
"""

import numpy as np

_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.595716, -0.274453, -0.321263],
                        [0.211456, -0.522591, 0.311135]], dtype=np.float64)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(rgb):
    return (np.asarray(rgb, np.float64) @ _RGB_TO_YIQ.T).astype(np.float32)


def yiq_to_rgb(yiq):
    return (np.asarray(yiq, np.float64) @ _YIQ_TO_RGB.T).astype(np.float32)


def luminance(rgb):
    """HxWx3 RGB -> HxW luminance (same 0..255 range)."""
    return rgb_to_yiq(rgb)[..., 0]


def gray_rgb(y):
    """HxW luminance -> HxWx3 image with R = G = B = y."""
    return np.repeat(np.asarray(y, np.float32)[..., np.newaxis], 3, axis=-1)


def match_luminance(y, reference_y):
    """Shift and scale `y` so its mean and standard deviation equal the reference's."""
    y = np.asarray(y, np.float64)
    spread = y.std()
    scaled = (y - y.mean()) * (reference_y.std() / spread if spread > 1e-6 else 1.0)
    return (scaled + reference_y.mean()).astype(np.float32)


def combine(luminance_source_rgb, color_source_rgb):
    """Luminance of the first image with the chroma (I, Q) of the second; same sizes; clipped to 0..255."""
    yiq = rgb_to_yiq(color_source_rgb)
    yiq[..., 0] = luminance(luminance_source_rgb)
    return np.clip(yiq_to_rgb(yiq), 0.0, 255.0)
