"""Which rectangle of a layer a job covers, and how results are named (no Krita, no Qt)."""

from collections import namedtuple

Rect = namedtuple("Rect", "x y width height")
INCOMPLETE_SUFFIX = " (incomplete)"


def intersect(a: Rect, b: Rect):
    """The overlap of two rectangles, or None when they do not overlap."""
    left, top = max(a.x, b.x), max(a.y, b.y)
    right, bottom = min(a.x + a.width, b.x + b.width), min(a.y + a.height, b.y + b.height)
    if right <= left or bottom <= top:
        return None
    return Rect(left, top, right - left, bottom - top)


def job_region(layer_bounds: Rect, canvas: Rect, selection_bounds: Rect = None):
    """The layer's painted area on the canvas, cut to the selection's bounding box.

    The engine's soft edge lies inside the selection, so nothing outside it is ever sent.

    Returns None when nothing is left (an empty layer, or a selection that misses the layer).
    """
    if layer_bounds is None or layer_bounds.width <= 0 or layer_bounds.height <= 0:
        return None
    region = intersect(layer_bounds, canvas)
    if region is not None and selection_bounds is not None:
        region = intersect(region, selection_bounds)
    return region


def result_layer_name(source_name: str, style_name: str) -> str:
    return "%s – %s" % (source_name, style_name)


def incomplete_layer_name(name: str) -> str:
    """The name a result layer gets when its job failed after previews: 'Paint – Starry (incomplete)'."""
    return name if name.endswith(INCOMPLETE_SUFFIX) else name + INCOMPLETE_SUFFIX


def style_name_from_path(path: str) -> str:
    """'/x/starry_night.jpg' -> 'starry night'."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    return stem.replace("_", " ").strip() or base
