"""GIMP 3 "Layers as frames" (issue #18 item 3): every top-level layer is a frame, the bottom one the
first; each frame gets its result layer directly above it, and frame k > 0 is stylized with frame k-1
(previous_frame, docs/frames.md). In the real GIMP (one session, tests/support/gimp_fixture.py).

The oracle for the pixels is a plain client's shared.frames.FrameSequence on the same engine, with the
frames GIMP dumped before the run and the options the plug-in must send (built here from
shared/options.py's table, not by the plug-in's code).
"""

import numpy as np
import pytest

from tests.support.engine_reference import TOLERANCE, assert_same_result, engine_result
from tests.support.gimp_fixture import gimp_cases
from tests.support.skips import skip_or_fail

pytestmark = pytest.mark.editor

DASH = "\u2013"
THREE = [["F1", 64, 64, 50], ["F2", 64, 64, 58], ["F3", 64, 64, 66]]      # name, width, height, seed
ARGS = {"iterations": 4, "max-size": 64, "preview-interval-s": 0.5, "seed": 11, "feather": 0,
        "layers-as-frames": True}
SELECTION = (8, 12, 40, 32)      # x, y, w, h in the 64x64 frames
SLOW = {"iterations": 60, "optimizer": "adam", "preview-interval-s": 0.2}  # frame 2 still runs at Cancel


@gimp_cases
def frames_cases(ctx):
    style = ctx.style
    cases = [
        {"name": "frames-three", "kind": "frames", "frames": THREE, "repeat": True,
         "args": dict(ARGS, **{"style-file": style})},
        {"name": "frames-selection", "kind": "frames", "frames": THREE[:2], "selection": list(SELECTION),
         "args": dict(ARGS, **{"style-file": style})},
        {"name": "frames-odd-size", "kind": "frames",
         "frames": [["F1", 64, 64, 50], ["F2", 64, 64, 58], ["Odd", 80, 64, 66]],
         "args": dict(ARGS, **{"style-file": style})},
        # Interactive: the dialog starts from the last run's values, so the case sets its own.
        {"name": "frames-cancel", "kind": "frames", "frames": THREE, "interactive": True,
         "idle_endpoint": ctx.endpoint, "args": dict(ARGS, **SLOW, **{"style-file": style}),
         "ui": [["wait_dialog", None], ["inspect", None], ["set_file", ["style-file", style]]]
         + [["set", [name, value]] for name, value in dict(ARGS, **SLOW, **{"style-source": "file"}).items()]
         + [["click", "ok"], ["wait_progress_text", "frame 2/3"], ["cancel_progress", None]]},
        {"name": "frames-one-layer", "kind": "frames", "frames": [["Solo", 64, 64, 50]], "interactive": True,
         "args": dict(ARGS, **{"style-file": style}),
         "ui": [["wait_dialog", None], ["inspect", None], ["click", "cancel"]]},
    ]
    references = {}

    def finish(info, results):
        """While the engine still runs: the same frames through a plain client's FrameSequence."""
        for record in (results or {}).get("cases", []):
            if record["name"] in ("frames-three", "frames-selection") and record.get("status") == "success":
                try:
                    references[record["name"]] = reference_frames(ctx, record)
                except Exception as error:   # reported by the test that needs it
                    references[record["name"]] = error

    return {"cases": cases, "finish": finish, "info": {"frames_references": references}}


def job_options():
    """What the plug-in must send: the option table's defaults, strength 50, this module's arguments."""
    from shared.options import defaults, strength_to_style_weight
    from shared.protocol import EXTRA_OPTIONS
    options = {key: list(value) if isinstance(value, tuple) else value for key, value in defaults().items()
               if value != ()}
    options.update({option.name: option.default for option in EXTRA_OPTIONS})
    options["style_weight"] = strength_to_style_weight(50.0)
    options.update({key.replace("-", "_"): value for key, value in ARGS.items() if key != "layers-as-frames"})
    return options


