"""The interactive parts: the procedure dialog and a small window whose Cancel stops the engine job.

Imported only in interactive runs (batch runs never load GTK). GIMP itself remembers the last
values of every argument between runs.
"""

import os

import gi
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, GLib, Gtk  # noqa: E402

import gimp_arguments as arguments  # noqa: E402

MAIN = ("strength", "iterations", "max-size", "preserve-colors", "style-scale")


def _library_widget(config):
    """A combo box of the style library's entries (sets style-library-id), or a label saying why not."""
    try:
        from shared.client import Client, ClientError
        client = Client(endpoint=config.get_property("engine-endpoint") or None, autostart=False,
                        connect_timeout=1.0)
        try:
            styles = client.list_styles()
        finally:
            client.close()
    except (ImportError, ClientError) as error:
        label = Gtk.Label(label="Style library: not available (%s)" % error)
        label.set_line_wrap(True)
        label.set_xalign(0.0)
        return label
    box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    box.pack_start(Gtk.Label(label="Library style:"), False, False, 0)
    combo = Gtk.ComboBoxText()
    current = config.get_property("style-library-id")
    for index, info in enumerate(styles):
        combo.append(info.get("id"), info.get("name") or info.get("id"))
        if info.get("id") == current:
            combo.set_active(index)

    def changed(widget):
        style_id = widget.get_active_id()
        if style_id:
            config.set_property("style-library-id", style_id)
            config.set_property("style-source", "library")
    combo.connect("changed", changed)
    if not styles:
        combo.set_sensitive(False)
        combo.set_tooltip_text("the style library is empty")
    box.pack_start(combo, True, True, 0)
    return box


def _file_widget(config):
    """A file chooser for style-file. The argument uses action ANY (so a batch call with a missing
    file reaches the plug-in and gets an error naming it), and GIMP builds no widget for ANY."""
    box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    box.pack_start(Gtk.Label(label="Style file:"), False, False, 0)
    button = Gtk.FileChooserButton(title="Choose the style image", action=Gtk.FileChooserAction.OPEN)
    images = Gtk.FileFilter()
    images.set_name("Images")
    images.add_pixbuf_formats()
    button.add_filter(images)
    current = config.get_property("style-file")
    if current is not None:
        button.set_file(current)

    def chosen(widget):
        chosen_file = widget.get_file()
        if chosen_file is not None:
            config.set_property("style-file", chosen_file)
            config.set_property("style-source", "file")
    button.connect("file-set", chosen)
    box.pack_start(button, True, True, 0)
    return box


def run_dialog(procedure, config):
    """Show the dialog; True when the artist pressed OK."""
    GimpUi.init(arguments.PROCEDURE_NAME)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Neural Style")
    style_box = dialog.fill_box("style-box", ["style-source", "style-layer"])
    for widget in (_file_widget(config), _library_widget(config)):
        style_box.pack_start(widget, False, False, 0)
        widget.show_all()
    dialog.fill_box("main-box", list(MAIN))
    dialog.fill_box("advanced-box", [arg.name for arg in arguments.arguments() if arg.advanced])
    dialog.get_label("advanced-label", "Advanced", False, False)
    dialog.fill_expander("advanced", "advanced-label", False, "advanced-box")
    dialog.fill(["style-box", "main-box", "advanced"])
    auto_ok = os.environ.get("NEURAL_STYLE_GIMP_TEST_AUTO_OK")   # headless tests: press OK after N s
    if auto_ok:
        GLib.timeout_add(int(float(auto_ok) * 1000), lambda: dialog.response(Gtk.ResponseType.OK) and False)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


class CancelWindow:
    """A progress bar with a Cancel button, kept alive by pumping GTK between engine events."""

    def __init__(self):
        self.cancelled = False
        self.window = Gtk.Window(title="Neural Style")
        self.window.set_default_size(420, -1)
        self.window.set_keep_above(True)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8, margin=12)
        self.bar = Gtk.ProgressBar(show_text=True)
        self.bar.set_text("Connecting to the engine\u2026")
        box.pack_start(self.bar, False, False, 0)
        button = Gtk.Button(label="_Cancel", use_underline=True)
        button.connect("clicked", self._cancel)
        box.pack_start(button, False, False, 0)
        self.window.add(box)
        self.window.connect("delete-event", lambda *unused: self._cancel() or True)
        self.window.show_all()
        self.pump()

    def _cancel(self, *unused):
        self.cancelled = True
        self.bar.set_text("Cancelling\u2026 (the layer keeps the last preview)")

    def update(self, text, fraction, layer_name=""):
        if layer_name and layer_name == os.environ.get("NEURAL_STYLE_GIMP_TEST_CANCEL_LAYER"):
            self._cancel()        # headless tests: "press" Cancel at the first progress of this layer
        if not self.cancelled:
            self.bar.set_text(text)
        self.bar.set_fraction(max(0.0, min(1.0, fraction)))
        self.pump()

    def pump(self):
        while Gtk.events_pending():
            Gtk.main_iteration_do(False)

    def close(self):
        self.window.destroy()
        self.pump()
