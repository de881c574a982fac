"""One short sentence for the artist, and the full text for "Details".

Editors show `summary` (what happened and what to do, in the artist's words: no flags, environment
variables, protocol field paths or HDF5 internals) and keep `details` (the engine's or the
client's full message, and where the log is) one click away. Pure Python: the editors import it.
"""

import re
from typing import NamedTuple, Optional

from . import paths


class Explanation(NamedTuple):
    summary: str
    details: str


# error code (protocol or engine) -> what the artist reads
BY_CODE = {
    "weights": "The style engine's VGG-19 weights are missing or damaged: run the Neural Style installer again.",
    "out_of_memory": "There is not enough memory for this size: lower the resolution cap, or close other programs.",
    "style_not_found": "That style is no longer in the library: choose another style.",
    "not_found": "The style file could not be found: choose the style file again.",
    "bad_style": "That style could not be read: choose another style.",
    "queue_full": "The style engine is busy with other jobs: try again when they have finished.",
    "shutting_down": "The style engine was stopped while working: apply again to restart it.",
    "unsupported": "The style engine cannot do this (its style library is not available): see Details.",
    "too_large": "The layer or the style is too large for the style engine: use a smaller image or selection.",
    "library_busy": "The style library is busy: try again in a moment.",
    "library_io": "The style library could not be written: check that the disk is not full.",
}
BY_KIND = {
    "EngineUnavailable": "The style engine could not be started: see Details, or run the Neural Style installer again.",
    "EngineLost": "The style engine stopped while working: apply again to restart it.",
    "ProtocolMismatch": "The plugin and the style engine are different versions: run the Neural Style installer again.",
    "EngineRefused": "The style engine refused this computer's key: see Details.",
}
# EngineOutdated: the plugin was upgraded while an engine from before it still runs
OUTDATED = ("The style engine running now is older than this plugin and does not know the setting \"%s\": "
            "restart the engine (see Details), or set it back to its default.")
OUTDATED_FRAMES = ("The style engine running now is older than this plugin and cannot stylize frames of an "
                   "animation: restart the engine (see Details).")
TOO_SMALL = re.compile(r"too small for the network layer")
FIELD_PREFIX = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+)*: ")


def explain(error: Optional[BaseException] = None, code: Optional[str] = None, message: str = "",
            log_path: Optional[str] = None) -> Explanation:
    """From a client exception (EngineUnavailable, EngineLost, JobFailed, ...) or an error's code and message."""
    if error is not None:
        message = message or str(error)
        code = code or getattr(error, "code", None)
    message = (message or "").strip()
    summary = None
    if code == "bad_input" or code == "invalid_field":
        if TOO_SMALL.search(message):
            summary = "The layer or selection is too small to stylize: select a larger area."
        elif "weights" in message.lower():
            summary = BY_CODE["weights"]
        else:
            summary = "The image or style could not be used: %s." % _plain(message)
    elif code in BY_CODE:
        summary = BY_CODE[code]
    elif getattr(error, "option", None) and type(error).__name__ == "EngineOutdated":
        summary = OUTDATED_FRAMES if error.option == "previous_frame" else OUTDATED % error.option.replace("_", " ")
    elif error is not None and type(error).__name__ in BY_KIND:
        kind = type(error).__name__
        summary = BY_CODE["weights"] if kind == "EngineUnavailable" and "weights" in message.lower() else BY_KIND[kind]
    if summary is None:
        summary = "The style could not be applied: see Details."
    log = log_path if log_path is not None else paths.log_path()
    details = message + ("\n\nEngine log: %s" % log if log else "")
    return Explanation(summary, details.strip())


def _plain(message: str) -> str:
    """The engine's sentence without its protocol field path, cut to a short clause."""
    text = FIELD_PREFIX.sub("", message).strip().rstrip(".")
    return text if len(text) <= 120 else text[:117].rstrip() + "..."
