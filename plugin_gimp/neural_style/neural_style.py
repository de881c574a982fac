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
from gi.repository import Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # helper modules and shared/
# pyzmq/msgpack the installer unpacked for GIMP's own Python (docs/install.md) come first.
if os.path.isdir(os.path.join(sys.path[0], "vendor")):
    sys.path.insert(0, os.path.join(sys.path[0], "vendor"))

import gimp_arguments as arguments  # noqa: E402
import gimp_frames as frames        # noqa: E402
from gimp_feedback import RunFeedback  # noqa: E402
import gimp_layers as layers_io     # noqa: E402
import gimp_pixels as pixels        # noqa: E402
import gimp_progress as progress    # noqa: E402

START_TIMEOUT_S = 60.0   # first start of the engine loads TensorFlow and VGG-19


UserError = arguments.UserError


def _log_path():
    handler = next(iter(_log().handlers), None)
    return getattr(handler, "baseFilename", None)


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
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                       | Gimp.ProcedureSensitivityMask.DRAWABLES)
        procedure.set_menu_label("Neural Style\u2026")
        procedure.add_menu_path("<Image>/Filters/Artistic")
        procedure.set_documentation(
            "Repaint layers in the style of an image (neural style transfer)",
            "Adds a layer above each selected layer, named '<layer> \u2013 <style>', repainted by the local "
            "Neural Style engine in the style of an image file, a style-library entry or another layer. "
            "Outside the selection the new layer is transparent; the source layers are not changed. With "
            "layers-as-frames every top-level layer is a frame of an animation (the bottom one first), stylized "
            "coherently with the frame before it, its result above it.",
            name)
        procedure.set_attribution("Neural Style for GIMP and Krita", "MIT", "2026")
        for arg in arguments.arguments():
            _add_argument(procedure, arg)
        for arg in arguments.AUX_ARGUMENTS:
            procedure.add_boolean_aux_argument(arg.name, arg.label, arg.help, bool(arg.default),
                                               GObject.ParamFlags.READWRITE)
        return procedure


# ------------------------------------------------------------------------------------------ running

def run(procedure, run_mode, image, drawables, config, data):
    # Filters > Repeat runs WITH_LAST_VALS: an artist at the screen too, so the same windows.
    ui = run_mode != Gimp.RunMode.NONINTERACTIVE
    try:
        if run_mode == Gimp.RunMode.INTERACTIVE:
            import gimp_dialog
            if not gimp_dialog.run_dialog(procedure, config, image, list(drawables)):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        values = arguments.read_values(config)
        cancel_window = None
        if ui:
            import gimp_windows
            cancel_window = gimp_windows.CancelWindow()
        try:
            finished = stylize_layers(image, list(drawables), values, cancel_window)
        finally:
            if cancel_window is not None:
                cancel_window.close()
        if not finished:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except (UserError, arguments.SettingsError, ValueError) as error:
        return _failed(procedure, error, str(error), ui)
    except Exception as error:   # a bug: keep the details in the log, give the artist one sentence
        _log().error("unexpected failure:\n%s", traceback.format_exc())
        message = "Neural Style failed unexpectedly (%s: %s); details are in the plug-in log" % (
            type(error).__name__, error)
        return _failed(procedure, error, message, ui)
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _failed(procedure, error, message, ui):
    """Scripts get the full sentence as the execution error; an artist gets one short sentence in a
    message box whose Details hold the full text and the logs' paths (and GIMP adds no second box)."""
    _log().info("failed: %s", message)
    if not ui:
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))
    summary, details = describe_failure(error, message)
    try:
        import gimp_windows
        gimp_windows.show_error(summary, details)
    except Exception:   # no display after all: GIMP shows the sentence itself
        _log().error("the error window failed:\n%s", traceback.format_exc())
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(summary))
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, None)


