"""What a job's progress looks like to a person: the bar's fraction and the words beside it.

Krita's docker, GIMP's status bar and the command line all print these same words, from the
progress headers of docs/protocol.md (or the in-process engine's Progress, as the same keys).
Pure Python: the editors' Pythons import it too.
"""

from typing import Optional

DASH = "\u2013"


def _number(header: dict, key: str) -> Optional[float]:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return value


def fraction(header: dict, task_index: int = 0, task_count: int = 1) -> float:
    """0..1 over every task of one run (the layers of one Apply): each task counts the same, and
    within a task the header's `fraction` (work done) if it has one, else iteration / iterations."""
    within = _number(header, "fraction")
    if within is None:
        iteration, iterations = _number(header, "iteration"), _number(header, "iterations")
        within = iteration / iterations if iteration is not None and iterations else 0.0
    within = min(max(within, 0.0), 1.0)
    return min(1.0, (task_index + within) / max(task_count, 1))


def eta_text(seconds: Optional[float]) -> str:
    """'about 12 s left', 'about 2 min 05 s left', 'about 1 h 01 min left'; '' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return "about %d s left" % seconds
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return "about %d min %02d s left" % (minutes, seconds)
    hours, minutes = divmod(minutes, 60)
    return "about %d h %02d min left" % (hours, minutes)


def details(header: dict) -> str:
    """'scale 2/3, iteration 40/200, about 12 s left' (the stage's name when there is nothing else)."""
    parts = []
    scale, scales = _number(header, "scale"), _number(header, "scales")
    if scale is not None and scales and scales > 1:
        parts.append("scale %d/%d" % (int(scale) + 1, int(scales)))     # scale is 0-based
    iteration, iterations = _number(header, "iteration"), _number(header, "iterations")
    if iteration is not None and iterations:
        parts.append("iteration %d/%d" % (int(iteration), int(iterations)))
    eta = eta_text(_number(header, "eta_s"))
    if eta:
        parts.append(eta)
    if not parts and isinstance(header.get("stage"), str):
        parts.append(header["stage"])
    return ", ".join(parts)


def progress_text(header: dict, name: str = "", task_index: int = 0, task_count: int = 1) -> str:
    """'Photo (1/2) – scale 2/3, iteration 40/200, about 1 min 15 s left'."""
    head = name
    if name and task_count > 1:
        head += " (%d/%d)" % (task_index + 1, task_count)
    tail = details(header)
    if head and tail:
        return "%s %s %s" % (head, DASH, tail)
    return head or tail
