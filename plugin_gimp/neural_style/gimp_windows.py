"""Windows of a run: the progress window whose Cancel stops the engine job, and the error message box
(one sentence, the full text under Details). GTK only, for runs with an artist at the screen."""

import gi
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, Gtk  # noqa: E402

import gimp_arguments as arguments  # noqa: E402

_ui_ready = False


def init_ui():
    global _ui_ready
    if not _ui_ready:
        GimpUi.init(arguments.PROCEDURE_NAME)
        _ui_ready = True


def pump():
    while Gtk.events_pending():
        Gtk.main_iteration_do(False)


class CancelWindow:
    """A progress bar with a Cancel button, kept alive by pumping GTK while the job runs."""

    def __init__(self):
        init_ui()
        self.cancelled = False
        self.window = Gtk.Window(title="Neural Style")
        self.window.set_default_size(420, -1)
        self.window.set_keep_above(True)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8, margin=12)
        self.bar = Gtk.ProgressBar(show_text=True)
        self.bar.set_text("Connecting to the engine\u2026")
        box.pack_start(self.bar, False, False, 0)
        self.button = Gtk.Button(label="_Cancel", use_underline=True)
        self.button.connect("clicked", self._cancel)
        box.pack_start(self.button, False, False, 0)
        self.window.add(box)
        self.window.connect("delete-event", lambda *unused: self._cancel() or True)
        self.window.show_all()
        self.pump()

    def _cancel(self, *unused):
        if not self.cancelled:
            self.cancelled = True
            self.button.set_sensitive(False)
            self.bar.set_text("Cancelling\u2026 (the layer keeps the last preview)")

    def update(self, text, fraction):
        if not self.cancelled:
            self.bar.set_text(text)
        self.bar.set_fraction(max(0.0, min(1.0, fraction)))
        self.pump()

    def pump(self):
        pump()

    def close(self):
        self.window.destroy()
        self.pump()


def show_error(summary, details, parent=None):
    """A modal message box: `summary` (one sentence) and a closed "Details" with the full text."""
    init_ui()
    dialog = Gtk.MessageDialog(transient_for=parent, modal=True, message_type=Gtk.MessageType.ERROR,
                               buttons=Gtk.ButtonsType.CLOSE, text=summary)
    dialog.set_title("Neural Style")
    expander = Gtk.Expander(label="_Details", use_underline=True)
    text = Gtk.Label(label=details, selectable=True, xalign=0.0, wrap=True)
    text.set_max_width_chars(70)
    expander.add(text)
    dialog.get_message_area().pack_start(expander, False, False, 0)
    expander.show_all()
    dialog.run()
    dialog.destroy()
    pump()
