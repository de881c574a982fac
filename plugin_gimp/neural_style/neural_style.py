#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters ▸ Artistic ▸ Neural Style… (PDB: python-fu-neural-style).

Thin on purpose: it reads the selected layers (and the selection) at the image's bit depth, sends
them to the engine through shared/client.py, and paints previews and the result into a new layer
above each source. Arguments, options, formats and texts come from the plain gimp_*.py modules.
"""

import logging
import os
import sys
import time
import traceback

import gi
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # helper modules and shared/
# pyzmq/msgpack the installer unpacked for GIMP's own Python (docs/install.md) come first.
if os.path.isdir(os.path.join(sys.path[0], "vendor")):
    sys.path.insert(0, os.path.join(sys.path[0], "vendor"))

import gimp_arguments as arguments  # noqa: E402
import gimp_pixels as pixels        # noqa: E402
import gimp_progress as progress    # noqa: E402

START_TIMEOUT_S = 60.0   # first start of the engine loads TensorFlow and VGG-19


class UserError(Exception):
    """Something the artist or the caller can fix; str() is the one-sentence message."""


def _log():
    logger = logging.getLogger("neural_style_gimp")
    if not logger.handlers:
        try:
            from shared import paths
            folder = paths.ensure_private_dir(paths.state_dir())
            handler = logging.FileHandler(os.path.join(folder, "gimp-plugin.log"), encoding="utf-8")
        except OSError:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger


# ------------------------------------------------------------------------------------------ registration

def _add_argument(procedure, arg):
    flags = GObject.ParamFlags.READWRITE
    if arg.kind == "choice":
        choice = Gimp.Choice.new()
        for index, (nick, label) in enumerate(arg.choices):
            choice.add(nick, index, label, "")
        procedure.add_choice_argument(arg.name, arg.label, arg.help, choice, arg.default, flags)
    elif arg.kind == "file":
        procedure.add_file_argument(arg.name, arg.label, arg.help, Gimp.FileChooserAction.ANY, True, None,
                                    flags)
    elif arg.kind == "layer":
        procedure.add_layer_argument(arg.name, arg.label, arg.help, True, flags)
    elif arg.kind == "string":
        procedure.add_string_argument(arg.name, arg.label, arg.help, arg.default, flags)
    elif arg.kind == "int":
        procedure.add_int_argument(arg.name, arg.label, arg.help, int(arg.minimum), int(arg.maximum),
                                   int(arg.default), flags)
    elif arg.kind == "double":
        procedure.add_double_argument(arg.name, arg.label, arg.help, float(arg.minimum), float(arg.maximum),
                                      float(arg.default), flags)
    elif arg.kind == "boolean":
        procedure.add_boolean_argument(arg.name, arg.label, arg.help, bool(arg.default), flags)
    else:
        raise AssertionError("unknown argument kind %r" % arg.kind)


class NeuralStyle(Gimp.PlugIn):
    def do_query_procedures(self):
        return [arguments.PROCEDURE_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                       | Gimp.ProcedureSensitivityMask.DRAWABLES)
        procedure.set_menu_label("Neural Style\u2026")
        procedure.add_menu_path("<Image>/Filters/Artistic")
        procedure.set_documentation(
            "Repaint layers in the style of an image (neural style transfer)",
            "Adds a layer above each selected layer, named '<layer> \u2013 <style>', repainted by the local "
            "Neural Style engine in the style of an image file, a style-library entry or another layer. "
            "Outside the selection the new layer is transparent; the source layers are not changed.",
            name)
        procedure.set_attribution("Neural Style for GIMP and Krita", "MIT", "2026")
        for arg in arguments.arguments():
            _add_argument(procedure, arg)
        return procedure


# ------------------------------------------------------------------------------------------ running

def run(procedure, run_mode, image, drawables, config, data):
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    try:
        if interactive:
            import gimp_dialog
            if not gimp_dialog.run_dialog(procedure, config):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        values = read_values(config)
        cancel_window = None
        if interactive:
            import gimp_dialog
            cancel_window = gimp_dialog.CancelWindow()
        try:
            finished = stylize_layers(image, list(drawables), values, cancel_window)
        finally:
            if cancel_window is not None:
                cancel_window.close()
        if not finished:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except (UserError, arguments.SettingsError, ValueError) as error:
        message = str(error)
        _log().info("refused: %s", message)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))
    except Exception as error:   # a bug: keep the details in the log, give the artist one sentence
        _log().error("unexpected failure:\n%s", traceback.format_exc())
        message = "Neural Style failed unexpectedly (%s: %s); details are in the plug-in log" % (
            type(error).__name__, error)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def read_values(config):
    """The procedure config -> {argument name: plain Python value} (files as paths, layers as layers)."""
    values = {}
    for arg in arguments.arguments():
        value = config.get_property(arg.name)
        if arg.kind == "file":
            value = value.get_path() if value is not None else None
        values[arg.name] = value
    return values


def _client_module():
    try:
        from shared import client, protocol
    except ImportError as error:
        raise UserError("the plug-in is incomplete (%s): reinstall it with python3 installer.py" % error)
    return client, protocol


def _source_layers(image, drawables):
    if not drawables:
        raise UserError("no layer is selected: select the layer(s) to stylize")
    pixels.layer_image_type(image.get_base_type().value_name)   # refuses indexed images
    for drawable in drawables:
        if not drawable.is_layer() or drawable.is_layer_mask():
            raise UserError("'%s' is not a layer: Neural Style works on layers only" % drawable.get_name())
        if drawable.is_group():
            raise UserError("'%s' is a layer group: select the layers inside it" % drawable.get_name())
    return drawables


def stylize_layers(image, drawables, values, cancel_window=None):
    """Stylize every layer; False when the artist cancelled."""
    layers = _source_layers(image, drawables)
    options = arguments.job_options(values)
    source = values["style-source"]
    if source == "file":
        arguments.check_style_file(values["style-file"])
    client_module, protocol = _client_module()
    engine_errors = (client_module.ClientError,)
    Gimp.progress_init("Neural Style: connecting to the engine")
    client = None
    try:
        client = client_module.Client(endpoint=values["engine-endpoint"] or None, autostart=True,
                                      start_timeout=START_TIMEOUT_S, client_name="GIMP Neural Style")
        client.connect()
        style, style_name = resolve_style(client, protocol, values)
        image.undo_group_start()
        try:
            for index, layer in enumerate(layers):
                if not stylize_layer(client, protocol, image, layer, style, style_name, options,
                                     index, len(layers), cancel_window):
                    return False
            return True
        finally:
            image.undo_group_end()
            Gimp.displays_flush()
    except engine_errors as error:
        raise UserError(str(error))
    finally:
        if client is not None:
            client.close()
        Gimp.progress_end()


def resolve_style(client, protocol, values):
    """(StyleRef, display name) of the chosen style."""
    source = values["style-source"]
    if source == "file":
        path = arguments.check_style_file(values["style-file"])
        return protocol.StyleRef.file(path), arguments.style_file_name(path)
    if source == "library":
        style_id = (values["style-library-id"] or "").strip()
        if not style_id:
            raise UserError("style-library-id is empty: choose a style from the library")
        for info in client.list_styles():
            if info.get("id") == style_id:
                return protocol.StyleRef.library(style_id), info.get("name") or style_id
        raise UserError("the style library has no style with id '%s'" % style_id)
    if source == "layer":
        layer = values["style-layer"]
        if layer is None or not layer.is_valid():
            raise UserError("style-layer is empty: choose the layer to take the style from")
        fmt = pixels.pixel_format("u8", 4)
        data = read_pixels(layer, fmt)
        style_pixels = protocol.Pixels(layer.get_width(), layer.get_height(), 4, "u8", data)
        return protocol.StyleRef.pixels(style_pixels, name=layer.get_name()), layer.get_name()
    raise UserError("style-source must be file, library or layer, got '%s'" % source)


def read_pixels(drawable, fmt):
    width, height = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, width, height), 1.0, fmt.babl,
                                     Gegl.AbyssPolicy.CLAMP)
    data = bytes(data)
    pixels.check_frame(width, height, fmt, data, "layer '%s'" % drawable.get_name())
    return data


def read_mask(image, layer):
    """The selection over the layer's area as one u8 channel (0 = outside), or None without a selection."""
    _, offset_x, offset_y = layer.get_offsets()
    width, height = layer.get_width(), layer.get_height()
    bounds = pixels.selection_bounds_from_gimp(*Gimp.Selection.bounds(image)[1:])
    plan = pixels.selection_plan((offset_x, offset_y, width, height), bounds)
    if plan == "none":
        return None
    if plan == "outside":
        raise UserError("the selection does not overlap layer '%s': select part of it, or select none"
                        % layer.get_name())
    buffer = image.get_selection().get_buffer()
    data = bytes(buffer.get(Gegl.Rectangle.new(offset_x, offset_y, width, height), 1.0, pixels.MASK_FORMAT,
                            Gegl.AbyssPolicy.NONE))
    if len(data) != width * height:
        raise UserError("the selection of layer '%s' could not be read (%d bytes for %dx%d)"
                        % (layer.get_name(), len(data), width, height))
    return data


