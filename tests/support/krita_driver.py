"""Test harness Extension, installed only in the test profile as pykrita/ns_test_driver/__init__.py.

After windowCreated it runs the cases listed in $NS_TEST_SCENARIO (a JSON file) by calling the
real plugin's public functions (neural_style.controller), writes what it saw to the scenario's
"results" file after every case, and quits Krita. Assertions live in tests/test_krita_plugin.py.
Runs inside Krita's Python: standard library, PyQt5 and the Krita API only.
"""

import base64
import faulthandler
import hashlib
import json
import os
import sys
import time
import traceback

from PyQt5.QtCore import QCoreApplication, QEventLoop, QTimer
from PyQt5.QtWidgets import QLabel, QMenu, QPushButton

from krita import Extension, Krita, Selection

SCENARIO = json.load(open(os.environ["NS_TEST_SCENARIO"], encoding="utf-8"))
RESULTS = {"cases": {}, "errors": [], "started": time.time()}


def save_results():
    tmp = SCENARIO["results"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(RESULTS, f, indent=1)
    os.replace(tmp, SCENARIO["results"])


def excepthook(kind, value, tb):
    # Krita's own hook opens a modal dialog and the run would hang: record the error instead.
    RESULTS["errors"].append("".join(traceback.format_exception(kind, value, tb)))
    save_results()


sys.excepthook = excepthook
# A crash of Krita (SIGSEGV) then shows which Python code, if any, was running.
_FAULTS = open(os.path.join(os.path.dirname(SCENARIO["results"]), "python-faults.txt"), "w")
faulthandler.enable(file=_FAULTS, all_threads=True)


def wait_for(predicate, timeout):
    """Run Qt's event loop until predicate() or timeout; True if it came true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        QCoreApplication.processEvents(QEventLoop.AllEvents, 20)
        time.sleep(0.002)
    return True


def pixels_of(node, doc):
    return bytes(node.pixelData(0, 0, doc.width(), doc.height()))


def b64(data):
    return base64.b64encode(data).decode("ascii")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def pattern(width, height, depth, alpha_band=None, model="RGBA"):
    """A smooth test pattern in Krita's layout for `depth` (BGRA for integers, RGBA floats; GA gray)."""
    import struct
    values = []
    for y in range(height):
        for x in range(width):
            r, g, b = x / (width - 1), y / (height - 1), ((x * 7 + y * 3) % 32) / 31.0
            a = 0.5 if alpha_band and alpha_band[0] <= x < alpha_band[1] else 1.0
            values.append((r, g, b, a))
    if model == "GRAYA":
        return bytes(int(round(v * 255)) for r, g, b, a in values for v in ((r + g + b) / 3, a))
    if depth == "U8":
        return bytes(int(round(v * 255)) for r, g, b, a in values for v in (b, g, r, a))
    if depth == "U16":
        return struct.pack("<%dH" % (len(values) * 4), *(int(round(v * 65535))
                                                         for r, g, b, a in values for v in (b, g, r, a)))
    code = "e" if depth == "F16" else "f"
    return struct.pack("<%d%s" % (len(values) * 4, code), *(v for px in values for v in px))


class JobWatcher:
    """Collects the controller's signals for one Apply, and how responsive the UI stayed."""

    def __init__(self, ctl, doc):
        self.ctl, self.doc = ctl, doc
        self.paints, self.progress, self.outcome, self.states = [], [], None, []
        self.ticks, self.max_gap, self._last_tick = 0, 0.0, None
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._tick)
        ctl.layer_painted.connect(self._painted)
        ctl.progress.connect(self._progress)
        ctl.finished.connect(self._finished)
        ctl.state_changed.connect(self._state)
        self.timer.start()
        self.started = time.monotonic()

    def _tick(self):
        now = time.monotonic()
        if self._last_tick is not None and self.outcome is None:
            self.max_gap = max(self.max_gap, now - self._last_tick)
        self._last_tick = now
        self.ticks += 1

    def _painted(self, node, final):
        data = pixels_of(node, self.doc) if self.doc is not None else b""
        self.paints.append({"final": final, "sha": sha(data), "t": time.monotonic() - self.started,
                            "name": node.name()})

    def _progress(self, fraction, text):
        self.progress.append([fraction, text])

    def _finished(self, outcome, message):
        self.outcome = {"outcome": outcome, "message": message, "t": time.monotonic() - self.started}

    def _state(self, state, detail):
        self.states.append([state, detail])

    def close(self):
        self.timer.stop()
        for signal, slot in ((self.ctl.layer_painted, self._painted), (self.ctl.progress, self._progress),
                             (self.ctl.finished, self._finished), (self.ctl.state_changed, self._state)):
            signal.disconnect(slot)
        return {"paints": self.paints, "progress": self.progress[-5:], "finished": self.outcome,
                "states": self.states, "max_ui_gap_s": self.max_gap, "ticks": self.ticks}


def engine_status():
    from neural_style.shared.client import Client
    client = Client(endpoint=SCENARIO["endpoint"], autostart=False)
    try:
        client.connect()
        return client.status()
    finally:
        client.close()


