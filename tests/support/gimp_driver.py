"""Batch driver that runs INSIDE GIMP 3 (python-fu-eval), not under pytest.

    gimp-console-3.0 ... --batch-interpreter=python-fu-eval
        -b "import sys; sys.argv=['gimp_driver', 'CASES.json']; exec(open('gimp_driver.py').read())" --quit

CASES.json: {"out_dir": ..., "results": ..., "cases": [{"name", "kind", "args": {...}}, ...]}.
Each case builds a small image, calls python-fu-neural-style through the PDB exactly as a script
would, and records what happened; pixel checks are done by pytest on the raw dumps (GIMP's
Python has no NumPy). Every case is isolated: an exception is recorded, not raised.
"""

import array
import json
import os
import sys
import time
import traceback

import gi
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

PROCEDURE = "python-fu-neural-style"
IDLE_WAIT_S = 10.0


def engine_client(endpoint):
    """A client from the installed plug-in's copy of shared/ (GIMP's Python has pyzmq and msgpack)."""
    plugin = os.path.join(os.environ["XDG_CONFIG_HOME"], "GIMP", "3.0", "plug-ins", "neural_style")
    if plugin not in sys.path:
        sys.path.insert(0, plugin)
    from shared.client import Client
    return Client(endpoint, autostart=False, connect_timeout=2.0)


def before_run(action, endpoint):
    """What happens to the engine just before a case: "stop" (asked to shut down) or "kill" (SIGKILL)."""
    import signal
    client = engine_client(endpoint)
    try:
        client.connect()
        pid = client.status().get("pid")
        if action == "stop":
            client.shutdown()
        elif action == "kill":
            os.kill(pid, signal.SIGKILL)
        return {"pid": pid, "at": time.time()}
    finally:
        client.close()


def wait_engine_idle(endpoint):
    """time.time() when the engine on `endpoint` runs and queues nothing (None if not within IDLE_WAIT_S)."""
    client = engine_client(endpoint)
    try:
        deadline = time.monotonic() + IDLE_WAIT_S
        while time.monotonic() < deadline:
            report = client.status()
            if not report.get("running") and not report.get("queued"):
                return time.time()
            time.sleep(0.05)
        return None
    finally:
        client.close()


def write_ui_plan(case, out_dir):
    """The plan tests/support/gimp_ui_hook.py follows inside the plug-in (no actions: it stays idle)."""
    path = os.environ.get("NEURAL_STYLE_UI_PLAN")
    if not path:
        return None
    record = "%s/%s-ui.json" % (out_dir, case["name"])
    with open(path, "w") as f:
        json.dump({"record": record, "actions": case.get("ui") or []}, f)
    return record if case.get("ui") else None


def pattern(width, height, seed, half_alpha_from_row=None):
    """u8 RGBA test content: gradients plus an 8 px checker; opaque, or alpha 128 from a row on."""
    data = bytearray(width * height * 4)
    i = 0
    for y in range(height):
        for x in range(width):
            data[i] = (x * 255 // max(width - 1, 1) + seed) % 256
            data[i + 1] = (y * 255 // max(height - 1, 1) + 2 * seed) % 256
            data[i + 2] = 200 if (x // 8 + y // 8) % 2 else 40
            data[i + 3] = 128 if half_alpha_from_row is not None and y >= half_alpha_from_row else 255
            i += 4
    return bytes(data)


def deep_pattern(width, height, seed, precision):
    """The u8 pattern at 16-bit or float depth, with levels between the 8-bit ones (a real deep image)."""
    base = pattern(width, height, seed)
    if precision == "u16":
        values = array.array("H", (v * 257 if i % 4 == 3 else min(v * 257 + (i * 37) % 257, 65535)
                                   for i, v in enumerate(base)))
        return "R'G'B'A u16", values.tobytes()
    values = array.array("f", (v / 255.0 if i % 4 == 3 else min((v + (i * 37 % 100) / 100.0) / 255.0, 1.0)
                               for i, v in enumerate(base)))
    return "R'G'B'A float", values.tobytes()


def add_layer(image, name, width, height, offsets, seed, precision="u8", half_alpha_from_row=None):
    layer = Gimp.Layer.new(image, name, width, height, Gimp.ImageType.RGBA_IMAGE, 100.0,
                           Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*offsets)
    buffer = layer.get_buffer()
    if precision == "u8":
        babl, data = "R'G'B'A u8", pattern(width, height, seed, half_alpha_from_row)
    else:
        babl, data = deep_pattern(width, height, seed, precision)
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), babl, data)
    buffer.flush()
    layer.update(0, 0, width, height)
    return layer


def dump(drawable, babl, path):
    width, height = drawable.get_width(), drawable.get_height()
    data = bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, width, height), 1.0, babl,
                                           Gegl.AbyssPolicy.CLAMP))
    with open(path, "wb") as f:
        f.write(data)
    return {"path": path, "format": babl, "width": width, "height": height, "bytes": len(data)}


