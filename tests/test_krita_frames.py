"""Krita, animated layers (issue 18, docs/frames.md): Apply on an animated paint layer gives a NEW
animated layer whose keyframes are at the source's keyframe times and whose frames are, to one
8-bit level, what a plain client's shared.frames.FrameSequence gets from the same engine with the
same options; the source is untouched; progress says frame k of n; Cancel after the first frame
keeps that frame in a layer named "(incomplete)". A plain layer still gives a plain layer.

The animation is a .kra pytest writes (tests/support/animation.py; keyframes at 0, 2, 4: not one
apart; the test starts at time 3, where the artist's time must stay). The oracle
decodes Krita's BGRA itself. Krita runs once per session (tests/support/krita_fixture.py) for these
cases and the other modules'.
"""

import base64
import numpy as np
import pytest

from tests.support import krita_session
from tests.support.animation import HEIGHT, TIMES, WIDTH, animation_kra
from tests.support.engine_reference import NUMPY_DTYPES, TOLERANCE, assert_same_result, engine_result
from tests.support.krita_fixture import krita_cases

pytestmark = pytest.mark.editor

JOB = {"iterations": 4, "max_size": 64, "preview_interval_s": 0.2, "advanced": {"seed": 11}}
CANCEL_JOB = {"iterations": 60, "max_size": 64, "preview_interval_s": 0.2, "advanced": {"seed": 5}}
CANCEL_S = 30.0     # cancel -> "cancelled" (a frame left alone runs for seconds)


@krita_cases
def frame_cases(ctx):
    cases = [dict(JOB, name="frames", kind="frames", time=3, kra=animation_kra(ctx.root, "frames")),
             dict(CANCEL_JOB, name="frames_cancel", kind="frames_cancel", kra=animation_kra(ctx.root, "frames_cancel"))]

    def after(details, results):
        """While the engine still runs: the same frames from a plain client's FrameSequence."""
        references = details.setdefault("frame_references", {})
        record = ((results or {}).get("cases") or {}).get("frames")
        if record and "exception" not in record and record.get("ok"):
            try:
                references["frames"] = frame_sequence_results(ctx, record)
            except Exception as error:   # reported by the test that needs it
                references["frames"] = error
        record = ((results or {}).get("cases") or {}).get("frames_cancel")
        if record and "exception" not in record and record.get("ok"):
            try:   # frame 0 of a sequence is a plain job (no previous frame)
                source = krita_rgba(record["before"][str(TIMES[0])])
                references["frames_cancel"] = engine_result(ctx.endpoint, source, "u8", "srgb", ctx.style,
                                                            record["options"])
            except Exception as error:
                references["frames_cancel"] = error

    return {"cases": cases, "after": after}


def krita_rgba(encoded):
    """A frame's bytes from Node.pixelDataAtTime (B, G, R, A) -> H x W x 4 array in R, G, B, A."""
    data = np.frombuffer(base64.b64decode(encoded), np.uint8).reshape(HEIGHT, WIDTH, 4)
    return data[..., [2, 1, 0, 3]]


def frame_sequence_results(ctx, record):
    from shared.client import Client
    from shared.frames import FrameSequence
    from shared.protocol import Pixels, StyleRef
    sources = [krita_rgba(record["before"][str(t)]) for t in TIMES]

    def read_frame(k):
        return Pixels(WIDTH, HEIGHT, 4, "u8", np.ascontiguousarray(sources[k]).tobytes(), "srgb")

    results = {}
    with Client(ctx.endpoint, autostart=False) as client:
        sequence = FrameSequence(client, len(TIMES), read_frame, [StyleRef.file(ctx.style)], dict(record["options"]))
        while not sequence.done:
            got = sequence.poll(0.25)
            if got is not None and got.event.type == "result":
                results[got.index] = got.event.pixels
            elif got is not None and got.event.is_final:
                raise AssertionError("the plain client's frame %d ended with %r" % (got.index, got.event.header))
    assert sorted(results) == [0, 1, 2], sorted(results)
    return [np.frombuffer(results[k].data, NUMPY_DTYPES["u8"]).reshape(HEIGHT, WIDTH, 4) for k in range(3)]