def make_document(name, depth, width, height, layers, model="RGBA"):
    app = Krita.instance()
    doc = app.createDocument(width, height, name, model, depth, "", 72.0)
    doc.setBatchmode(True)
    background = doc.topLevelNodes()[0]
    background.setPixelData(pattern(width, height, depth, model=model), 0, 0, width, height)
    nodes = [background]
    for layer_name in layers:
        node = doc.createNode(layer_name, "paintlayer")
        doc.rootNode().addChildNode(node, nodes[-1])
        node.setPixelData(pattern(width, height, depth, alpha_band=(0, width // 4), model=model), 0, 0, width, height)
        nodes.append(node)
    doc.refreshProjection()
    doc.waitForDone()
    app.activeWindow().addView(doc)
    return doc, nodes


def describe(doc):
    layers = []
    for node in doc.topLevelNodes():
        bounds = node.bounds()
        layers.append({"name": node.name(), "type": node.type(), "depth": node.colorDepth(),
                       "model": node.colorModel(),
                       "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
                       "pixels": b64(pixels_of(node, doc)) if node.type() == "paintlayer" else ""})
    return {"width": doc.width(), "height": doc.height(), "layers": layers}


def settings_for(case):
    from neural_style.settings import Settings
    return Settings(detail=case.get("iterations", 20), resolution_cap=case.get("max_size", 64),
                    preview_interval_s=case.get("preview_interval_s", 0.2), feather=case.get("feather", 0),
                    advanced=case.get("advanced", {}))


def run_apply(ctl, doc, nodes, style, case):
    watcher = JobWatcher(ctl, doc)
    t0 = time.monotonic()
    ok = ctl.apply(doc, nodes, style, settings_for(case))
    apply_s = time.monotonic() - t0
    finished = wait_for(lambda: watcher.outcome is not None, case.get("timeout", 120))
    return ok, apply_s, finished, watcher


# ---- cases --------------------------------------------------------------------------------------

def case_plugin_loaded(case, ctl):
    app = Krita.instance()
    action = app.action("neural_style")
    menus = [w.objectName() for w in action.associatedWidgets() if isinstance(w, QMenu)] if action else []
    from neural_style.extension import show_docker
    docker = show_docker()
    return {"action": action is not None, "action_text": action.text() if action else None,
            "menus": menus, "apply_action": app.action("neural_style_apply") is not None,
            "docker": type(docker).__name__ if docker is not None else None,
            "docker_visible": bool(docker is not None and docker.isVisible()),
            "docker_title": docker.windowTitle() if docker is not None else None}


def case_selection_rgba(case, ctl):
    from neural_style.controller import StyleChoice
    doc, (background, layer) = make_document("ns_rgba", "U8", 96, 64, ["Layer 2"])
    x, y, w, h = case["selection"]
    selection = Selection()
    selection.select(x, y, w, h, 255)
    doc.setSelection(selection)
    before = describe(doc)
    ok, apply_s, finished, watcher = run_apply(
        ctl, doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), case)
    out = {"ok": ok, "apply_call_s": apply_s, "finished_in_time": finished, "before": before,
           "after": describe(doc)}
    out.update(watcher.close())
    doc.setModified(False)
    return out


def case_depth(case, ctl):
    from neural_style.controller import StyleChoice
    doc, (background, layer) = make_document("ns_" + case["name"], case["depth"], 64, 64, ["Paint"],
                                             model=case.get("model", "RGBA"))
    if case.get("style_from_layer"):
        other = [d for d in Krita.instance().documents() if d.name() == "ns_rgba"]
        style = StyleChoice.layer(other[0].topLevelNodes()[0]) if other else None
    else:
        style = StyleChoice.file(SCENARIO["style_image"], name="Starry")
    before = describe(doc)
    ok, apply_s, finished, watcher = run_apply(ctl, doc, [layer], style, case)
    out = {"ok": ok, "finished_in_time": finished, "before": before, "after": describe(doc),
           "profile": doc.colorProfile()}
    out.update(watcher.close())
    doc.setModified(False)
    return out


def case_cancel(case, ctl, close_document=False):
    from neural_style.controller import StyleChoice
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 64, 64, ["Paint"])
    before = describe(doc)
    watcher = JobWatcher(ctl, doc)
    ok = ctl.apply(doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), settings_for(case))
    got_preview = wait_for(lambda: watcher.paints or watcher.outcome, 120)
    t0 = time.monotonic()
    if close_document:
        watcher.doc = None
        doc.setModified(False)
        doc.close()
    else:
        ctl.cancel()
    finished = wait_for(lambda: watcher.outcome is not None, 60)
    out = {"ok": ok, "got_preview": bool(got_preview), "stop_to_finished_s": time.monotonic() - t0,
           "finished_in_time": finished, "before": before, "busy_after": ctl.is_busy()}
    if not close_document:
        out["after"] = describe(doc)
        doc.setModified(False)
    else:
        out["document_open"] = any(d.name() == "ns_" + case["name"] for d in Krita.instance().documents())
    out.update(watcher.close())
    status = [None]

    def idle():
        status[0] = engine_status()
        return status[0].get("running") is None and status[0].get("queued") == 0
    out["engine_idle_s"] = time.monotonic() - t0 if wait_for(idle, 60) else None   # from the cancel
    out["engine_status"] = status[0]
    return out


def case_close_document(case, ctl):
    return case_cancel(case, ctl, close_document=True)


def case_no_engine(case, ctl):
    from neural_style.controller import StyleChoice
    ctl.configure(endpoint=case["endpoint"], autostart=True, engine_command=None, start_timeout=10.0)
    doc, (background, layer) = make_document("ns_noengine", "U8", 64, 64, ["Paint"])
    before = describe(doc)
    ok, apply_s, finished, watcher = run_apply(
        ctl, doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), dict(case, timeout=60))
    out = {"ok": ok, "apply_call_s": apply_s, "finished_in_time": finished, "before": before,
           "after": describe(doc), "state": list(ctl.state)}
    out.update(watcher.close())
    out.update(docker_texts())
    doc.setModified(False)
    ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    return out


def case_docker_apply(case, ctl):
    """The artist's path: the docker's controls and its Apply button, on the active layer."""
    from neural_style.extension import show_docker
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 64, 64, ["Sketch"])
    view = Krita.instance().activeWindow().activeView()
    wait_for(lambda: False, 1.0)   # let the Layers docker catch up with the new document
    doc.setActiveNode(layer)       # what clicking the layer in the Layers docker does
    wait_for(lambda: [n.name() for n in view.selectedNodes()] == ["Sketch"], 5)
    docker = show_docker()
    docker.source_combo.setCurrentIndex(1)       # "Image file"
    docker.file_edit.setText(SCENARIO["style_image"])
    docker.detail.setValue(case["iterations"])
    docker.resolution.setValue(case["max_size"])
    docker.preview_interval.setValue(case["preview_interval_s"])
    before = describe(doc)
    watcher = JobWatcher(ctl, doc)
    docker.apply_button.click()
    busy_buttons = [docker.apply_button.isEnabled(), docker.cancel_button.isEnabled()]
    finished = wait_for(lambda: watcher.outcome is not None, 120)
    out = {"finished_in_time": finished, "before": before, "after": describe(doc),
           "buttons_while_busy": busy_buttons,
           "buttons_after": [docker.apply_button.isEnabled(), docker.cancel_button.isEnabled()],
           "status_text": docker.status.text(), "progress_value": docker.progress_bar.value(),
           "state_text": docker.state_label.text(), "selected": [n.name() for n in view.selectedNodes()]}
    out.update(watcher.close())
    doc.setModified(False)
    return out