def describe(layer):
    _, x, y = layer.get_offsets()
    return {"name": layer.get_name(), "width": layer.get_width(), "height": layer.get_height(),
            "offsets": [x, y], "has_alpha": layer.has_alpha()}


def call(image, drawables, args, run_mode=Gimp.RunMode.NONINTERACTIVE):
    """Run the procedure; (status name, error message or None, seconds)."""
    pdb = Gimp.get_pdb()
    procedure = pdb.lookup_procedure(PROCEDURE)
    if procedure is None:
        raise RuntimeError("%s is not registered: the plug-in did not load" % PROCEDURE)
    config = procedure.create_config()
    config.set_property("run-mode", run_mode)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawables)
    for name, value in args.items():
        if name == "style-file":
            value = Gio.File.new_for_path(value)
        elif name == "style-layer":      # the name of another layer of the image
            value = next(layer for layer in image.get_layers() if layer.get_name() == value)
        config.set_property(name, value)
    started = time.monotonic()
    result = procedure.run(config)
    elapsed = time.monotonic() - started
    status = result.index(0)
    message = None
    if status != Gimp.PDBStatusType.SUCCESS:
        message = pdb.get_last_error()
        if not message and result.length() > 1:
            message = str(result.index(1))
    return status.value_nick, message, elapsed


def new_image(precision):
    if precision == "u8":
        return Gimp.Image.new(64, 64, Gimp.ImageBaseType.RGB)
    value = {"u16": Gimp.Precision.U16_NON_LINEAR, "float": Gimp.Precision.FLOAT_LINEAR}[precision]
    return Gimp.Image.new_with_precision(64, 64, Gimp.ImageBaseType.RGB, value)


