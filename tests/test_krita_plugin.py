"""The real Krita (Xvfb, throwaway profile, started once for all cases) with the real plugin,
driven by a harness Extension (tests/support/krita_driver.py), against a real engine subprocess
with the fake VGG-19 weights on a private ipc endpoint.

The `krita` fixture (tests/support/krita_fixture.py) starts Krita once per session for the cases
every module registers. In CI a missing Krita fails these tests; elsewhere they skip with the reason.
"""

import base64
import os
import time
import socket
import sys

import numpy as np
import pytest

from tests.support import krita_session
from tests.support.engine_fixture import kill_engine_pid
from tests.support.krita_fixture import krita_cases
from tests.support.krita_install import REPO

pytestmark = pytest.mark.editor

SELECTION = (16, 12, 48, 36)     # x, y, w, h in the 96x64 "ns_rgba" document
TINY = (20, 20, 12, 10)          # a selection smaller than the network's deepest layer needs (16 px)
FEATHER = 2
FAST = {"iterations": 24, "max_size": 64, "preview_interval_s": 0.1}
LONG = {"iterations": 3000, "max_size": 64, "preview_interval_s": 0.2}   # only ever cancelled
# Time bounds catch a hang (>= 10x the normal time), never a busy machine; measured normal times in
# docs/testing.md, "Time bounds". A UI blocked by the job shows as one gap of about the job's length,
# hence also "gap < 3/4 of the job" where a job runs.
UI_STALL_S = 5.0          # longest pause of Qt's event loop (a 50 ms timer)
APPLY_RETURN_S = 5.0      # apply() only reads the layer and queues the job
CANCEL_S = 30.0           # cancel / close -> "cancelled"; the job left alone runs for minutes
NO_ENGINE_S = 30.0        # no engine, none to start -> the error
KILL_NOTICED_S = 60.0     # engine SIGKILLed -> the error (the client's silence bound is 5 s)
DTYPES = {"U8": np.uint8, "U16": "<u2", "F16": "<f2", "F32": "<f4"}
FULL_SCALE = {"U8": 255.0, "U16": 65535.0, "F16": 1.0, "F32": 1.0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_autostarted_engine(results):
    """The driver stops the engines it auto-started; if that failed, do not leave them running."""
    cases = (results or {}).get("cases", {})
    pids = [(cases.get("autostart") or {}).get("pid")] + list((cases.get("engine_faults") or {}).get("pids", []))
    pids += [((results or {}).get("at_start") or {}).get("engine_pid"), (cases.get("engine_on_demand") or {}).get(
        "engine_pid")] + list((cases.get("engine_lifecycle") or {}).get("pids", []))
    for pid in filter(None, pids):
        kill_engine_pid(pid)


def damaged_copy(source, target, keep):
    """The first `keep` bytes of `source` (a file cut short, as by a crash or a full disk)."""
    with open(source, "rb") as f:
        data = f.read()
    with open(target, "wb") as f:
        f.write(data[:keep if keep > 0 else len(data) + keep])
    return target


def engine_status(endpoint, idle_within_s=10.0):
    """The engine's status report after Krita exited: asked until the engine is idle or
    `idle_within_s` passed (a job cancelled at quit may take an iteration to unwind; the bound
    catches a job that goes on), with `idle_after_s`, the seconds it took."""
    from shared.client import Client, ClientError
    client = Client(endpoint=endpoint, autostart=False)
    started = time.monotonic()
    try:
        client.connect()
        while True:
            status = client.status()
            idle = status.get("running") is None and not status.get("queued")
            if idle or time.monotonic() - started > idle_within_s:
                status["idle_after_s"] = round(time.monotonic() - started, 3)
                return status
            time.sleep(0.1)
    except ClientError as error:
        return {"error": str(error)}
    finally:
        client.close()


@krita_cases
def plugin_cases(ctx):
    """This module's cases for the session's one Krita run (tests/support/krita_fixture.py)."""
    root, style, fake_weights = ctx.root, ctx.style, ctx.fake_weights
    dead_endpoint = "tcp://127.0.0.1:%d" % free_port()
    damaged_style = damaged_copy(style, os.path.join(root, "damaged style.png"), -os.path.getsize(style) // 2)
    damaged_weights = damaged_copy(fake_weights, os.path.join(root, "damaged.h5"), 1 << 20)
    engine_command = ctx.engine_command
    cases = [
        {"name": "plugin_loaded", "kind": "plugin_loaded"},
        dict(FAST, name="selection", kind="selection_rgba", selection=list(SELECTION), feather=FEATHER),
        dict(FAST, name="u16", kind="depth", depth="U16", style_from_layer=True),
        dict(FAST, name="f16", kind="depth", depth="F16"),
        dict(FAST, name="f32", kind="depth", depth="F32"),
        dict(FAST, name="gray", kind="depth", depth="U8", model="GRAYA"),
        dict(LONG, name="cancel", kind="cancel"),
        dict(LONG, name="close_document", kind="close_document"),
        dict(FAST, name="docker", kind="docker_apply"),
        dict(FAST, name="library", kind="library", iterations=8),
        dict(FAST, name="two_layers", kind="two_layers", iterations=8),
        {"name": "refusals", "kind": "refusals"},
        dict(FAST, name="autostart", kind="autostart", endpoint="ipc://" + os.path.join(root, "auto.sock"),
             start_timeout=180.0, iterations=8, engine_command=engine_command),
        {"name": "no_engine", "kind": "no_engine", "endpoint": dead_endpoint},
        # Failures (docs/reliability.md, "Failures in the editors"):
        dict(FAST, name="damaged_style", kind="job_fails", style=damaged_style, iterations=8),
        dict(FAST, name="tiny_selection", kind="job_fails", style=style, selection=list(TINY), iterations=8),
        dict(FAST, name="engine_faults", kind="engine_faults", iterations=8, long=LONG, start_timeout=180.0,
             endpoint="ipc://" + os.path.join(root, "faults.sock"), engine_command=engine_command,
             bad_weights_command=[part.replace(fake_weights, damaged_weights) for part in engine_command]),
    ]

    cases += [   # issues 15 and 16: the engine's life, the live preview, the docker's rough edges, hitches
        dict(FAST, name="engine_on_demand", kind="engine_on_demand", engine_command=engine_command,
             start_timeout=180.0),
        dict(FAST, name="engine_lifecycle", kind="engine_lifecycle", iterations=8, start_timeout=180.0,
             endpoint="ipc://" + os.path.join(root, "life.sock"), engine_command=engine_command),
        dict(FAST, name="live_preview", kind="live_preview", iterations=30, max_size=512, long=LONG),
        dict(FAST, name="rough_edges", kind="rough_edges", iterations=8, long=LONG,
             address="tcp://127.0.0.1:%d" % free_port()),
        dict(FAST, name="hitches", kind="hitches", size=[512, 384], max_size=128, preview_interval_s=0.1,
             seconds=5.0, busy_command=["/usr/bin/env", "PYTHONPATH=" + REPO, sys.executable, "-m",
                                        "tests.support.busy_engine"]),
    ]
    if os.environ.get("NS_KRITA_CASES"):     # while working on some cases: run only those
        cases = [c for c in cases if c["name"] in os.environ["NS_KRITA_CASES"].split(",")]

    def after(details, results):
        details["engine_after_quit"] = engine_status(ctx.endpoint)

    # check_at_start: with the installer's engine.json in the profile, Krita starting and the docker
    # opening must not start an engine (the driver looks before its first case).
    return {"cases": cases, "scenario": {"quit_mid_job": dict(LONG, size=[1024, 768]), "check_at_start": True,
                                         "engine_config": {"command": engine_command}}, "after": after,
            "cleanup": kill_autostarted_engine,
            "details": {"dead_endpoint": dead_endpoint, "damaged_style": damaged_style,
                        "damaged_weights": damaged_weights}}


def case(krita, name):
    cases, details = krita
    assert details["results"] is not None, "Krita wrote no result file (exit %s after %.0f s):\n%s" % (
        details["exit_code"], details["seconds"], krita_session.log_tail(details))
    assert name in cases, "Krita did not run case %r (exit %s):\n%s" % (
        name, details["exit_code"], krita_session.log_tail(details))
    record = cases[name]
    assert "exception" not in record, record["exception"]
    return record


def layers(snapshot, kind="paintlayer"):
    return [layer for layer in snapshot["layers"] if layer["type"] == kind]


def layer(snapshot, name):
    found = [item for item in snapshot["layers"] if item["name"] == name]
    assert len(found) == 1, "expected one layer %r in %s" % (name, [item["name"] for item in snapshot["layers"]])
    return found[0]


def pixels(snapshot, item):
    """(H, W, 4) float array of a layer in R, G, B, A order, 0..1."""
    depth = item["depth"]
    data = np.frombuffer(base64.b64decode(item["pixels"]), dtype=DTYPES[depth])
    image = data.reshape(snapshot["height"], snapshot["width"], 4).astype(np.float64) / FULL_SCALE[depth]
    if depth in ("U8", "U16"):
        image = image[..., [2, 1, 0, 3]]
    return image


def assert_ui_stayed_responsive(record):
    """apply() returned at once; Qt's event loop never paused for long, nor for most of the job."""
    job_s = record["finished"]["t"]
    print("apply() %.3f s; longest UI pause %.3f s in a %.2f s job" % (record["apply_call_s"], record["max_ui_gap_s"], job_s))
    assert record["apply_call_s"] < APPLY_RETURN_S, "apply() blocked the UI for %.2f s" % record["apply_call_s"]
    assert record["max_ui_gap_s"] < min(UI_STALL_S, 0.75 * job_s), \
        "Qt's event loop stalled for %.2f s of a %.2f s job" % (record["max_ui_gap_s"], job_s)


def test_krita_session_ran_every_case_and_quit_cleanly(krita):
    cases, details = krita
    assert details["results"] is not None, krita_session.log_tail(details)
    assert details["results"]["errors"] == [], "\n".join(details["results"]["errors"])
    assert details["results"].get("finished"), krita_session.log_tail(details)
    assert details["exit_code"] == 0, krita_session.log_tail(details)
    assert "engine worker stopped" in details["plugin_log"], details["plugin_log"]
    print("Krita session: %.1f s (profile %s); cases: %s" % (
        details["seconds"], "reused" if details["profile_cached"] else "new",
        {name: round(record.get("duration_s", -1), 2) for name, record in cases.items()}))


def test_plugin_adds_the_action_to_the_filter_menu_and_the_docker(krita):
    record = case(krita, "plugin_loaded")
    assert record["action"] and record["action_text"] == "Neural Style…"
    assert "Filter" in record["menus"], record["menus"]
    assert record["apply_action"]
    assert record["docker"] == "NeuralStyleDocker" and record["docker_visible"]
    assert record["docker_title"] == "Neural Style"


def test_apply_with_selection_makes_a_new_layer_above_the_source(krita):
    record = case(krita, "selection")
    assert record["ok"] and record["finished_in_time"], record
    assert record["finished"]["outcome"] == "done", record["finished"]
    names = [item["name"] for item in record["after"]["layers"]]
    assert names.index("Layer 2 – Starry") == names.index("Layer 2") + 1, names
    assert [item["name"] for item in layers(record["after"])] == ["Background", "Layer 2", "Layer 2 – Starry"]
    result = layer(record["after"], "Layer 2 – Starry")
    assert (result["depth"], result["model"]) == ("U8", "RGBA")
    x, y, w, h = SELECTION
    bx, by, bw, bh = result["bounds"]   # the painted extent: the selection, less at most the soft edge
    assert x <= bx <= x + FEATHER and y <= by <= y + FEATHER, result["bounds"]
    assert w - 2 * FEATHER <= bw <= w and h - 2 * FEATHER <= bh <= h, result["bounds"]


def test_result_differs_inside_the_selection_and_is_transparent_outside(krita):
    record = case(krita, "selection")
    after = record["after"]
    result = pixels(after, layer(after, "Layer 2 – Starry"))
    source = pixels(after, layer(after, "Layer 2"))
    x, y, w, h = SELECTION
    inside = np.zeros(result.shape[:2], bool)
    inside[y:y + h, x:x + w] = True
    assert (result[~inside][:, 3] == 0).all(), "pixels outside the selection are not transparent"
    core = (slice(y + FEATHER + 1, y + h - FEATHER - 1), slice(x + FEATHER + 1, x + w - FEATHER - 1))
    assert np.abs(result[core][..., 3] - source[core][..., 3]).max() <= 2 / 255, "alpha was not kept"
    change = np.abs(result[core][..., :3] - source[core][..., :3]).mean() * 255
    assert change > 1.0, "pixels inside the selection did not change (mean |diff| %.3f of 255)" % change


def test_source_and_other_layers_are_byte_identical(krita):
    record = case(krita, "selection")
    for name in ("Layer 2", "Background"):
        assert layer(record["before"], name)["pixels"] == layer(record["after"], name)["pixels"], name


def test_result_layer_refines_progressively_without_blocking_krita(krita):
    record = case(krita, "selection")
    previews = [paint["sha"] for paint in record["paints"] if not paint["final"]]
    assert len(set(previews)) >= 2, "the result layer changed %d time(s) before the end" % len(set(previews))
    assert record["paints"][-1]["final"] and [p["final"] for p in record["paints"]].count(True) == 1
    assert any("iteration" in text for _, text in record["progress"]), record["progress"]
    assert_ui_stayed_responsive(record)


@pytest.mark.parametrize("name, depth, min_change", [("u16", "U16", 1.0), ("f16", "F16", 1.0), ("f32", "F32", 1.0)])
def test_16_bit_and_float_documents(krita, name, depth, min_change):
    record = case(krita, name)
    assert record["ok"] and record["finished"]["outcome"] == "done", record["finished"]
    after = record["after"]
    assert [item["name"] for item in layers(after)] == ["Background", "Paint", "Paint – " + (
        "Background" if name == "u16" else "Starry")]
    result_item = layers(after)[-1]
    assert (result_item["depth"], result_item["model"]) == (depth, "RGBA")
    assert layer(record["before"], "Paint")["pixels"] == layer(after, "Paint")["pixels"]
    source, result = pixels(after, layer(after, "Paint")), pixels(after, result_item)
    assert np.isfinite(result).all()
    # Alpha 0.5 and 1.0 are exact at every depth (pixel-exact fidelity: test_krita_fidelity.py).
    assert np.abs(result[..., 3] - source[..., 3]).max() <= 1 / 65535, "alpha was not kept"
    change = np.abs(result[..., :3] - source[..., :3]).mean() * 255
    assert change > min_change, "the %s result did not change (mean |diff| %.3f of 255)" % (depth, change)
    levels = np.unique(np.round(result[..., :3] * 65535))
    assert len(levels) > 256, "the %s result has only %d levels" % (depth, len(levels))


def test_grayscale_document_gets_a_grayscale_result(krita):
    record = case(krita, "gray")
    assert record["ok"] and record["finished"]["outcome"] == "done", record["finished"]
    after = record["after"]
    result_item = layers(after)[-1]
    assert result_item["name"] == "Paint – Starry"
    assert (result_item["depth"], result_item["model"]) == ("U8", "GRAYA")
    assert layer(record["before"], "Paint")["pixels"] == layer(after, "Paint")["pixels"]
    size = (after["height"], after["width"], 2)
    source = np.frombuffer(base64.b64decode(layer(after, "Paint")["pixels"]), np.uint8).reshape(size).astype(int)
    result = np.frombuffer(base64.b64decode(result_item["pixels"]), np.uint8).reshape(size).astype(int)
    assert np.abs(result[..., 1] - source[..., 1]).max() <= 1, "alpha was not kept"
    assert np.abs(result[..., 0] - source[..., 0]).mean() > 1.0, "the gray result did not change"


def test_cancel_mid_job_leaves_a_consistent_document_and_an_idle_engine(krita):
    record = case(krita, "cancel")
    assert record["ok"] and record["got_preview"]
    assert record["finished"]["outcome"] == "cancelled", record["finished"]
    assert record["stop_to_finished_s"] < CANCEL_S, record["stop_to_finished_s"]
    assert record["engine_idle_s"] is not None and record["engine_idle_s"] < CANCEL_S, record["engine_status"]
    assert not record["busy_after"]
    names = [item["name"] for item in layers(record["after"])]
    assert names == ["Background", "Paint", "Paint – Starry"], names   # keeps the last preview
    for name in ("Paint", "Background"):
        assert layer(record["before"], name)["pixels"] == layer(record["after"], name)["pixels"]
    status = record["engine_status"]
    assert status.get("running") is None and status["queued"] == 0, status


def test_closing_the_document_mid_job_cancels_it(krita):
    record = case(krita, "close_document")
    assert record["ok"] and record["got_preview"]
    assert not record["document_open"]
    assert record["finished"]["outcome"] == "cancelled", record["finished"]
    assert record["stop_to_finished_s"] < CANCEL_S, record["stop_to_finished_s"]
    assert record["engine_idle_s"] is not None and record["engine_idle_s"] < CANCEL_S, record["engine_status"]
    status = record["engine_status"]
    assert status.get("running") is None and status["queued"] == 0, status


def test_quitting_krita_mid_job_cancels_it_and_stops_the_worker(krita):
    _, details = krita
    record = (details["results"] or {}).get("quit_mid_job")
    assert record and record["ok"] and record["got_preview"] and record["busy"], record
    assert details["exit_code"] == 0, krita_session.log_tail(details)
    assert "engine worker stopped" in details["plugin_log"], details["plugin_log"]
    # Painting stops at the window's Close event, before Krita tears its canvas down (painting on
    # into that teardown crashed Krita: docs/reliability.md, "Krita's quit").
    closing = "the document of the running job: its window is closing"
    assert closing in details["plugin_log"], details["plugin_log"]
    status = details["engine_after_quit"]
    print("engine idle %.2f s after Krita quit mid-job" % status.get("idle_after_s", -1))
    assert "error" not in status and status.get("running") is None and status["queued"] == 0, status


def test_docker_controls_and_apply_button(krita):
    record = case(krita, "docker")
    assert record["finished_in_time"] and record["finished"]["outcome"] == "done", record["finished"]
    assert [item["name"] for item in layers(record["after"])] == ["Background", "Sketch", "Sketch – style"]
    assert layer(record["before"], "Sketch")["pixels"] == layer(record["after"], "Sketch")["pixels"]
    assert record["buttons_while_busy"] == [False, True] and record["buttons_after"] == [True, False]
    assert record["status_text"] == "Done." and record["progress_value"] == 1000
    assert record["state_text"] == "Engine: connected (CPU)", record["state_text"]
    assert len([p for p in record["paints"] if not p["final"]]) >= 1


def test_save_layer_as_style_then_stylize_with_it_from_the_library(krita):
    record = case(krita, "library")
    assert record["save_started"] and record["listed"], record["messages"]
    mine = [s for s in record["styles"] if s["name"] == "My texture"]
    assert len(mine) == 1 and mine[0]["thumbnail_head"] == "89504e470d0a1a0a", record["styles"]
    assert ["My texture", True] in record["docker_items"], record["docker_items"]   # with its thumbnail
    assert "ns_library ▸ Texture" in record["layer_labels"] and "ns_rgba ▸ Layer 2" in record["layer_labels"]
    assert record["finished"]["outcome"] == "done", record["finished"]
    assert [item["name"] for item in layers(record["after"])] == ["Background", "Texture", "Texture – My texture"]
    assert layer(record["before"], "Texture")["pixels"] == layer(record["after"], "Texture")["pixels"]


def test_two_selected_layers_get_one_result_each(krita):
    record = case(krita, "two_layers")
    assert record["finished"]["outcome"] == "done", record["finished"]
    assert [item["name"] for item in layers(record["after"])] == ["Background", "A", "A – Starry", "B", "B – Starry"]
    for name in ("A", "B"):
        assert layer(record["before"], name)["pixels"] == layer(record["after"], name)["pixels"]
        assert layer(record["after"], name + " – Starry")["bounds"] == [0, 0, 64, 48]
    fractions = [f for f in record["fractions"] if f >= 0]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and any(0.5 <= f < 1.0 for f in fractions)


@pytest.mark.parametrize("label, words", [
    ("cmyk", ["CMYKA", "Convert"]),
    ("missing_style", ["/nonexistent/starry night.png"]),
    ("no_style", ["Choose a style"]),
    ("no_layer", ["Select the layer"]),
    ("no_document", ["Open an image"]),
    ("bad_setting", ["Detail (iterations) must be between 1 and"]),
    ("empty_layer", ["Empty"]),
])
def test_impossible_requests_are_refused_at_once_with_one_sentence(krita, label, words):
    record = case(krita, "refusals")[label]
    assert record["ok"] is False and len(record["messages"]) == 1, record
    outcome, message = record["messages"][0]
    assert outcome == "error" and all(word in message for word in words), message
    assert "\n" not in message and "Traceback" not in message
    assert record["layers_added"] == 0


def test_first_apply_starts_the_configured_engine_without_blocking_krita(krita):
    record = case(krita, "autostart")
    assert record["ok"] and record["finished_in_time"], record
    assert record["finished"]["outcome"] == "done", record["finished"]
    states = [state for state, _ in record["states"]]
    assert states[:2] == ["starting", "connected"], record["states"]
    assert [item["name"] for item in layers(record["after"])] == ["Background", "Paint", "Paint – Starry"]
    assert_ui_stayed_responsive(record)
    assert "shutdown_error" not in record, record["shutdown_error"]
    print("engine auto-start + 8 iterations: %.1f s" % record["finished"]["t"])


def test_no_engine_and_no_way_to_start_it_fails_fast_and_clearly(krita):
    record = case(krita, "no_engine")
    _, details = krita
    assert record["finished_in_time"] and record["finished"]["outcome"] == "error"
    assert record["finished"]["t"] < NO_ENGINE_S, "took %.1f s" % record["finished"]["t"]
    message = record["finished"]["message"]
    assert_artists_words(message, "could not be started", "installer")
    assert record["status_text"] == message and record["details_shown"]
    assert details["dead_endpoint"] in record["details_text"] and "Engine log: " in record["details_text"]
    assert record["state"][0] == "not running"
    assert [item["name"] for item in record["after"]["layers"]] == [
        item["name"] for item in record["before"]["layers"]], "a result layer was left behind"
    assert record["max_ui_gap_s"] < UI_STALL_S


# ---- failures: what the artist sees, and what is left of the document ---------------------------

def assert_one_readable_sentence(message, *words):
    assert message and all(word in message for word in words), message
    assert "\n" not in message and "Traceback" not in message, message


def assert_artists_words(message, *words):
    """Issue 15.6: one short sentence (what happened, what to do), no flags, variables or field paths."""
    assert_one_readable_sentence(message, *words)
    assert len(message) <= 200, "%d characters: %s" % (len(message), message)
    for jargon in ("--", "NEURAL_STYLE", "styles[", "options.", "HDF5", "h5py", "ipc://", "tcp://"):
        assert jargon not in message, (jargon, message)


def assert_document_unchanged(before, after):
    assert [item["name"] for item in after["layers"]] == [item["name"] for item in before["layers"]], \
        "a layer was left behind or lost"
    for item in before["layers"]:
        assert layer(after, item["name"])["pixels"] == item["pixels"], item["name"]


@pytest.mark.parametrize("name, words, detail_words", [
    ("damaged_style", ["could not be used", "damaged style.png", "damaged"], ["truncated or damaged"]),
    ("tiny_selection", ["too small", "select a larger area"], ["12x10", "too small", "16 pixels"]),
])
def test_a_job_the_engine_fails_shows_why_and_leaves_the_document_as_it_was(krita, name, words, detail_words):
    record = case(krita, name)
    assert record["ok"] and record["finished_in_time"], record
    assert record["finished"]["outcome"] == "error", record["finished"]
    message = record["finished"]["message"]
    assert_artists_words(message, *words)
    assert record["status_text"] == message, "the docker shows %r" % record["status_text"]
    assert record["details_shown"] and record["details_text"].startswith('Layer "Paint" could not be stylized: ')
    assert all(word in record["details_text"] for word in detail_words), record["details_text"]
    assert "Engine log: " in record["details_text"]
    assert record["paints"] == [], "nothing may be painted before the engine refuses"
    assert_document_unchanged(record["before"], record["after"])
    assert not record["busy_after"] and record["max_ui_gap_s"] < UI_STALL_S
    assert record["engine_state"][0] == "connected", "a failed job does not lose the engine"
    again = record["again"]
    assert again["finished"]["outcome"] == "done", again["finished"]
    assert [item["name"] for item in layers(again["after"])] == ["Background", "Paint", "Paint – Starry"]


def test_a_damaged_weights_file_fails_the_auto_start_clearly(krita):
    record = case(krita, "engine_faults")["bad_weights"]
    _, details = krita
    assert record["ok"] and record["finished_in_time"], record
    assert record["finished"]["outcome"] == "error", record["finished"]
    message = record["finished"]["message"]
    assert_artists_words(message, "weights", "damaged", "installer")
    assert record["status_text"] == message and record["details_shown"]
    assert details["damaged_weights"] in record["details_text"], record["details_text"]
    assert "truncated or damaged" in record["details_text"] and "Engine log: " in record["details_text"]
    assert [state for state, _ in record["states"]] == ["starting", "not running"], record["states"]
    assert record["state_text"].startswith("Engine: not running ("), record["state_text"]
    assert_document_unchanged(case(krita, "engine_faults")["before"], record["after"])
    assert not record["busy_after"] and record["max_ui_gap_s"] < UI_STALL_S


def test_a_long_failure_keeps_to_its_lines_and_does_not_squash_the_controls(krita):
    """Issue 15.6 on the real path (test_a_long_message_… sets the text by hand): the damaged
    weights' failure, hundreds of characters in full, as the docker shows it after the Apply."""
    record = case(krita, "engine_faults")["bad_weights"]
    before, after = record["room_before"], record["room_after"]
    print("shown: %d characters in %s px (line %s px); full text %d characters; controls %s -> %s px" % (
        len(record["status_text"]), after.get("message_height"), after.get("line_height"),
        len(record["details_text"] or record["status_text"]), before["sizes"], after["sizes"]))
    assert after["message_labels"] == 1, after
    assert after["message_height"] <= 3 * after["line_height"] + 4, (after, record["status_text"])
    assert after["sizes"] == before["sizes"], (before, after)
    assert all(size >= minimum for size, minimum in zip(after["sizes"], after["minimum_sizes"])), after


def test_an_engine_killed_mid_job_is_reported_and_keeps_the_preview_as_incomplete(krita):
    record = case(krita, "engine_faults")["killed"]
    assert record["ok"] and record.get("killed"), record
    assert [state for state, _ in record["states_before_kill"]] == ["starting", "connected"], \
        "with good weights the next Apply starts the engine"
    assert record["finished_in_time"] and record["finished"]["outcome"] == "error", record["finished"]
    assert record["kill_to_finished_s"] < KILL_NOTICED_S, record["kill_to_finished_s"]
    message = record["finished"]["message"]
    assert_artists_words(message, "stopped", "apply again")
    assert record["status_text"] == message and record["details_shown"]
    assert record["details_text"].startswith('Layer "Paint" could not be stylized: the engine on ipc://'), \
        record["details_text"]
    assert 'the last preview is kept as layer "Paint – Starry (incomplete)"' in record["details_text"]
    assert record["engine_state"][0] == "not running" and record["state_text"].startswith("Engine: not running")
    assert not record["busy_after"] and record["max_ui_gap_s"] < UI_STALL_S, record["max_ui_gap_s"]
    before = case(krita, "engine_faults")["before"]
    after = record["after"]
    assert [item["name"] for item in layers(after)] == ["Background", "Paint", "Paint – Starry (incomplete)"]
    for name in ("Background", "Paint"):
        assert layer(after, name)["pixels"] == layer(before, name)["pixels"], name
    kept = layer(after, "Paint – Starry (incomplete)")
    assert kept["bounds"][2:] == [64, 64], "the kept layer holds the last preview"
    painted = [paint for paint in record["paints"] if not paint["final"]]
    assert painted and not any(paint["final"] for paint in record["paints"])


def test_the_next_apply_after_an_engine_crash_starts_a_fresh_engine(krita):
    record = case(krita, "engine_faults")
    again = record["again"]
    assert again["finished_in_time"] and again["finished"]["outcome"] == "done", again["finished"]
    assert [state for state, _ in again["states"]][:2] == ["starting", "connected"], again["states"]
    assert again["pid"] and again["pid"] != record["killed"]["pid"], (again["pid"], record["killed"]["pid"])
    assert [item["name"] for item in layers(again["after"])] == [
        "Background", "Paint", "Paint – Starry", "Paint – Starry (incomplete)"]
    assert again["status_text"] == "Done." and again["state_text"].startswith("Engine: connected")
    assert "shutdown_error" not in record, record["shutdown_error"]


# ---- the engine's life cycle in the editor (issue 15.1, 15.2) -------------------------------------

def test_krita_starting_and_the_docker_opening_do_not_start_the_engine(krita):
    _, details = krita
    record = (details["results"] or {}).get("at_start")
    assert record and record["engine_config"], "the profile had no engine.json, so nothing could start: %r" % record
    assert record["engine_pid"] is None, "an engine was started at Krita's start: %r" % record
    assert record["state"][0] == "not started" and record["state_text"].startswith("Engine: not started"), record
    assert record["library_items"] == 0 and "Refresh" in (record["library_hint"] or ""), record


def test_browsing_the_library_starts_the_engine_on_demand(krita):
    record = case(krita, "engine_on_demand")
    assert record["before_engine_pid"] is None, record
    assert record["state_after"][0] == "connected", record
    assert record["engine_pid"] and record["shutdown_error"] is None, record
    argv = record["engine_argv"] or []   # an engine started on demand exits by itself when idle (10 min)
    assert "--idle-timeout" in argv and argv[argv.index("--idle-timeout") + 1] == "600", argv


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_crashed_or_stopped_engine_is_noticed_and_the_first_apply_after_it_succeeds(krita, how):
    record = case(krita, "engine_lifecycle")
    assert record["connected"][0] == "connected", record["connected"]
    after = record[how]
    assert after["state_before"][0] == "connected" and after["pid"], after   # a running engine, then
    assert after["noticed"] and after["noticed_s"] < 5.0, "noticed after %.1f s" % after["noticed_s"]
    assert after["state_text"].startswith("Engine: not running"), after["state_text"]
    assert after["ok"] and after["finished_in_time"], after
    assert after["finished"]["outcome"] == "done", after["finished"]
    assert after["new_pid"] and after["new_pid"] != after["pid"], (after["pid"], after["new_pid"])
    print("%s engine noticed after %.1f s; first Apply after it: %.1f s" % (how, after["noticed_s"],
                                                                          after["finished"]["t"]))


# ---- the live preview (issue 16.1) --------------------------------------------------------------

def test_live_preview_shows_a_first_picture_quickly_and_refines_it(krita):
    record = case(krita, "live_preview")
    first = record["first"]
    assert record["done"] and first["error"] is None, first
    assert first["source"]["t"] < 1.0, "the layer itself shows after %.2f s" % first["source"]["t"]
    assert first["progress"] is not None and record["progress_pictures"] >= 2, record["progress_pictures"]
    assert max(first["progress"]["size"]) <= 160 and max(first["result"]["size"]) <= 160, first
    assert record["label_pixmap"] and max(record["label_pixmap"]) <= 160, record["label_pixmap"]
    assert record["preview_status"] == "Preview: done.", record["preview_status"]
    assert record["source_unchanged"]
    print("live preview (256x192 layer, 30 iterations at 128 px): first stylized picture %.2f s, done %.2f s, "
          "%d pictures; longest event-loop pause %.0f ms" % (
              first["progress"]["t"], first["result"]["t"], record["progress_pictures"],
              record["pauses"]["max_pause_s"] * 1000))


def test_live_preview_follows_a_change_by_itself_once(krita):
    record = case(krita, "live_preview")
    change = record["after_change"]
    assert change["result"] and len(change["tokens"]) == 1, change   # three quick changes: one preview
    print("preview after a change: first picture %.2f s (after a 0.4 s pause in the changes)"
          % change["first_progress_s"])


def test_live_preview_beside_a_running_apply_goes_first(krita):
    record = case(krita, "live_preview")["beside_apply"]
    assert record["apply_ok"] and record["apply_running"], record
    assert record["first_progress_s"] is not None and record["first_progress_s"] < 10.0, record
    assert record["apply_outcome"]["outcome"] == "cancelled", record["apply_outcome"]
    print("preview beside a running Apply: first picture %.2f s" % record["first_progress_s"])


# ---- the docker's rough edges (issue 16.4, 16.6, 16.7) --------------------------------------------

def test_strength_shows_its_number_and_its_ends(krita):
    record = case(krita, "rough_edges")
    assert record["strength"] == {"value_text": "73", "ends": ["content", "style"]}, record["strength"]


def test_the_chosen_style_shows_its_thumbnail(krita):
    record = case(krita, "rough_edges")
    assert record["style_thumb"] and 0 < max(record["style_thumb"]) <= 48, record["style_thumb"]


def test_advanced_speaks_the_artists_words(krita):
    record = case(krita, "rough_edges")
    labels = record["advanced_labels"]
    assert all("_" not in label for label in labels.values()), labels
    assert record["choice_texts"] == {"content_layer": "shapes (conv4_2)", "optimizer": "Careful (L-BFGS)",
                                      "pooling": "Crisp (max)"}, record["choice_texts"]
    assert record["settings_content_layer"] == "default", "the default content layer is not an override"


def test_the_engine_address_is_set_in_a_settings_dialog(krita):
    record = case(krita, "rough_edges")
    assert not record["bad_address"]["accepted"] and record["bad_address"]["error"], record["bad_address"]
    address = record["address"]
    assert address["endpoint"] == address["saved"] and address["saved"].startswith("tcp://127.0.0.1:"), address


def test_a_long_message_does_not_squash_the_controls(krita):
    record = case(krita, "rough_edges")
    assert record["sizes_after"] == record["sizes_before"], (record["sizes_before"], record["sizes_after"])
    assert all(size >= minimum for size, minimum in zip(record["sizes_after"], record["minimum_sizes"]))
    assert record["status_height"] <= 3 * record["line_height"] + 4, record["status_height"]
    assert record["details_button"]


def test_apply_again_stylizes_the_source_not_the_previous_result(krita):
    record = case(krita, "rough_edges")
    assert [item["finished"]["outcome"] for item in record["applied"]] == ["done", "done"], record["applied"]
    # The driver made each result layer the active one while its job waited (as GUI Krita does with a
    # new layer); after the job the source is active again, so Apply again stylized the source.
    assert all(item["result_was_active"] and item["job_waited"] for item in record["applied"]), record["applied"]
    assert record["layers"].count("Sketch – style") == 2 and not any(
        name.count("style") > 1 for name in record["layers"]), record["layers"]
    assert record["applied"][0]["active"] == "Sketch", record["applied"][0]


def test_the_progress_bar_shows_a_percentage(krita):
    record = case(krita, "rough_edges")
    assert record["applied"][-1]["progress_text"] == "100%", record["applied"][-1]


def test_the_history_shows_the_results_and_restores_their_settings(krita):
    record = case(krita, "rough_edges")
    assert record["history"] == [["Sketch – style", True], ["Sketch – style", True]], record["history"]
    assert record["restored_detail"] == 8, record["restored_detail"]


def test_a_second_apply_while_a_job_runs_never_loses_cancel(krita):
    record = case(krita, "rough_edges")["second_apply"]
    assert record["outcome"] is None and record["busy"], record
    assert record["cancel_enabled"] and not record["apply_enabled"], record
    assert "still running" in record["status"], record["status"]
    assert record["after_cancel"]["outcome"] == "cancelled", record["after_cancel"]


# ---- no hitches (issue 16.8) ---------------------------------------------------------------------

def test_krita_keeps_responding_during_a_job(krita):
    record = case(krita, "hitches")
    assert record["control_running"] and record["control_after_running"] and record["apply_ok"], record
    apply, both = record["apply"], record["apply_and_preview"]
    print("longest event-loop pause: control (engine busy, plugin idle) %.0f / %.0f ms; Apply with previews "
          "every 0.1 s on 512x384 %.0f ms (%d paints); Apply + live preview %.0f ms; pauses over 100 ms: "
          "%d / %d, %d, %d" % (
              record["control"]["max_pause_s"] * 1000, record["control_after"]["max_pause_s"] * 1000,
              apply["max_pause_s"] * 1000, apply["paints"], both["max_pause_s"] * 1000,
              record["control"]["over_100ms"], record["control_after"]["over_100ms"], apply["over_100ms"],
              both["over_100ms"]))
    assert apply["paints"] >= 5, apply
    # The goal (issue 16.8: no pause over 100 ms) is a speed goal: the figures printed above are its
    # measurement, written down in docs/benchmarks.md ("Krita's event loop during a job"). A test's time
    # bound only catches a hang (>= 10x the normal pause, ~0.1 s), never a busy shared machine.
    for phase in (apply, both):
        assert phase["max_pause_s"] < 2.0 and phase["p99_pause_s"] < 1.0, (phase, record["control"],
                                                                           record["control_after"])