def case_library(case, ctl):
    """Save a layer as a library style, see it (with its thumbnail) in the docker, stylize with it."""
    from neural_style.controller import StyleChoice
    from neural_style.extension import show_docker
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 64, 64, ["Texture"])
    listed = []
    ctl.styles_changed.connect(listed.append)
    messages = []
    ctl.message.connect(messages.append)
    started = ctl.save_layer_as_style(layer, "My texture")
    found = wait_for(lambda: any(s.get("name") == "My texture" for styles in listed for s in styles), 60)
    ctl.styles_changed.disconnect(listed.append)
    ctl.message.disconnect(messages.append)
    styles = listed[-1] if listed else []
    mine = [s for s in styles if s.get("name") == "My texture"]
    docker = show_docker()
    docker.source_combo.setCurrentIndex(0)
    wait_for(lambda: docker.library_list.count() > 0, 10)
    items = [docker.library_list.item(i) for i in range(docker.library_list.count())]
    docker.source_combo.setCurrentIndex(2)        # "Layer": every layer of every open document
    layer_labels = [docker.layer_combo.itemText(i) for i in range(docker.layer_combo.count())]
    out = {"save_started": started, "listed": found, "messages": messages,
           "styles": [{"id": s.get("id"), "name": s.get("name"), "thumbnail_head": bytes(s.get("thumbnail_png", b""))[:8].hex(),
                       "thumbnail_bytes": len(s.get("thumbnail_png", b""))} for s in styles],
           "docker_items": [[item.text(), not item.icon().isNull()] for item in items],
           "layer_labels": layer_labels}
    if mine:
        ok, apply_s, finished, watcher = run_apply(
            ctl, doc, [layer], StyleChoice.library(mine[0]["id"], mine[0]["name"]), case)
        out.update({"ok": ok, "finished_in_time": finished, "before": describe(doc)})
        out.update(watcher.close())
        out["after"] = describe(doc)
    doc.setModified(False)
    return out


def case_two_layers(case, ctl):
    """Apply on two selected layers: one result above each, one after the other."""
    from neural_style.controller import StyleChoice
    doc, (background, first, second) = make_document("ns_" + case["name"], "U8", 64, 48, ["A", "B"])
    before = describe(doc)
    ok, apply_s, finished, watcher = run_apply(
        ctl, doc, [first, second], StyleChoice.file(SCENARIO["style_image"], name="Starry"), case)
    out = {"ok": ok, "finished_in_time": finished, "before": before, "after": describe(doc),
           "fractions": [f for f, _ in watcher.progress]}
    out.update(watcher.close())
    out["fractions"] = [f for f, _ in watcher.progress]
    doc.setModified(False)
    return out


def case_refusals(case, ctl):
    """Apply requests the plugin must refuse at once, with one sentence and no layer left behind."""
    from neural_style.controller import StyleChoice
    style = StyleChoice.file(SCENARIO["style_image"], name="Starry")
    app = Krita.instance()
    out = {}

    def attempt(label, doc, nodes, style_choice, settings=None):
        messages = []

        def record(outcome, message):
            messages.append([outcome, message])
        ctl.finished.connect(record)
        count = len(doc.topLevelNodes()) if doc is not None else 0
        ok = ctl.apply(doc, nodes, style_choice, settings or settings_for(case))
        wait_for(lambda: bool(messages), 30)   # a refusal comes at once; 30 s only bounds a hang
        ctl.finished.disconnect(record)
        out[label] = {"ok": ok, "messages": messages,
                      "layers_added": (len(doc.topLevelNodes()) - count) if doc is not None else 0}

    cmyk = app.createDocument(32, 32, "ns_cmyk", "CMYKA", "U8", "", 72.0)
    cmyk.setBatchmode(True)
    attempt("cmyk", cmyk, cmyk.topLevelNodes(), style)
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 32, 32, ["Paint"])
    attempt("missing_style", doc, [layer], StyleChoice.file("/nonexistent/starry night.png"))
    attempt("no_style", doc, [layer], None)
    attempt("no_layer", doc, [], style)
    attempt("no_document", None, [], style)
    from neural_style.settings import Settings
    attempt("bad_setting", doc, [layer], style, Settings(detail=0))
    empty = doc.createNode("Empty", "paintlayer")
    doc.rootNode().addChildNode(empty, layer)
    attempt("empty_layer", doc, [empty], style)
    for d in (cmyk, doc):
        d.setModified(False)
    cmyk.close()
    return out


def case_autostart(case, ctl):
    """No engine running, but one configured: the first Apply starts it (Krita stays responsive)."""
    from neural_style.controller import StyleChoice
    from neural_style.shared.client import Client, ClientError
    ctl.configure(endpoint=case["endpoint"], autostart=True, engine_command=case["engine_command"],
                  start_timeout=case["start_timeout"])
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 64, 64, ["Paint"])
    ok, apply_s, finished, watcher = run_apply(
        ctl, doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), dict(case, timeout=240))
    out = {"ok": ok, "apply_call_s": apply_s, "finished_in_time": finished, "after": describe(doc)}
    out.update(watcher.close())
    doc.setModified(False)
    ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    client = Client(endpoint=case["endpoint"], autostart=False)
    try:
        client.connect()
        out["pid"] = client.status().get("pid")
        client.shutdown()
    except ClientError as error:
        out["shutdown_error"] = "%s; the engine log ends: %s" % (error, engine_log_tail())
    finally:
        client.close()
    return out


def engine_log_tail(lines=12):
    """The engine log's last lines without TensorFlow's noise (what stopped an engine that went away)."""
    from neural_style.shared import paths
    try:
        with open(os.path.join(paths.state_dir(), "engine.log"), encoding="utf-8", errors="replace") as log:
            kept = [line.strip() for line in log if " engine_server" in line]
    except OSError as error:
        return "(no engine log: %s)" % error
    return " | ".join(kept[-lines:])


def docker_texts():
    """What the docker shows the artist: its status line and its engine state line."""
    from neural_style.extension import show_docker
    docker = show_docker()
    return {"status_text": docker.status.text(), "state_text": docker.state_label.text(),
            "details_text": docker.status.details, "details_shown": docker.status.details_button.isVisibleTo(docker)}


def docker_room(message=None):
    """The shown docker's main controls (heights, minimum heights) and the label that shows
    `message` (its height and line spacing): a long failure must not squash them (issue 15.6)."""
    from neural_style.extension import show_docker
    docker = show_docker()
    wait_for(lambda: False, 0.3)
    controls = (docker.strength, docker.detail, docker.apply_button)
    out = {"sizes": [w.height() for w in controls],
           "minimum_sizes": [w.minimumSizeHint().height() for w in controls]}
    if message:
        labels = [label for label in docker.findChildren(QLabel) if label.text() == message]
        out["message_labels"] = len(labels)
        out["message_height"] = labels[0].height() if labels else None
        out["line_height"] = labels[0].fontMetrics().lineSpacing() if labels else None
    return out


def engine_pid(endpoint):
    """The pid of the engine answering on `endpoint` (from its status report), or None."""
    from neural_style.shared.client import Client, ClientError
    client = Client(endpoint=endpoint, autostart=False)
    try:
        client.connect()
        return client.status().get("pid")
    except ClientError:
        return None
    finally:
        client.close()


def shut_down_engine(endpoint):
    """Ask the engine on `endpoint` to stop; None, or why it could not be asked."""
    from neural_style.shared.client import Client, ClientError
    client = Client(endpoint=endpoint, autostart=False)
    try:
        client.connect()
        client.shutdown()
        return None
    except ClientError as error:
        return str(error)
    finally:
        client.close()