def run_case(case, out_dir):
    name, kind, args = case["name"], case["kind"], case["args"]
    record = {"name": name}
    precision = case.get("precision", "u8")
    image = new_image(precision)
    babl = {"u8": "R'G'B'A u8", "u16": "R'G'B'A u16", "float": "R'G'B'A float"}[precision]
    record["babl"] = babl
    add_layer(image, "Background", 64, 64, (0, 0), seed=0)
    second = None
    if kind == "two-layers":
        second = add_layer(image, "Second", 64, 64, (0, 0), seed=90)
    if kind == "selection":
        source = add_layer(image, "Photo", 48, 40, (8, 12), seed=50,
                           half_alpha_from_row=case.get("half_alpha_from_row"))
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *case["selection"])
    else:
        width, height = case.get("layer_size", (64, 64))
        source = add_layer(image, case.get("layer_name", "Photo"), width, height, (0, 0), seed=50,
                           precision=precision)
    if case.get("mode") == "gray":
        image.convert_grayscale()
    elif case.get("mode") == "indexed":
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16,
                              False, False, "")
    record["base_type"] = image.get_base_type().value_nick
    record["precision_before"] = image.get_precision().value_nick
    record["source_before"] = dump(source, babl, "%s/%s-source-before.raw" % (out_dir, name))
    count_before = len(image.get_layers())
    run_mode = Gimp.RunMode.INTERACTIVE if case.get("interactive") else Gimp.RunMode.NONINTERACTIVE
    config_path, engine_config = case.get("engine_config") or (None, None)
    if config_path:   # what the installer writes: how the plug-in's client may start the engine
        os.makedirs(os.path.dirname(config_path), exist_ok=True)
        with open(config_path, "w") as f:
            json.dump(engine_config, f)
    if case.get("before"):
        record["before"] = before_run(*case["before"])
    ui_record = write_ui_plan(case, out_dir)
    image.clean_all()
    try:
        status, message, elapsed = call(image, [source] + ([second] if second else []), args, run_mode)
    finally:
        if config_path:
            os.unlink(config_path)
    record.update(status=status, message=message, seconds=round(elapsed, 2), ended_at=time.time())
    if case.get("idle_endpoint"):
        record["idle_at"] = wait_engine_idle(case["idle_endpoint"])
    if ui_record:
        write_ui_plan({"name": name}, out_dir)
        try:
            with open(ui_record) as f:
                record["ui"] = json.load(f)
        except (OSError, ValueError) as error:
            record["ui"] = {"error": "no record from the UI hook: %s" % error}
    record["dirty_after"] = bool(image.is_dirty())
    record["image_types"] = Gimp.get_pdb().lookup_procedure(PROCEDURE).get_image_types()
    record["selected_after"] = [layer.get_name() for layer in image.get_selected_layers()]
    layers = image.get_layers()
    record["layers"] = [describe(layer) for layer in layers]
    record["layer_count_before"] = count_before
    record["precision_after"] = image.get_precision().value_nick
    record["source_after"] = dump(source, babl, "%s/%s-source-after.raw" % (out_dir, name))
    position = image.get_item_position(source)
    if len(layers) > count_before and position > 0:
        above = layers[position - 1]
        record["result"] = describe(above)
        record["result_dump"] = dump(above, babl, "%s/%s-result.raw" % (out_dir, name))
    if case.get("repeat"):     # Filters > Repeat: the same procedure on the layers now selected
        mode = Gimp.RunMode.WITH_LAST_VALS if case["repeat"] == "with-last-vals" else Gimp.RunMode.NONINTERACTIVE
        again = call(image, image.get_selected_layers(), args, mode)
        record["repeat"] = {"status": again[0], "message": again[1],
                            "layers": [layer.get_name() for layer in image.get_layers()]}
    image.delete()
    return record


FIDELITY_PRECISIONS = {"u8-srgb": ("U8_NON_LINEAR", "R'G'B'A u8"), "u16-srgb": ("U16_NON_LINEAR", "R'G'B'A u16"),
                       "u16-linear": ("U16_LINEAR", "R'G'B'A u16"), "float-linear": ("FLOAT_LINEAR", "R'G'B'A float"),
                       "float-srgb": ("FLOAT_NON_LINEAR", "R'G'B'A float")}


def run_fidelity_case(case, out_dir):
    """One run on "Photo" (48x40 at (8, 12), alpha 128 from row 18) in an image of the given
    precision, with a hard or feathered selection or none; dumps the source, the selection over the
    layer and the result in the perceptual format of the image's depth, for pytest to compare with
    the engine's own result."""
    name = case["name"]
    precision, babl = FIDELITY_PRECISIONS[case["precision"]]
    image = Gimp.Image.new_with_precision(64, 64, Gimp.ImageBaseType.RGB, getattr(Gimp.Precision, precision))
    add_layer(image, "Background", 64, 64, (0, 0), seed=0)
    source = add_layer(image, "Photo", 48, 40, (8, 12), seed=50, half_alpha_from_row=18)
    record = {"name": name, "babl": babl, "precision_before": image.get_precision().value_nick}
    if case.get("selection"):
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *case["selection"])
        if case.get("feather_selection"):
            Gimp.Selection.feather(image, case["feather_selection"])
        record["mask_dump"] = dump_selection(image, source, "%s/%s-mask.raw" % (out_dir, name))
    record["source_before"] = dump(source, babl, "%s/%s-source-before.raw" % (out_dir, name))
    count_before = len(image.get_layers())
    status, message, elapsed = call(image, [source], case["args"])
    record.update(status=status, message=message, seconds=round(elapsed, 2), layer_count_before=count_before)
    layers = image.get_layers()
    record["layers"] = [describe(layer) for layer in layers]
    record["source_after"] = dump(source, babl, "%s/%s-source-after.raw" % (out_dir, name))
    position = image.get_item_position(source)
    if len(layers) > count_before and position > 0:
        record["result"] = describe(layers[position - 1])
        record["result_dump"] = dump(layers[position - 1], babl, "%s/%s-result.raw" % (out_dir, name))
    image.delete()
    return record