def paint(layer, result):
    """Write a Pixels (preview or result, at the layer's size) into the layer and show it."""
    width, height = layer.get_width(), layer.get_height()
    if (result.width, result.height) != (width, height):
        raise UserError("the engine returned %dx%d pixels for the %dx%d layer '%s'"
                        % (result.width, result.height, width, height, layer.get_name()))
    fmt = pixels.pixel_format(result.dtype, result.channels)
    data = bytes(result.data)
    pixels.check_frame(width, height, fmt, data, "the engine's image")
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), fmt.babl, data)
    buffer.flush()
    layer.update(0, 0, width, height)
    Gimp.displays_flush()


def stylize_layer(client, protocol, image, layer, style, style_name, options, index, count, cancel_window):
    """Stylize one layer into a new layer above it; False when the artist cancelled."""
    dtype = pixels.dtype_for_precision(image.get_precision().value_name)
    fmt = pixels.pixel_format(dtype, 4)
    width, height = layer.get_width(), layer.get_height()
    mask = read_mask(image, layer)
    data = read_pixels(layer, fmt)

    layer_type = getattr(Gimp.ImageType, pixels.layer_image_type(image.get_base_type().value_name))
    result_layer = Gimp.Layer.new(image, arguments.result_layer_name(layer.get_name(), style_name),
                                  width, height, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    _, offset_x, offset_y = layer.get_offsets()
    image.insert_layer(result_layer, layer.get_parent(), image.get_item_position(layer))
    result_layer.set_offsets(offset_x, offset_y)
    result_layer.fill(Gimp.FillType.TRANSPARENT)

    Gimp.progress_set_text(progress.status_text({"stage": "waiting for the engine"}, layer.get_name(), index, count))
    started = time.monotonic()
    cancel_sent = False
    painted = False
    previews = 0
    try:   # from here on every failure leaves the image as it was, or keeps a clearly named preview
        job = client.submit(image=protocol.Pixels(width, height, 4, dtype, data), styles=[style],
                            options=options,
                            mask=protocol.Pixels(width, height, 1, "u8", mask) if mask is not None else None)
        for event in job.events():
            if event.type == "progress":
                text = progress.status_text(event.header, layer.get_name(), index, count)
                done = progress.fraction(event.header, index, count)
                Gimp.progress_set_text(text)
                Gimp.progress_update(done)
                if cancel_window is not None:
                    cancel_window.update(text, done, layer.get_name())
                if event.pixels is not None:
                    paint(result_layer, event.pixels)
                    if not painted:
                        _log().info("'%s': first preview painted", layer.get_name())
                    painted = True
                    previews += 1
            elif event.type == "result":
                paint(result_layer, event.pixels)
                _log().info("stylized '%s' (%dx%d %s) in %.1f s, %d preview(s)", layer.get_name(), width,
                            height, dtype, time.monotonic() - started, previews)
                return True
            elif event.type == "error":
                raise UserError("layer '%s' could not be stylized: %s" % (
                    layer.get_name(), event.header.get("message") or "the engine reported an error"))
            elif event.type == "cancelled":
                if not painted:
                    image.remove_layer(result_layer)
                return False
            if cancel_window is not None and cancel_window.cancelled and not cancel_sent:
                job.cancel()
                cancel_sent = True
        raise UserError("layer '%s' could not be stylized: the engine ended the job without a result"
                        % layer.get_name())
    except BaseException as error:
        if not result_layer.is_valid() or (cancel_sent and painted):   # cancelled: keeps the last preview
            raise
        from shared.client import ClientError
        if not isinstance(error, (UserError, ClientError)) or not painted:
            image.remove_layer(result_layer)                 # nothing to keep: the image is as before
            if isinstance(error, ClientError):               # the engine is gone: name the layer it ran
                raise UserError("layer '%s' could not be stylized: %s" % (layer.get_name(), error)) from error
            raise
        # The job failed after previews (engine error, engine gone): keep the last preview, named
        # so that nobody takes it for a finished result.
        name = arguments.incomplete_layer_name(result_layer.get_name())
        result_layer.set_name(name)
        reason = str(error)
        if isinstance(error, ClientError):
            reason = "layer '%s' could not be stylized: %s" % (layer.get_name(), reason)
        _log().info("the job of '%s' failed after %d preview(s); kept as '%s'", layer.get_name(), previews,
                    name)
        raise UserError("%s; the last preview is kept as layer '%s'" % (reason.rstrip("."), name)) from error


if __name__ == "__main__":
    Gimp.main(NeuralStyle.__gtype__, sys.argv)
