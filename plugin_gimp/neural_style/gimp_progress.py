"""GIMP's status bar text: the shared words (shared/progress.py) after the filter's name, because
the status bar is shared with every other filter. Pure Python, no GIMP import."""

from shared.progress import DASH, fraction, progress_text  # noqa: F401 (DASH, fraction: for gimp_frames, the bar)


def titled(text: str) -> str:
    return "Neural Style: " + text if text else "Neural Style"


def status_text(header: dict, layer_name: str = "", layer_index: int = 0, layer_count: int = 1) -> str:
    """E.g. 'Neural Style: Photo (1/2) – scale 2/3, iteration 40/200, about 12 s left'."""
    return titled(progress_text(header, layer_name, layer_index, layer_count))