def failed_apply(ctl, doc, nodes, style, case, timeout=120):
    """One Apply that should fail: what the artist sees, and what is left of the document."""
    ok, apply_s, finished, watcher = run_apply(ctl, doc, nodes, style, dict(case, timeout=timeout))
    out = {"ok": ok, "apply_call_s": apply_s, "finished_in_time": finished, "after": describe(doc),
           "busy_after": ctl.is_busy(), "engine_state": list(ctl.state)}
    out.update(watcher.close())
    out.update(docker_texts())
    return out


def case_job_fails(case, ctl):
    """The engine accepts the job, then fails it (a damaged style file, a selection too small for
    the network); then the same Apply with a good style and no selection works."""
    from neural_style.controller import StyleChoice
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 64, 64, ["Paint"])
    if case.get("selection"):
        selection = Selection()
        selection.select(*case["selection"], 255)
        doc.setSelection(selection)
    before = describe(doc)
    out = failed_apply(ctl, doc, [layer], StyleChoice.file(case["style"], name="Starry"), case)
    out["before"] = before
    doc.setSelection(Selection())
    ok, apply_s, finished, watcher = run_apply(
        ctl, doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), case)
    out["again"] = {"ok": ok, "finished_in_time": finished, "after": describe(doc)}
    out["again"].update(watcher.close())
    doc.setModified(False)
    return out


def case_engine_faults(case, ctl):
    """The engine the first Apply auto-starts cannot start (damaged weights); with good weights it
    starts, and is SIGKILLed mid-job after previews; the next Apply starts a fresh one."""
    from neural_style.controller import StyleChoice
    style = StyleChoice.file(SCENARIO["style_image"], name="Starry")
    endpoint = case["endpoint"]
    out = {}
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 64, 64, ["Paint"])
    out["before"] = describe(doc)

    ctl.configure(endpoint=endpoint, autostart=True, engine_command=case["bad_weights_command"],
                  start_timeout=case["start_timeout"])
    room_before = docker_room()
    out["bad_weights"] = failed_apply(ctl, doc, [layer], style, case, timeout=240)
    out["bad_weights"].update(room_before=room_before,
                              room_after=docker_room(out["bad_weights"]["status_text"]))

    ctl.configure(endpoint=endpoint, autostart=True, engine_command=case["engine_command"],
                  start_timeout=case["start_timeout"])
    watcher = JobWatcher(ctl, doc)
    t0 = time.monotonic()
    ok = ctl.apply(doc, [layer], style, settings_for(case["long"]))
    apply_s = time.monotonic() - t0
    got_previews = wait_for(lambda: len(watcher.paints) >= 2 or watcher.outcome, 240)
    killed = {"ok": ok, "apply_call_s": apply_s, "previews_before_kill": len(watcher.paints),
              "states_before_kill": list(watcher.states)}
    pid = engine_pid(endpoint)
    killed["pid"] = pid
    if got_previews and watcher.outcome is None and pid:
        os.kill(pid, 9)
        t0 = time.monotonic()
        killed["killed"] = True
        killed["finished_in_time"] = wait_for(lambda: watcher.outcome is not None, 60)
        killed["kill_to_finished_s"] = time.monotonic() - t0
    killed.update({"after": describe(doc), "busy_after": ctl.is_busy(), "engine_state": list(ctl.state)})
    killed.update(watcher.close())
    killed.update(docker_texts())
    out["killed"] = killed

    ok, apply_s, finished, watcher = run_apply(ctl, doc, [layer], style, dict(case, timeout=240))
    again = {"ok": ok, "finished_in_time": finished, "after": describe(doc), "pid": engine_pid(endpoint)}
    again.update(watcher.close())
    again.update(docker_texts())
    out["again"] = again
    doc.setModified(False)
    ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    if again["pid"]:
        error = shut_down_engine(endpoint)
        if error:
            out["shutdown_error"] = "%s; the engine log ends: %s" % (error, engine_log_tail())
    out["pids"] = [p for p in (pid, again["pid"]) if p]
    return out


