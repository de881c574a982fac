"""The procedure dialog: the procedure's settings, only the style picker that "Style from" selects, and a
live preview (gimp_preview.py). Imported only in interactive runs (batch runs never load GTK). GIMP
remembers the last values of every argument, and of the aux ones (Advanced open, Preview on), after
a successful run.
"""

import gi
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, GObject, Gtk  # noqa: E402

import gimp_arguments as arguments  # noqa: E402
import gimp_frames                  # noqa: E402
import gimp_windows as windows      # noqa: E402
from gimp_preview import PreviewPane  # noqa: E402

MAIN = ("strength", "iterations", "max-size", "preserve-colors", "style-scale")


def _library_widget(config):
    """A combo box of the style library's entries (sets style-library-id), or a label saying why not."""
    box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6, name="neural-style-style-library")
    try:
        from shared.client import Client, ClientError
        client = Client(endpoint=config.get_property("engine-endpoint") or None, autostart=False,
                        connect_timeout=1.0)
        try:
            styles = client.list_styles()
        finally:
            client.close()
    except (ImportError, ClientError):
        label = Gtk.Label(label="The style library is shown when the style engine runs "
                                "(a preview or Apply starts it).")
        label.set_line_wrap(True)
        label.set_xalign(0.0)
        box.pack_start(label, True, True, 0)
        return box
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
    combo.connect("changed", changed)
    if not styles:
        combo.set_sensitive(False)
        combo.set_tooltip_text("the style library is empty")
    box.pack_start(combo, True, True, 0)
    return box


def _file_widget(config):
    """A file chooser for style-file. The argument uses action ANY (so a batch call with a missing
    file reaches the plug-in and gets an error naming it), and GIMP builds no widget for ANY."""
    box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6, name="neural-style-style-file")
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
    button.connect("file-set", chosen)
    box.pack_start(button, True, True, 0)
    return box


def run_dialog(procedure, config, image=None, drawables=()):
    """Show the dialog; True when the artist pressed OK."""
    windows.init_ui()
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Neural Style")
    style_box = dialog.fill_box("style-box", ["style-source", "style-layer"])
    pickers = {"file": _file_widget(config), "library": _library_widget(config),
               "layer": dialog.get_widget("style-layer", GObject.TYPE_NONE)}
    for source in ("file", "library"):
        style_box.pack_start(pickers[source], False, False, 0)
        pickers[source].show_all()
    # Offered only where there is an animation to speak of: two top-level layers or more.
    frames_offered = image is not None and len(gimp_frames.frame_layers(image)) > 1
    dialog.fill_box("main-box", list(MAIN) + (["layers-as-frames"] if frames_offered else []))
    dialog.fill_box("advanced-box", [arg.name for arg in arguments.arguments() if arg.advanced])
    dialog.get_label("advanced-label", "Advanced", False, False)
    expander = dialog.fill_expander("advanced", "advanced-label", False, "advanced-box")
    dialog.fill(["style-box", "main-box", "advanced"])
    for arg in arguments.arguments():
        widget = dialog.get_widget(arg.name, GObject.TYPE_NONE) if arg.kind == "double" else None
        spin = widget.get_spin_button() if hasattr(widget, "get_spin_button") else widget
        if widget is not None and hasattr(spin, "get_digits"):
            widget.set_digits(arguments.display_digits(arg, spin.get_digits()))
    expander.set_expanded(bool(config.get_property("advanced-expanded")))
    expander.connect("notify::expanded", lambda widget, _: config.set_property("advanced-expanded",
                                                                                widget.get_expanded()))

    def show_picker(*unused):
        chosen = config.get_property("style-source")
        for source, widget in pickers.items():
            widget.set_no_show_all(True)
            widget.set_visible(source == chosen)
    show_picker()
    picker_handler = config.connect("notify::style-source", show_picker)

    pane = PreviewPane(config, image, drawables[0] if drawables else None)
    content = dialog.get_content_area()
    content.pack_start(pane.widget, False, False, 0)
    content.reorder_child(pane.widget, 0)
    pane.widget.show_all()
    pane.start()
    try:
        accepted = dialog.run()
    finally:
        pane.close()
        config.disconnect(picker_handler)
        dialog.destroy()
        windows.pump()
    return accepted
