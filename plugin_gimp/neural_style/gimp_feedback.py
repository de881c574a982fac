"""What a running job shows and hears: GIMP's progress bar and status text, and the Cancel window of
an interactive run. One place for the single-layer run and the frames run."""

import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402


class RunFeedback:
    def __init__(self, cancel_window=None):
        self.cancel_window = cancel_window      # None: a non-interactive run (GIMP's own bar only)
        self.cancel_sent = False

    def cancel_now(self):
        """Keep the Cancel window alive; True once, when the artist has pressed Cancel (send it then)."""
        if self.cancel_window is None:
            return False
        self.cancel_window.pump()
        if self.cancel_window.cancelled and not self.cancel_sent:
            self.cancel_sent = True
            return True
        return False

    def show(self, text, done):
        Gimp.progress_set_text(text)
        Gimp.progress_update(done)
        if self.cancel_window is not None:
            self.cancel_window.update(text, done)