def case_fidelity(case, ctl):
    """One Apply on a fresh "Paint" layer (the given depth and ICC profile, a hard or feathered
    selection, or none); records the raw bytes pytest needs to ask the engine for the same job."""
    from neural_style.controller import StyleChoice
    from neural_style.settings import to_options
    app = Krita.instance()
    width, height, depth = case["width"], case["height"], case["depth"]
    doc = app.createDocument(width, height, "ns_" + case["name"], "RGBA", depth, case["profile"], 72.0)
    doc.setBatchmode(True)
    doc.topLevelNodes()[0].setPixelData(pattern(width, height, depth), 0, 0, width, height)
    layer = doc.createNode("Paint", "paintlayer")
    doc.rootNode().addChildNode(layer, doc.topLevelNodes()[0])
    layer.setPixelData(pattern(width, height, depth, alpha_band=(0, width // 4)), 0, 0, width, height)
    doc.refreshProjection()
    doc.waitForDone()
    app.activeWindow().addView(doc)
    out = {"profile": layer.colorProfile(), "options": to_options(settings_for(case))}
    if case.get("selection"):
        selection = Selection()
        selection.select(*case["selection"], 255)
        if case.get("feather_selection"):
            selection.feather(case["feather_selection"])
        doc.setSelection(selection)
        selection = doc.selection()
        out["selection_bounds"] = [selection.x(), selection.y(), selection.width(), selection.height()]
        out["selection_pixels"] = b64(bytes(selection.pixelData(0, 0, width, height)))
    before = describe(doc)
    ok, apply_s, finished, watcher = run_apply(
        ctl, doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), case)
    out.update({"ok": ok, "finished_in_time": finished, "before": before, "after": describe(doc)})
    out.update(watcher.close())
    doc.setSelection(Selection())
    doc.setModified(False)
    return out


# ---- the engine's life cycle, the live preview, the docker's rough edges, hitches (issues 15, 16) ----

class PauseMeter:
    """How long Qt's event loop paused: the gaps between the ticks of a 10 ms timer."""

    def __init__(self, interval_ms=10):
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps, self._last = [], None

    def start(self):
        self._last = time.monotonic()
        self.timer.start()
        return self

    def _tick(self):
        now = time.monotonic()
        self.gaps.append(now - self._last)
        self._last = now

    def stop(self):
        self.timer.stop()
        gaps = sorted(self.gaps)
        return {"max_pause_s": gaps[-1] if gaps else None, "ticks": len(gaps),
                "p99_pause_s": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] if gaps else None,
                "over_100ms": sum(1 for gap in gaps if gap > 0.1)}


def default_endpoint_report():
    """Does an engine answer on the plugin's default endpoint (the one Krita would use)? Stops it if so."""
    from neural_style.shared import endpoints
    endpoint = endpoints.default_endpoint()
    pid = engine_pid(endpoint)
    error = shut_down_engine(endpoint) if pid else None
    return {"endpoint": endpoint, "engine_pid": pid, "shutdown_error": error}


def at_start_report(ctl):
    """Krita has started and the docker is shown: the engine must not have been started for it."""
    from neural_style.extension import show_docker
    from neural_style.shared import paths
    docker = show_docker()
    wait_for(lambda: False, 4.0)   # the old plugin listed the library here, auto-starting the engine
    out = {"state": list(ctl.state), "state_text": docker.state_label.text(),
           "library_hint": docker.library_hint.text() if docker.library_hint.isVisibleTo(docker) else None,
           "library_items": docker.library_list.count(), "engine_config": os.path.exists(paths.engine_config_path())}
    out.update(default_endpoint_report())
    if out["engine_config"]:
        os.remove(paths.engine_config_path())   # the other cases configure their engine themselves
    return out


def engine_argv(pid):
    """The command line of the engine process `pid` (this machine), or None."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [part.decode() for part in f.read().split(b"\0") if part]
    except (OSError, TypeError):
        return None


def started_engine(ctl, timeout=240):
    wait_for(lambda: ctl.state[0] in ("connected", "not running"), timeout)
    return list(ctl.state)


def case_engine_on_demand(case, ctl):
    """With the installer's engine.json and nothing else configured, browsing the library (Refresh)
    starts the engine: a real request, unlike Krita starting or the docker opening."""
    from neural_style.extension import show_docker
    from neural_style.shared import endpoints, paths
    with open(paths.engine_config_path(), "w", encoding="utf-8") as f:
        json.dump({"command": case["engine_command"]}, f)
    try:
        ctl.configure(endpoint=None, autostart=True, engine_command=None, start_timeout=case["start_timeout"])
        docker = show_docker()
        docker.source_combo.setCurrentIndex(0)
        wait_for(lambda: False, 1.0)
        out = {"state_before": list(ctl.state)}
        out.update({"before_" + k: v for k, v in default_endpoint_report().items() if k == "engine_pid"})
        refresh = [b for b in docker.library_list.parent().findChildren(QPushButton) if b.text() == "Refresh"]
        refresh[0].click()
        out["state_after"] = started_engine(ctl, case["start_timeout"])
        out["state_text"] = docker.state_label.text()
        out["engine_argv"] = engine_argv(engine_pid(endpoints.default_endpoint()))
        out.update(default_endpoint_report())
    finally:
        os.remove(paths.engine_config_path())
        ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    return out


def case_engine_lifecycle(case, ctl):
    """A running, idle engine is killed (SIGKILL), then stopped (`shutdown`, what `engine_server stop`
    sends): the docker notices within seconds, and the FIRST Apply after each starts a fresh engine."""
    from neural_style.controller import StyleChoice
    from neural_style.extension import show_docker
    docker = show_docker()
    endpoint = case["endpoint"]
    ctl.configure(endpoint=endpoint, autostart=True, engine_command=case["engine_command"],
                  start_timeout=case["start_timeout"])
    style = StyleChoice.file(SCENARIO["style_image"], name="Starry")
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 64, 64, ["Paint"])
    out = {"pids": []}
    ctl.connect_engine()
    out["connected"] = started_engine(ctl, case["start_timeout"])
    for how in ("killed", "stopped"):
        if ctl.state[0] != "connected":   # each sub-case starts from a connected docker and a running engine
            ctl.connect_engine()
            wait_for(lambda: ctl.state[0] == "connected", case["start_timeout"])
        pid = engine_pid(endpoint)
        out["pids"].append(pid)
        record = {"pid": pid, "state_before": list(ctl.state)}
        t0 = time.monotonic()
        if how == "killed":
            os.kill(pid, 9)
        else:
            record["stop_error"] = shut_down_engine(endpoint)
        record["noticed"] = wait_for(lambda: ctl.state[0] == "not running", 15)
        record["noticed_s"] = time.monotonic() - t0
        record["state_text"] = docker.state_label.text()
        ok, apply_s, finished, watcher = run_apply(ctl, doc, [layer], style, dict(case, timeout=240))
        record.update({"ok": ok, "finished_in_time": finished, "new_pid": engine_pid(endpoint)})
        record.update(watcher.close())
        out["pids"].append(record["new_pid"])
        out[how] = record
    out["layers"] = [node.name() for node in doc.topLevelNodes()]
    doc.setModified(False)
    ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    shut_down_engine(endpoint)
    out["pids"] = [pid for pid in out["pids"] if pid]
    return out


def activate(doc, layer):
    view = Krita.instance().activeWindow().activeView()
    wait_for(lambda: False, 0.5)
    doc.setActiveNode(layer)
    wait_for(lambda: [n.name() for n in view.selectedNodes()] == [layer.name()], 5)
    return view


class EngineBlocker:
    """Another client's long job, so that the next Apply waits in the engine's queue until stop()."""

    def __init__(self, options):
        from neural_style.shared.client import Client
        from neural_style.shared.protocol import Pixels, StyleRef
        self.client = Client(endpoint=SCENARIO["endpoint"], autostart=False)
        self.client.connect()
        self.job = self.client.submit(Pixels(32, 32, 3, "u8", bytes(range(256)) * 12), [StyleRef.file(
            SCENARIO["style_image"])], dict(options, preview_interval_s=0, optimizer="adam"))
        self.running = wait_for(lambda: engine_status().get("running") is not None, 60)

    def stop(self):
        try:
            self.job.cancel()
            self.job.wait(30)
        finally:
            self.client.close()


def make_active(doc, view, node, attempts=4):
    """Make `node` the active layer (as GUI Krita does with a layer a script adds); the attempts it
    took (0: it never became active). Headless, the Layers docker does not see layers added after
    its view was shown, and puts back the layer it knows: showing another view and this one again
    makes it read the layers anew (not always at the first time)."""
    app = Krita.instance()
    is_active = lambda: doc.activeNode().uniqueId() == node.uniqueId() and [
        n.uniqueId() for n in view.selectedNodes()] == [node.uniqueId()]
    for attempt in range(1, attempts + 1):
        scratch = app.createDocument(16, 16, "ns_scratch", "RGBA", "U8", "", 72.0)
        app.activeWindow().addView(scratch)
        wait_for(lambda: False, 0.3)
        scratch.setModified(False)
        scratch.close()
        wait_for(lambda: app.activeDocument() == doc, 5)
        wait_for(lambda: False, 0.3)
        doc.setActiveNode(node)
        if wait_for(is_active, 2):
            return attempt
    return 0


def docker_with_file_style(docker, case):
    docker.source_combo.setCurrentIndex(1)
    docker.file_edit.setText(SCENARIO["style_image"])
    docker.file_edit.editingFinished.emit()
    docker.detail.setValue(case.get("iterations", 8))
    docker.resolution.setValue(case.get("max_size", 64))
    docker.preview_interval.setValue(case.get("preview_interval_s", 0.2))


class PreviewWatcher:
    def __init__(self, ctl):
        self.ctl, self.events, self.t0 = ctl, [], time.monotonic()
        ctl.preview_changed.connect(self._event)

    def _event(self, token, kind, picture):
        size = list(picture[1:]) if kind in ("source", "progress", "result") else None
        self.events.append({"t": time.monotonic() - self.t0, "token": token, "kind": kind, "size": size,
                            "text": list(picture) if kind == "error" and picture else None})

    def first(self, kind, after=0.0, token=None):
        for event in self.events:
            if event["kind"] == kind and event["t"] >= after and (token is None or event["token"] == token):
                return event
        return None

    def close(self):
        self.ctl.preview_changed.disconnect(self._event)
        return self.events


def case_live_preview(case, ctl):
    """Live preview in the docker: first picture, refinement, a debounced refresh after a change, and a
    preview beside a running Apply (it goes first)."""
    from neural_style.controller import StyleChoice
    from neural_style.extension import show_docker
    docker = show_docker()
    doc, (background, layer) = make_document("ns_" + case["name"], "U8", 256, 192, ["Paint"])
    activate(doc, layer)
    docker_with_file_style(docker, case)
    before = describe(doc)
    watcher = PreviewWatcher(ctl)
    meter = PauseMeter().start()
    t0 = time.monotonic() - watcher.t0
    docker.preview_check.setChecked(True)
    done = wait_for(lambda: watcher.first("result") or watcher.first("error"), 120)
    out = {"done": bool(done), "pauses": meter.stop()}
    first = {kind: watcher.first(kind) for kind in ("source", "progress", "result", "error")}
    out["first"] = {k: (dict(v, t=v["t"] - t0) if v else None) for k, v in first.items()}
    out["progress_pictures"] = sum(1 for e in watcher.events if e["kind"] == "progress")
    pixmap = docker.preview_label.pixmap()
    out["label_pixmap"] = [pixmap.width(), pixmap.height()] if pixmap is not None and not pixmap.isNull() else None
    out["preview_status"] = docker.preview_status.text()
    # A change refreshes the preview by itself (debounced: three quick changes, one new preview).
    token = watcher.events[-1]["token"] if watcher.events else 0
    t1 = time.monotonic() - watcher.t0
    for value in (70, 75, 80):
        docker.strength.setValue(value)
        wait_for(lambda: False, 0.05)
    wait_for(lambda: any(e["token"] > token and e["kind"] == "result" for e in watcher.events), 120)
    later = [e for e in watcher.events if e["token"] > token]
    out["after_change"] = {"tokens": sorted(set(e["token"] for e in later)),
                           "first_progress_s": next((e["t"] - t1 for e in later if e["kind"] == "progress"), None),
                           "result": any(e["kind"] == "result" for e in later)}
    # Beside a running Apply: the preview is not queued behind it.
    apply_watch = JobWatcher(ctl, doc)
    ok = ctl.apply(doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), settings_for(case["long"]))
    wait_for(lambda: apply_watch.paints or apply_watch.outcome, 120)
    token = watcher.events[-1]["token"] if watcher.events else 0
    t2 = time.monotonic() - watcher.t0
    docker.strength.setValue(40)
    wait_for(lambda: any(e["token"] > token and e["kind"] in ("progress", "error") for e in watcher.events), 60)
    beside = [e for e in watcher.events if e["token"] > token]
    out["beside_apply"] = {"apply_ok": ok, "apply_running": apply_watch.outcome is None,
                           "first_progress_s": next((e["t"] - t2 for e in beside if e["kind"] == "progress"), None)}
    ctl.cancel()
    wait_for(lambda: apply_watch.outcome is not None, 30)
    out["beside_apply"]["apply_outcome"] = apply_watch.outcome
    apply_watch.close()
    docker.preview_check.setChecked(False)
    wait_for(lambda: False, 0.5)
    out["events"] = watcher.close()[-40:]
    for node in doc.topLevelNodes():
        if node.name() not in ("Background", "Paint"):
            node.remove()
    out["source_unchanged"] = describe(doc)["layers"][1]["pixels"] == before["layers"][1]["pixels"]
    doc.setModified(False)
    return out


def case_rough_edges(case, ctl):
    """The docker's rough edges: Strength's number and ends, the style's thumbnail, artist labels in
    Advanced, the engine address dialog, a long message, the percentage, Apply again, the history,
    and a second Apply while a job runs."""
    from neural_style.docker_parts import EngineDialog
    from neural_style.extension import show_docker
    docker = show_docker()
    out = {}
    docker.strength.setValue(73)
    out["strength"] = {"value_text": docker.strength_value.text(), "ends": [w.text() for w in docker.strength_ends]}
    docker_with_file_style(docker, case)
    thumb = docker.style_thumb.pixmap()
    out["style_thumb"] = [thumb.width(), thumb.height()] if thumb is not None and not thumb.isNull() else None
    out["advanced_labels"] = docker.advanced_labels()
    editors = dict(zip(docker._advanced, docker._advanced_editors))
    out["choice_texts"] = {name: editors[name].currentText() for name in ("content_layer", "optimizer", "pooling")}
    out["settings_content_layer"] = docker.settings().advanced.get("content_layer", "default")
    # The engine's address, in a settings dialog (kept in Krita's settings).
    dialog = EngineDialog(ctl.endpoint, docker)
    dialog.endpoint_edit.setText("nonsense")
    dialog.accept()
    out["bad_address"] = {"accepted": dialog.result() == dialog.Accepted, "error": dialog.error_label.text()}
    dialog.endpoint_edit.setText(case["address"])
    dialog.accept()
    docker.open_engine_settings(dialog)
    out["address"] = {"endpoint": ctl.endpoint,
                      "saved": Krita.instance().readSetting("neural_style", "endpoint", "")}
    Krita.instance().writeSetting("neural_style", "endpoint", "")
    ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    # A long message keeps to its lines; the controls keep their room.
    wait_for(lambda: False, 0.3)
    sizes = lambda: [docker.strength.height(), docker.detail.height(), docker.apply_button.height()]
    out["sizes_before"] = sizes()
    docker.status.setText("The engine could not read " + "a very long path/" * 25 + ".", "full text " * 40)
    wait_for(lambda: False, 0.3)
    out["sizes_after"] = sizes()
    out["minimum_sizes"] = [docker.strength.minimumSizeHint().height(), docker.detail.minimumSizeHint().height(),
                            docker.apply_button.minimumSizeHint().height()]
    out["status_height"] = docker.status.label.height()
    out["line_height"] = docker.status.label.fontMetrics().lineSpacing()
    out["details_button"] = docker.status.details_button.isVisibleTo(docker)
    # Apply, then Apply again: both stylize the source; the history keeps both with their settings.
    doc, (background, sketch) = make_document("ns_" + case["name"], "U8", 64, 64, ["Sketch"])
    view = activate(doc, sketch)
    applied = []
    for detail in (8, 12):
        docker.detail.setValue(detail)
        watcher = JobWatcher(ctl, doc)
        blocker = EngineBlocker(case["long"])     # the job waits in the queue: no race with its end
        docker.apply_button.click()
        # GUI Krita makes a layer added by a script the active one (what the artist saw): so does this.
        new = [node for node in doc.topLevelNodes() if node.name() == "Sketch – style"][:1]   # right above Sketch
        activated = make_active(doc, view, new[0]) if new else 0
        waited = watcher.outcome is None and blocker.running
        blocker.stop()
        wait_for(lambda: watcher.outcome is not None, 120)
        wait_for(lambda: [n.name() for n in view.selectedNodes()] == ["Sketch"], 3)
        applied.append({"finished": watcher.outcome, "selected": [n.name() for n in view.selectedNodes()],
                        "active": doc.activeNode().name(), "result_was_active": activated, "job_waited": waited,
                        "progress_text": docker.progress_bar.text()})
        watcher.close()
    out["applied"] = applied
    out["layers"] = [node.name() for node in doc.topLevelNodes()]
    out["history"] = [[docker.history_list.item(i).text(), not docker.history_list.item(i).icon().isNull()]
                      for i in range(docker.history_list.count())]
    docker.detail.setValue(99)
    if docker.history_list.count():
        oldest = docker.history_list.item(docker.history_list.count() - 1)
        docker.history_list.itemClicked.emit(oldest)
    out["restored_detail"] = docker.detail.value()
    # A second Apply (the action) while a job runs: it says so, and Cancel stays.
    docker.detail.setValue(case["long"]["iterations"])
    watcher = JobWatcher(ctl, doc)
    docker.apply_button.click()
    wait_for(lambda: watcher.paints or watcher.outcome, 120)
    messages = []
    ctl.message.connect(messages.append)
    Krita.instance().action("neural_style_apply").trigger()
    status = docker.status.text()
    wait_for(lambda: False, 0.3)
    ctl.message.disconnect(messages.append)
    out["second_apply"] = {"busy": ctl.is_busy(), "apply_enabled": docker.apply_button.isEnabled(),
                           "cancel_enabled": docker.cancel_button.isEnabled(), "status": status,
                           "messages": messages, "outcome": watcher.outcome}
    docker.cancel_button.click()
    wait_for(lambda: watcher.outcome is not None, 30)
    out["second_apply"]["after_cancel"] = watcher.outcome
    watcher.close()
    docker.detail.setValue(8)
    doc.setModified(False)
    return out


def case_hitches(case, ctl):
    """Qt's event loop during a job: (control) the engine busy with another client's job while the
    plugin is idle, then the plugin's own Apply with previews every 0.1 s on a larger layer, then the
    live preview beside it."""
    import subprocess
    from neural_style.controller import StyleChoice
    from neural_style.extension import show_docker
    width, height = case["size"]
    doc, (background, paint) = make_document("ns_" + case["name"], "U8", width, height, ["Paint"])
    activate(doc, paint)
    wait_for(lambda: False, 1.0)
    out = {}

    def control(name):
        """The engine busy with another process's job, the plugin idle (the machine's own hiccups)."""
        busy = subprocess.Popen(case["busy_command"] + [SCENARIO["endpoint"], SCENARIO["style_image"],
                                                        str(case["seconds"] + 6), str(width), str(height),
                                                        str(case["max_size"])],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            out[name + "_running"] = wait_for(lambda: (engine_status().get("running") is not None), 60)
            wait_for(lambda: False, 1.0)
            meter = PauseMeter().start()
            wait_for(lambda: False, case["seconds"])
            out[name] = meter.stop()
        finally:
            busy.wait(60)
        wait_for(lambda: engine_status().get("running") is None, 30)

    control("control")
    watcher = JobWatcher(ctl, doc)
    ok = ctl.apply(doc, [paint], StyleChoice.file(SCENARIO["style_image"], name="Starry"),
                   settings_for(dict(case, iterations=10000)))
    wait_for(lambda: watcher.paints or watcher.outcome, 120)
    meter = PauseMeter().start()
    wait_for(lambda: watcher.outcome is not None, case["seconds"])
    out["apply"] = meter.stop()
    out["apply"]["paints"] = len(watcher.paints)
    docker = show_docker()
    docker_with_file_style(docker, dict(case, iterations=200))
    meter = PauseMeter().start()
    docker.preview_check.setChecked(True)
    wait_for(lambda: watcher.outcome is not None, case["seconds"])
    out["apply_and_preview"] = meter.stop()
    docker.preview_check.setChecked(False)
    out["apply_ok"] = ok and watcher.outcome is None
    ctl.cancel()
    wait_for(lambda: watcher.outcome is not None, 30)
    out.update(watcher.close())
    control("control_after")   # the load on a shared machine changes: a control on each side
    doc.setModified(False)
    return out


# ---- animated layers (issue 18) ----------------------------------------------------------------

def keyframes(node, end=24):
    return [t for t in range(0, end) if node.hasKeyframeAtTime(t)]


def frames_of(node, doc, times):
    return {str(t): b64(bytes(node.pixelDataAtTime(0, 0, doc.width(), doc.height(), t))) for t in times}


def make_animation(case):
    """The case's .kra (tests/support/animation.py): a Background and an animated layer "Anim",
    opened with a view, the current time at case["time"]."""
    app = Krita.instance()
    doc = app.openDocument(case["kra"])
    doc.setBatchmode(True)
    anim = [node for node in doc.topLevelNodes() if node.animated()]
    assert len(anim) == 1 and anim[0].name() == "Anim", [node.name() for node in doc.topLevelNodes()]
    doc.setCurrentTime(case.get("time", 0))
    doc.waitForDone()
    app.activeWindow().addView(doc)
    wait_for(lambda: False, 0.3)
    return doc, anim[0]


class ProgressTexts:
    def __init__(self, ctl):
        self.ctl, self.texts = ctl, []
        ctl.progress.connect(self._progress)

    def _progress(self, fraction, text):
        self.texts.append(text)

    def close(self):
        self.ctl.progress.disconnect(self._progress)
        return self.texts


def result_record(doc, name, times):
    found = [node for node in doc.topLevelNodes() if node.name() == name]
    if len(found) != 1:
        return None
    node = found[0]
    return {"animated": node.animated(), "keyframes": keyframes(node), "frames": frames_of(node, doc, times),
            "depth": node.colorDepth(), "opacity": node.opacity(), "children": len(node.childNodes())}


def all_frames_shown(doc, node):
    """The docker's "All frames" (visible, checked) with `node` of the active document active."""
    from neural_style.extension import show_docker
    box = getattr(show_docker(), "all_frames", None)
    if box is None:
        return {node.name(): None}
    doc.setActiveNode(node)
    wait_for(lambda: box.isVisible() == node.animated(), 3)
    return {node.name(): [box.isVisible(), box.isChecked()]}


