"""Status text and progress fraction from the engine's progress events: pure Python, no GIMP import."""

from typing import Optional


def _number(header: dict, key: str) -> Optional[float]:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def fraction(header: dict, layer_index: int = 0, layer_count: int = 1) -> float:
    """0..1 over all layers of the run: this layer's share times its iteration / iterations."""
    iteration, iterations = _number(header, "iteration"), _number(header, "iterations")
    within = min(max(iteration / iterations, 0.0), 1.0) if iteration is not None and iterations else 0.0
    return (layer_index + within) / max(layer_count, 1)


def eta_text(seconds: Optional[float]) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return "about %d s left" % seconds
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return "about %d min %02d s left" % (minutes, seconds)
    hours, minutes = divmod(minutes, 60)
    return "about %d h %02d min left" % (hours, minutes)


def status_text(header: dict, layer_name: str = "", layer_index: int = 0, layer_count: int = 1) -> str:
    """E.g. "Neural Style: Photo (1/2) – scale 2/3, iteration 40/200, about 12 s left"."""
    head = "Neural Style"
    if layer_name:
        head += ": " + layer_name
        if layer_count > 1:
            head += " (%d/%d)" % (layer_index + 1, layer_count)
    parts = []
    scale, scales = _number(header, "scale"), _number(header, "scales")
    if scale is not None and scales and scales > 1:
        parts.append("scale %d/%d" % (int(scale) + 1, int(scales)))   # scale is 0-based
    iteration, iterations = _number(header, "iteration"), _number(header, "iterations")
    if iteration is not None and iterations:
        parts.append("iteration %d/%d" % (int(iteration), int(iterations)))
    eta = eta_text(_number(header, "eta_s"))
    if eta:
        parts.append(eta)
    if not parts and isinstance(header.get("stage"), str):
        parts.append(header["stage"])
    return head + (" \u2013 " + ", ".join(parts) if parts else "")