def load(dump):
    return np.fromfile(dump["path"], dtype=np.uint8).reshape(dump["height"], dump["width"], 4)


def reference_frames(ctx, record):
    from shared.client import Client
    from shared.frames import FrameSequence
    from shared.protocol import Pixels, StyleRef
    frames = [load(frame["before"]) for frame in record["frames"]]
    mask = None
    if "mask_dump" in record:
        dump = record["mask_dump"]
        mask = Pixels(dump["width"], dump["height"], 1, "u8", open(dump["path"], "rb").read())

    def read_frame(index):
        height, width = frames[index].shape[:2]
        return Pixels(width, height, 4, "u8", frames[index].tobytes())

    results = {}
    with Client(ctx.endpoint, autostart=False) as client:
        sequence = FrameSequence(client, len(frames), read_frame, [StyleRef.file(ctx.style)], job_options(), mask)
        while not sequence.done:
            item = sequence.poll(0.25)
            if item is not None and item.event.type == "result":
                pixels = item.event.pixels
                results[item.index] = np.frombuffer(pixels.data, np.uint8).reshape(pixels.height, pixels.width, 4)
            elif item is not None and item.event.is_final:
                raise AssertionError("the reference frame %d ended with %r" % (item.index, item.event.header))
    assert sorted(results) == list(range(len(frames))), sorted(results)
    # Frame 2 alone, as an independent job: what a plug-in that ignored the frame before would give.
    alone = engine_result(ctx.endpoint, frames[1], "u8", "srgb", ctx.style, job_options(),
                          None if mask is None else np.frombuffer(mask.data, np.uint8).reshape(64, 64))
    return [results[index] for index in range(len(frames))], alone


def case(gimp, name):
    by_name, info, _ = gimp
    assert name in by_name, "GIMP did not get to case %r (exit %s):\n%s" % (
        name, info.get("exit_code"), info.get("output", "")[-4000:])
    record = by_name[name]
    assert "driver_error" not in record, record["driver_error"]
    return record


def names(record):
    return [layer["name"] for layer in record["layers"]]


def assert_sources_unchanged(record):
    for frame in record["frames"]:
        with open(frame["before"]["path"], "rb") as a, open(frame["after"]["path"], "rb") as b:
            assert a.read() == b.read(), "frame layer %r changed" % frame["name"]


def needs_display(gimp):
    if gimp[1]["display"] is None:
        skip_or_fail("Xvfb is not installed: the interactive GIMP dialog is not tested")


def test_each_frame_gets_its_result_directly_above_it(gimp):
    record = case(gimp, "frames-three")
    assert record["status"] == "success", record["message"]
    assert names(record) == ["F3 %s style" % DASH, "F3", "F2 %s style" % DASH, "F2", "F1 %s style" % DASH, "F1"]
    for frame in record["frames"]:
        assert (frame["result"]["width"], frame["result"]["height"], frame["result"]["offsets"]) == (64, 64, [0, 0])
    assert_sources_unchanged(record)
    assert record["dirty_after"], "the run left no undo step"