def case_frames(case, ctl):
    """Apply on an animated layer (all frames), then on a plain layer of the same document."""
    from neural_style.controller import StyleChoice
    from neural_style.settings import to_options
    doc, anim = make_animation(case)
    times = keyframes(anim)
    out = {"keyframes_before": times, "before": frames_of(anim, doc, times), "options": to_options(settings_for(case)),
           "time_before": doc.currentTime()}
    shown = all_frames_shown(doc, anim)
    texts = ProgressTexts(ctl)
    style = StyleChoice.file(SCENARIO["style_image"], name="Starry")
    ok, apply_s, finished, watcher = run_apply(ctl, doc, [anim], style, case)
    out.update({"ok": ok, "apply_call_s": apply_s, "finished_in_time": finished, "progress_texts": texts.close(),
                "time_after": doc.currentTime(), "layer_names": [node.name() for node in doc.topLevelNodes()],
                "source_after": frames_of(anim, doc, times), "source_keyframes_after": keyframes(anim),
                "result": result_record(doc, "Anim – Starry", times)})
    out.update(watcher.close())
    plain = doc.createNode("Plain", "paintlayer")
    doc.rootNode().addChildNode(plain, doc.topLevelNodes()[-1])
    plain.setPixelData(pattern(doc.width(), doc.height(), "U8"), 0, 0, doc.width(), doc.height())
    ok, _, finished, watcher = run_apply(ctl, doc, [plain], style, case)
    result = [node for node in doc.topLevelNodes() if node.name() == "Plain – Starry"]
    out["plain"] = {"ok": ok, "finished_in_time": finished, "finished": watcher.close()["finished"],
                    "results": len(result), "animated": result[0].animated() if result else None}
    other, (_, sketch) = make_document("ns_frames_plain", "U8", 64, 48, ["Sketch"])
    shown.update(all_frames_shown(other, sketch))
    other.setModified(False)
    out["all_frames_shown"] = shown
    doc.setModified(False)
    return out