def describe_failure(error, message):
    """(summary, details) for the artist."""
    from shared.explain import explain
    code, cause = getattr(error, "code", None), getattr(error, "cause", None)
    if code or cause is not None or not isinstance(error, (UserError, ValueError)):
        explanation = explain(error=cause, code=code, message=getattr(error, "engine_message", "") or message)
        summary, details = explanation.summary, explanation.details
        if message not in details:
            details = message + "\n\n" + details
    else:   # the plug-in's own check: already the artist's words
        summary = message[:1].upper() + message[1:].rstrip(".") + "."
        details = message
    kept = getattr(error, "kept", None)
    if kept:
        details = "The last preview is kept as layer '%s'.\n\n%s" % (kept, details)
    log = _log_path()
    if log:
        details += "\nPlug-in log: %s" % log
    return summary, details


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
    undo = layers_io.UndoGroup(image)
    try:
        client = client_module.Client(endpoint=values["engine-endpoint"] or None, autostart=True,
                                      start_timeout=START_TIMEOUT_S, client_name="GIMP Neural Style")
        client.connect()
        style, style_name = resolve_style(client, protocol, values)
        try:
            if frames.wanted(values, image):
                return frames.stylize_frames(client, protocol, image, values, style, style_name, options,
                                             cancel_window, undo, _log())
            for index, layer in enumerate(layers):
                if not stylize_layer(client, protocol, image, layer, style, style_name, options,
                                     index, len(layers), cancel_window, undo):
                    return False
            return True
        finally:
            if undo.started:     # the sources stay the target of the next run (Filters > Repeat)
                image.set_selected_layers(layers)
            undo.end()
            Gimp.displays_flush()
    except engine_errors as error:
        raise UserError(str(error), cause=error) from error
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
        data = layers_io.read_pixels(layer, fmt)
        style_pixels = protocol.Pixels(layer.get_width(), layer.get_height(), 4, "u8", data)
        return protocol.StyleRef.pixels(style_pixels, name=layer.get_name()), layer.get_name()
    raise UserError("style-source must be file, library or layer, got '%s'" % source)


def stylize_layer(client, protocol, image, layer, style, style_name, options, index, count, cancel_window,
                  undo):
    """Stylize one layer into a new layer above it (made when the first pixels arrive); False when the
    artist cancelled."""
    dtype = pixels.dtype_for_precision(image.get_precision().value_name)
    fmt = pixels.pixel_format(dtype, 4)
    width, height = layer.get_width(), layer.get_height()
    mask = layers_io.read_mask(image, layer)
    data = layers_io.read_pixels(layer, fmt)
    name = arguments.result_layer_name(layer.get_name(), style_name)
    result_layer = None

    def show(result):
        nonlocal result_layer
        if result_layer is None:
            result_layer = layers_io.new_result_layer(image, layer, name, undo)
        layers_io.paint(result_layer, result)

    def stopped(reason, **why):
        """Keep what was painted, named so that nobody takes it for a finished result."""
        if result_layer is None:
            return UserError(reason, **why)
        kept = arguments.incomplete_layer_name(result_layer.get_name())
        result_layer.set_name(kept)
        _log().info("the job of '%s' ended after %d preview(s); kept as '%s'", layer.get_name(), previews, kept)
        return UserError("%s; the last preview is kept as layer '%s'" % (reason.rstrip("."), kept), kept=kept,
                         **why)

    Gimp.progress_set_text(progress.status_text({"stage": "waiting for the engine"}, layer.get_name(), index, count))
    started = time.monotonic()
    feedback = RunFeedback(cancel_window)
    previews = 0
    from shared.client import ClientError
    try:
        job = client.submit(image=protocol.Pixels(width, height, 4, dtype, data), styles=[style],
                            options=options,
                            mask=protocol.Pixels(width, height, 1, "u8", mask) if mask is not None else None)
        while True:
            event = job.poll(0.05)
            if feedback.cancel_now():
                job.cancel()
            if event is None:
                if job.done:
                    raise UserError("layer '%s' could not be stylized: the engine ended the job without a "
                                    "result" % layer.get_name())
                continue
            if event.type == "progress":
                text = progress.status_text(event.header, layer.get_name(), index, count)
                feedback.show(text, progress.fraction(event.header, index, count))
                if event.pixels is not None:
                    show(event.pixels)
                    if not previews:
                        _log().info("'%s': first preview painted", layer.get_name())
                    previews += 1
            elif event.type == "result":
                show(event.pixels)
                _log().info("stylized '%s' (%dx%d %s) in %.1f s, %d preview(s)", layer.get_name(), width,
                            height, dtype, time.monotonic() - started, previews)
                return True
            elif event.type == "error":
                message = event.header.get("message") or "the engine reported an error"
                raise stopped("layer '%s' could not be stylized: %s" % (layer.get_name(), message),
                              code=event.header.get("code"), engine_message=message)
            elif event.type == "cancelled":
                if result_layer is not None:
                    stopped("cancelled")
                return False
    except ClientError as error:       # the engine refused the job, died or stopped answering
        raise stopped("layer '%s' could not be stylized: %s" % (layer.get_name(), error), cause=error) from error
    except UserError:
        raise
    except BaseException:
        if result_layer is not None and result_layer.is_valid():
            image.remove_layer(result_layer)          # a bug: no half-made layer stays behind
        raise


if __name__ == "__main__":
    Gimp.main(NeuralStyle.__gtype__, sys.argv)