def frame_case(krita, name):
    cases, details = krita
    assert name in cases, "Krita did not run case %r (exit %s):\n%s" % (
        name, details["exit_code"], krita_session.log_tail(details))
    record = cases[name]
    assert "exception" not in record, record["exception"]
    return record, details


def test_an_animated_layer_gives_a_new_animated_layer_with_the_engines_frames(krita):
    record, details = frame_case(krita, "frames")
    assert record["keyframes_before"] == TIMES, "the test's animation has keyframes %s" % record["keyframes_before"]
    assert record["ok"] and record["finished_in_time"], record
    assert record["finished"]["outcome"] == "done", record["finished"]
    assert record["layer_names"] == ["Background", "Anim", "Anim – Starry"], record["layer_names"]
    result = record["result"]
    assert result["animated"] and result["keyframes"] == TIMES, result["keyframes"]
    assert result["depth"] == "U8" and result["opacity"] == 255 and result["children"] == 0, result
    # The source is never written, and the artist's current time is where it was.
    assert record["source_after"] == record["before"] and record["source_keyframes_after"] == TIMES
    assert record["time_after"] == record["time_before"] == 3, (record["time_before"], record["time_after"])
    reference = details.get("frame_references", {}).get("frames")
    if isinstance(reference, Exception):
        raise reference
    assert reference is not None, "no engine reference for the frames"
    for k, t in enumerate(TIMES):
        editor = krita_rgba(result["frames"][str(t)]).astype(np.float64) / 255.0
        engine = reference[k].astype(np.float64) / 255.0
        source = krita_rgba(record["before"][str(t)]).astype(np.float64) / 255.0
        change = np.abs(engine[..., :3] - source[..., :3]).mean()
        assert change > 1 / 255, "frame %d: the engine's result hardly differs from the source (%.5f)" % (k, change)
        assert_same_result(editor, engine, TOLERANCE["u8"], "frame %d (time %d)" % (k, t))
    texts = record["progress_texts"]
    for k in range(3):
        assert any("frame %d/3" % (k + 1) in text for text in texts), texts
    assert any(text.startswith("Anim – ") for text in texts), texts
    # A layer that is not animated still gives a plain layer.
    plain = record["plain"]
    assert plain["ok"] and plain["finished"]["outcome"] == "done", plain
    assert plain["results"] == 1 and plain["animated"] is False, plain
    assert record["all_frames_shown"] == {"Sketch": [False, True], "Anim": [True, True]}, record["all_frames_shown"]


def test_cancel_after_the_first_frame_keeps_it_in_a_layer_named_incomplete(krita):
    record, details = frame_case(krita, "frames_cancel")
    assert record["ok"] and record["second_frame_started"], record["progress_texts"][-5:]
    assert record["finished_in_time"] and record["stop_to_finished_s"] < CANCEL_S, record["stop_to_finished_s"]
    assert record["finished"]["outcome"] == "cancelled", record["finished"]
    assert not record["busy_after"]
    assert record["layer_names"] == ["Background", "Anim", "Anim – Starry (incomplete)"], record["layer_names"]
    assert record["source_after"] == record["before"]
    result = record["result"]
    assert result["animated"] and result["keyframes"] == TIMES, result
    reference = details.get("frame_references", {}).get("frames_cancel")
    if isinstance(reference, Exception):
        raise reference
    first = krita_rgba(result["frames"][str(TIMES[0])]).astype(np.float64) / 255.0
    assert_same_result(first, reference.astype(np.float64) / 255.0, TOLERANCE["u8"], "the frame done")
    for t in TIMES[1:]:   # never done: empty, never the source's pixels
        assert not krita_rgba(result["frames"][str(t)]).any(), "frame at time %d is not empty" % t