def case_frames_cancel(case, ctl):
    """Cancel once the second frame has started: the first frame stays, in a layer named incomplete."""
    from neural_style.controller import StyleChoice
    from neural_style.settings import to_options
    doc, anim = make_animation(case)
    times = keyframes(anim)
    out = {"keyframes_before": times, "before": frames_of(anim, doc, times), "options": to_options(settings_for(case))}
    texts = ProgressTexts(ctl)
    watcher = JobWatcher(ctl, doc)
    out["ok"] = ctl.apply(doc, [anim], StyleChoice.file(SCENARIO["style_image"], name="Starry"), settings_for(case))
    second = wait_for(lambda: watcher.outcome or any("frame 2/3" in text for text in texts.texts), 180)
    t0 = time.monotonic()
    ctl.cancel()
    finished = wait_for(lambda: watcher.outcome is not None, 60)
    out.update({"second_frame_started": bool(second), "stop_to_finished_s": time.monotonic() - t0,
                "finished_in_time": finished, "progress_texts": texts.close(), "busy_after": ctl.is_busy(),
                "layer_names": [node.name() for node in doc.topLevelNodes()],
                "source_after": frames_of(anim, doc, times),
                "result": result_record(doc, "Anim – Starry (incomplete)", times)})
    out.update(watcher.close())
    doc.setModified(False)
    return out


