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
from PyQt5.QtWidgets import QMenu

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
        out["shutdown_error"] = str(error)
    finally:
        client.close()
    return out


def docker_texts():
    """What the docker shows the artist: its status line and its engine state line."""
    from neural_style.extension import show_docker
    docker = show_docker()
    return {"status_text": docker.status.text(), "state_text": docker.state_label.text()}


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
    out["bad_weights"] = failed_apply(ctl, doc, [layer], style, case, timeout=240)

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
            out["shutdown_error"] = error
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


CASES = {"job_fails": case_job_fails, "engine_faults": case_engine_faults, "autostart": case_autostart, "two_layers": case_two_layers, "refusals": case_refusals, "library": case_library, "docker_apply": case_docker_apply, "plugin_loaded": case_plugin_loaded, "selection_rgba": case_selection_rgba, "depth": case_depth,
         "cancel": case_cancel, "close_document": case_close_document, "no_engine": case_no_engine, "fidelity": case_fidelity}


def run_all():
    from neural_style.controller import controller
    app = Krita.instance()
    app.setBatchmode(True)
    ctl = controller()
    ctl.configure(endpoint=SCENARIO["endpoint"], autostart=False)
    for case in SCENARIO["cases"]:
        started = time.monotonic()
        print("ns_test_driver: case %s" % case["name"], file=sys.stderr, flush=True)   # marks krita.log
        try:
            result = CASES[case["kind"]](case, ctl)
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
    """Leave a job running and quit Krita: the plugin must cancel it (pytest then asks the engine)."""
    from neural_style.controller import StyleChoice
    doc, (background, layer) = make_document("ns_quit", "U8", 64, 64, ["Paint"])
    watcher = JobWatcher(ctl, doc)
    ok = ctl.apply(doc, [layer], StyleChoice.file(SCENARIO["style_image"], name="Starry"), settings_for(case))
    got_preview = wait_for(lambda: watcher.paints or watcher.outcome, 120)
    RESULTS["quit_mid_job"] = {"ok": ok, "got_preview": bool(got_preview), "busy": ctl.is_busy(),
                               "outcome": watcher.outcome}
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
