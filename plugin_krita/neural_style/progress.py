"""The words the docker shows for a job: progress (shared/progress.py, the same words as GIMP and
the command line) and one sentence for a failure (no Krita, no Qt)."""

from .shared.progress import fraction, progress_text  # noqa: F401 (the docker's bar and label)


def failure_text(message: str, layer_name=None, kept=()) -> str:
    """One sentence for a failed Apply: the layer whose job failed (None if none had started), the
    engine's or the client's reason, and the result layers kept with their last preview."""
    text = (message or "the engine reported an error").strip().rstrip(".")
    if layer_name is not None:
        text = "Layer \"%s\" could not be stylized: %s" % (layer_name, text)
    if kept:
        text += "; the last preview is kept as layer %s" % ", ".join("\"%s\"" % name for name in kept)
    return text[:1].upper() + text[1:] + "."