CASES_15_16 = {"engine_on_demand": case_engine_on_demand, "engine_lifecycle": case_engine_lifecycle,
               "live_preview": case_live_preview, "rough_edges": case_rough_edges, "hitches": case_hitches,
               "frames": case_frames, "frames_cancel": case_frames_cancel}


CASES = {"job_fails": case_job_fails, "engine_faults": case_engine_faults, "autostart": case_autostart, "two_layers": case_two_layers, "refusals": case_refusals, "library": case_library, "docker_apply": case_docker_apply, "plugin_loaded": case_plugin_loaded, "selection_rgba": case_selection_rgba, "depth": case_depth,
         "cancel": case_cancel, "close_document": case_close_document, "no_engine": case_no_engine, "fidelity": case_fidelity}


def run_all():
    from neural_style.controller import controller
    app = Krita.instance()
    app.setBatchmode(True)
    ctl = controller()
    if SCENARIO.get("check_at_start"):
        RESULTS["at_start"] = at_start_report(ctl)
        save_results()
    ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    for case in SCENARIO["cases"]:
        started = time.monotonic()
        print("ns_test_driver: case %s" % case["name"], file=sys.stderr, flush=True)   # marks krita.log
        try:
            result = dict(CASES, **CASES_15_16)[case["kind"]](case, ctl)
        except Exception:
            result = {"exception": traceback.format_exc()}
        result["duration_s"] = time.monotonic() - started
        RESULTS["cases"][case["name"]] = result
        save_results()
    for doc in app.documents():
        doc.setModified(False)
        doc.close()
    wait_for(lambda: False, 0.5)
    if SCENARIO.get("quit_mid_job"):
        quit_mid_job(ctl, SCENARIO["quit_mid_job"])
    RESULTS["finished"] = True
    save_results()
    app.action("file_quit").trigger()


def quit_mid_job(ctl, case):
    """Leave a job running and quit Krita: the plugin must cancel it (pytest then asks the engine).
    Krita quits right after a preview was painted, on a large layer, while the canvas is updating."""
    from neural_style.controller import StyleChoice
    width, height = case.get("size", (64, 64))
    doc, (background, layer) = make_document("ns_quit", "U8", width, height, ["Paint"])
    watcher = JobWatcher(ctl, doc)
    ok = ctl.apply(doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), settings_for(case))
    got_preview = wait_for(lambda: len(watcher.paints) >= 2 or watcher.outcome, 120)
    painted = len(watcher.paints)
    wait_for(lambda: len(watcher.paints) > painted or watcher.outcome, 30)
    RESULTS["quit_mid_job"] = {"ok": ok, "got_preview": bool(got_preview), "busy": ctl.is_busy(),
                               "outcome": watcher.outcome, "paints": len(watcher.paints)}
    watcher.close()
    doc.setModified(False)


class TestDriver(Extension):
    def setup(self):
        Krita.instance().notifier().windowCreated.connect(lambda: QTimer.singleShot(200, self.run))

    def createActions(self, window):
        pass

    def run(self):
        try:
            run_all()
        except Exception:
            excepthook(*sys.exc_info())
            Krita.instance().action("file_quit").trigger()


Krita.instance().addExtension(TestDriver(Krita.instance()))