def run_frames_case(case, out_dir):
    """Layers as frames: an image whose top-level layers are `case["frames"]` ([name, width, height,
    seed], bottom first); the procedure runs on the top layer. Records the layers top to bottom and, per
    frame, its pixels before and after and the layer directly above it (dumped when it is a new layer)."""
    name = case["name"]
    image = Gimp.Image.new(64, 64, Gimp.ImageBaseType.RGB)
    frames = [add_layer(image, frame, width, height, (0, 0), seed) for frame, width, height, seed in case["frames"]]
    record = {"name": name, "frames": []}
    if case.get("selection"):
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *case["selection"])
        record["mask_dump"] = dump_selection(image, frames[0], "%s/%s-mask.raw" % (out_dir, name))
    for index, frame in enumerate(frames):
        record["frames"].append({"name": frame.get_name(), "before": dump(
            frame, "R'G'B'A u8", "%s/%s-frame%d-before.raw" % (out_dir, name, index))})
    ui_record = write_ui_plan(case, out_dir)
    image.clean_all()
    run_mode = Gimp.RunMode.INTERACTIVE if case.get("interactive") else Gimp.RunMode.NONINTERACTIVE
    status, message, elapsed = call(image, [frames[-1]], case["args"], run_mode)
    record.update(status=status, message=message, seconds=round(elapsed, 2), dirty_after=bool(image.is_dirty()))
    if case.get("idle_endpoint"):
        record["idle_at"] = wait_engine_idle(case["idle_endpoint"])
    if ui_record:
        write_ui_plan({"name": name}, out_dir)
        try:
            with open(ui_record) as f:
                record["ui"] = json.load(f)
        except (OSError, ValueError) as error:
            record["ui"] = {"error": "no record from the UI hook: %s" % error}
    layers = image.get_layers()
    record["layers"] = [describe(layer) for layer in layers]
    for index, frame in enumerate(frames):
        entry = record["frames"][index]
        entry["after"] = dump(frame, "R'G'B'A u8", "%s/%s-frame%d-after.raw" % (out_dir, name, index))
        position = image.get_item_position(frame)
        if position > 0 and layers[position - 1] not in frames:
            entry["result"] = describe(layers[position - 1])
            entry["result_dump"] = dump(layers[position - 1], "R'G'B'A u8",
                                        "%s/%s-frame%d-result.raw" % (out_dir, name, index))
    if case.get("repeat"):     # running again: the results of the first run are no frames
        again = call(image, image.get_selected_layers(), case["args"])
        record["repeat"] = {"status": again[0], "message": again[1],
                            "layers": [layer.get_name() for layer in image.get_layers()]}
    image.delete()
    return record


def dump_selection(image, layer, path):
    """The selection's coverage over the layer's area, "Y u8" (0 = outside)."""
    _, x, y = layer.get_offsets()
    width, height = layer.get_width(), layer.get_height()
    data = bytes(image.get_selection().get_buffer().get(Gegl.Rectangle.new(x, y, width, height), 1.0, "Y u8",
                                                        Gegl.AbyssPolicy.NONE))
    with open(path, "wb") as f:
        f.write(data)
    return {"path": path, "width": width, "height": height}


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    Gegl.init(None)
    records = []
    for case in plan["cases"]:
        try:
            run = {"fidelity": run_fidelity_case, "frames": run_frames_case}.get(case["kind"], run_case)
            records.append(run(case, plan["out_dir"]))
        except Exception:
            records.append({"name": case["name"], "driver_error": traceback.format_exc()})
        with open(plan["results"], "w") as f:      # after every case: a hang still leaves the earlier ones
            json.dump({"complete": False, "cases": records}, f, indent=1)
    with open(plan["results"], "w") as f:
        json.dump({"complete": True, "cases": records}, f, indent=1)


main()
