"""Small deterministic style images for the style library tests (64 px: CPU is shared)."""

import numpy as np


def style_pixels(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth RGB uint8 pattern that differs per seed (PNG keeps it exactly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    freq = rng.uniform(0.05, 0.4, size=(3, 2))
    channels = [127.5 + 127.5 * np.sin(freq[c, 0] * x + freq[c, 1] * y + phases[c]) for c in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