@pytest.mark.parametrize("name", ["frames-three", "frames-selection"])
def test_each_result_is_what_a_plain_clients_frame_sequence_gets(gimp, name):
    """Also with a selection: the selection over the first frame holds for every frame."""
    record = case(gimp, name)
    assert record["status"] == "success", record["message"]
    reference = gimp[1]["frames_references"].get(name)
    if isinstance(reference, Exception):
        raise reference
    sequence, alone = reference
    for index, frame in enumerate(record["frames"]):
        editor, engine, source = (array.astype(np.float64) / 255 for array in (
            load(frame["result_dump"]), sequence[index], load(frame["before"])))
        change = np.abs(engine[..., :3] - source[..., :3]).mean()
        assert change > 1 / 255, "frame %d: the engine's result hardly differs from the frame" % (index + 1)
        print("frame %d: max |GIMP - FrameSequence| %.0f levels" % (index + 1, 255 * np.abs(editor - engine).max()))
        assert_same_result(editor, engine, TOLERANCE["u8"], "frame %d" % (index + 1))
    if "mask_dump" in record:
        x, y, w, h = SELECTION
        for frame in record["frames"]:
            alpha = load(frame["result_dump"])[..., 3]
            assert (alpha[:y].max(), alpha[y + h:].max(), alpha[:, :x].max(), alpha[:, x + w:].max()) == (0, 0, 0, 0)
            assert (alpha[y + 8:y + h - 8, x + 8:x + w - 8] == 255).all()
    apart = np.abs(load(record["frames"][1]["result_dump"]).astype(np.int32) - alone.astype(np.int32))[..., :3].mean()
    print("frame 2: mean |with the frame before - alone| %.2f levels" % apart)
    assert apart > 1.0, "frame 2 came out as if stylized alone: the frame before was not used"


def test_running_again_takes_the_same_frames_not_the_results(gimp):
    record = case(gimp, "frames-three")
    assert record["repeat"]["status"] == "success", record["repeat"]
    layers = record["repeat"]["layers"]
    assert len(layers) == 9, layers
    for frame in ("F3", "F2", "F1"):          # the new result directly above, the first run's above it
        at = layers.index(frame)
        assert layers[at - 1].startswith(frame + " %s style" % DASH), layers
        assert layers[at - 2].startswith(frame + " %s style" % DASH), layers
    assert all(name.count(DASH) <= 1 for name in layers), layers


def test_a_frame_of_another_size_stops_clearly_and_keeps_the_frames_done(gimp):
    record = case(gimp, "frames-odd-size")
    assert record["status"] == "execution-error", record
    message = record["message"]
    print(message)
    assert "'Odd'" in message and "80x64" in message and "64x64" in message, message
    assert "frames 1-2 are stylized and kept" in message, message
    assert "\n" not in message.strip() and "Traceback" not in message, message
    assert names(record) == ["Odd", "F2 %s style" % DASH, "F2", "F1 %s style" % DASH, "F1"]
    assert_sources_unchanged(record)


def test_progress_says_frame_k_of_n_and_cancel_keeps_the_frames_done(gimp):
    needs_display(gimp)
    record = case(gimp, "frames-cancel")
    ui = record.get("ui") or {}
    assert "error" not in ui, ui.get("error")
    assert record["status"] == "cancel", record["message"]
    texts = ui.get("progress_texts", [])
    print("progress texts: %s" % (texts[:3] + texts[-3:],))
    assert any("frame 1/3" in text for text in texts) and any("frame 2/3" in text for text in texts), texts
    assert not any("frame 3/3" in text for text in texts), texts
    layers = names(record)
    assert layers[-2:] == ["F1 %s style" % DASH, "F1"], layers
    assert layers[0] == "F3", layers
    assert layers[1:-2] in (["F2 %s style (incomplete)" % DASH, "F2"], ["F2"]), layers
    assert "result_dump" in record["frames"][0] and "result" not in record["frames"][2]
    assert (load(record["frames"][0]["result_dump"])[..., 3] == 255).all(), "frame 1's result is not whole"
    assert_sources_unchanged(record)
    assert record["idle_at"] is not None and record["idle_at"] - ui["cancel_clicked_at"] <= 2.0, \
        "the engine still worked after Cancel"


def test_the_dialog_offers_layers_as_frames_only_with_two_layers_or_more(gimp):
    needs_display(gimp)
    offered = case(gimp, "frames-cancel")["ui"]["inspected"][0]["check_buttons"]
    alone = case(gimp, "frames-one-layer")["ui"]["inspected"][0]["check_buttons"]
    assert "Layers as frames" in [label.replace("_", "") for label in offered], offered
    assert not any("frames" in label.replace("_", "") for label in alone), alone
