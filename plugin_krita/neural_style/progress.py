"""Progress bar fraction and ETA text from the engine's progress headers (no Krita, no Qt)."""


def overall_fraction(task_index: int, task_count: int, iteration, iterations) -> float:
    """0..1 over all layers of one Apply; each layer counts the same."""
    within = 0.0
    if iteration is not None and iterations:
        within = min(1.0, max(0.0, float(iteration) / float(iterations)))
    return min(1.0, (task_index + within) / max(1, task_count))


def format_eta(seconds) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return "about %d s left" % seconds
    if seconds < 3600:
        return "about %d min %02d s left" % (seconds // 60, seconds % 60)
    return "about %d h %02d min left" % (seconds // 3600, seconds % 3600 // 60)


def progress_text(layer_name: str, task_index: int, task_count: int, header: dict) -> str:
    """e.g. 'Layer 2 (1/2): iteration 40/200, about 12 s left'."""
    text = layer_name if task_count == 1 else "%s (%d/%d)" % (layer_name, task_index + 1, task_count)
    iteration, iterations = header.get("iteration"), header.get("iterations")
    if iteration is not None and iterations:
        text += ": iteration %d/%d" % (iteration, iterations)
    eta = format_eta(header.get("eta_s"))
    return text + (", " + eta if eta else "")


def failure_text(message: str, layer_name=None, kept=()) -> str:
    """One sentence for a failed Apply: the layer whose job failed (None if none had started), the
    engine's or the client's reason, and the result layers kept with their last preview."""
    text = (message or "the engine reported an error").strip().rstrip(".")
    if layer_name is not None:
        text = "Layer \"%s\" could not be stylized: %s" % (layer_name, text)
    if kept:
        text += "; the last preview is kept as layer %s" % ", ".join("\"%s\"" % name for name in kept)
    return text[:1].upper() + text[1:] + "."
