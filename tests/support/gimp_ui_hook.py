"""Test-only: installed as `sitecustomize.py` on the PYTHONPATH of the GIMP session under test, so it
loads into GIMP's Python processes; it acts only inside the Neural Style plug-in, and only when the
driver left a plan for the current case (NEURAL_STYLE_UI_PLAN). It works the plug-in's real windows as
an artist would: it finds them among GTK's toplevels, sets values, clicks the real buttons (emitting
their "clicked" signal) and writes what it saw, with wall-clock times, to the plan's record file.

Plan: {"record": PATH, "actions": [[name, arg], ...]}; actions run in order, each waits (polled on the
plug-in's own GLib main loop) until it can be done, bounded by ACTION_TIMEOUT_S.
"""

import json
import os
import sys
import threading
import time

ACTION_TIMEOUT_S = 90.0


def _plan():
    path = os.environ.get("NEURAL_STYLE_UI_PLAN")
    if not path or not sys.argv or not sys.argv[0].endswith("neural_style.py") or "-run" not in sys.argv:
        return None
    try:
        with open(path) as f:
            plan = json.load(f)
    except (OSError, ValueError):
        return None
    return plan if plan.get("actions") else None


class Runner:
    def __init__(self, plan):
        from gi.repository import Gtk
        self.Gtk = Gtk
        self.plan = plan
        self.actions = list(plan["actions"])
        self.record = {"events": [], "started_at": time.time()}
        self.since = time.monotonic()
        self.dialog = None
        self.seen_picture = None
        self.pictures = 0

    def save(self):
        with open(self.plan["record"] + ".tmp", "w") as f:
            json.dump(self.record, f, indent=1)
        os.replace(self.plan["record"] + ".tmp", self.plan["record"])

    def tick(self):
        try:
            self._count_pictures()
            self._note_progress()
            while self.actions:
                name, arg = self.actions[0]
                if not getattr(self, "do_" + name)(arg):
                    if time.monotonic() - self.since > ACTION_TIMEOUT_S:
                        self.record["error"] = "timed out waiting for %s %r" % (name, arg)
                        self.save()
                        self.give_up()
                        return False
                    return True
                self.record["events"].append([name, arg, time.time()])
                self.actions.pop(0)
                self.since = time.monotonic()
                self.save()
            return False
        except Exception:
            import traceback
            self.record["error"] = traceback.format_exc()
            self.save()
            return False

    def give_up(self):
        """Close what is open (Cancel), so one stuck case does not hold up the rest of the session."""
        if self.dialog is not None:
            self.dialog.response(self.Gtk.ResponseType.CANCEL)
        window = self._progress_window()
        if window is not None:
            for button in self.find(window, kind=self.Gtk.Button):
                button.clicked()

    # ------------------------------------------------------------------------------ finding widgets

    def toplevels(self):
        return [w for w in self.Gtk.Window.list_toplevels() if w.get_visible()]

    def find(self, root, name=None, kind=None):
        found = []

        def walk(widget):
            if (name is None or widget.get_name() == name) and (kind is None or isinstance(widget, kind)):
                found.append(widget)
            if isinstance(widget, self.Gtk.Container):
                for child in widget.get_children():
                    walk(child)
        walk(root)
        return found

    def _count_pictures(self):
        if self.dialog is None:
            return
        images = self.find(self.dialog, "neural-style-preview")
        pixbuf = images[0].get_pixbuf() if images else None
        if pixbuf is not None and pixbuf is not self.seen_picture:
            self.seen_picture = pixbuf
            self.pictures += 1
            self.record.setdefault("pictures", []).append(
                {"at": time.time(), "width": pixbuf.get_width(), "height": pixbuf.get_height()})

    def _note_progress(self):
        """Every new text of the progress window's bar, in order."""
        window = self._progress_window()
        bars = self.find(window, kind=self.Gtk.ProgressBar) if window is not None else []
        texts = self.record.setdefault("progress_texts", [])
        if bars and bars[0].get_text() and (not texts or texts[-1] != bars[0].get_text()):
            texts.append(bars[0].get_text())

    # ------------------------------------------------------------------------------ actions

    def do_wait_dialog(self, arg):
        from gi.repository import GimpUi
        dialogs = [w for w in self.toplevels() if isinstance(w, GimpUi.ProcedureDialog) and w.get_mapped()]
        if dialogs:
            self.dialog = dialogs[0]
            self.record["dialog_at"] = time.time()
        return bool(dialogs)

    def do_inspect(self, arg):
        from gi.repository import GObject
        d = self.dialog
        layer_picker = d.get_widget("style-layer", GObject.TYPE_NONE)
        tv = d.get_widget("tv-weight", GObject.TYPE_NONE)
        texts = [s.get_text() for s in self.find(tv, kind=self.Gtk.SpinButton)] if tv is not None else []
        if isinstance(tv, self.Gtk.SpinButton):
            texts.append(tv.get_text())
        expanders = self.find(d, kind=self.Gtk.Expander)
        self.record.setdefault("inspected", []).append({
            "file_picker": [w.is_visible() for w in self.find(d, "neural-style-style-file")],
            "library_picker": [w.is_visible() for w in self.find(d, "neural-style-style-library")],
            "layer_picker": layer_picker.is_visible() if layer_picker is not None else None,
            "tv_weight_text": texts, "tv_weight_value": d.get_property("config").get_property("tv-weight"),
            "advanced_expanded": [e.get_expanded() for e in expanders],
            "preview_status": [w.get_text() for w in self.find(d, "neural-style-preview-status")],
            "check_buttons": [w.get_label() for w in self.find(d, kind=self.Gtk.CheckButton) if w.is_visible()],
        })
        return True

    def do_set(self, arg):
        name, value = arg
        self.dialog.get_property("config").set_property(name, value)
        self.record.setdefault("sets", []).append([name, time.time()])
        self.pictures = 0
        return True

    def do_set_file(self, arg):
        from gi.repository import Gio
        name, path = arg
        self.dialog.get_property("config").set_property(name, Gio.File.new_for_path(path))
        return True

    def do_expand(self, arg):
        for expander in self.find(self.dialog, kind=self.Gtk.Expander):
            expander.set_expanded(bool(arg))
        return True

    def do_wait_pictures(self, count):
        """At least `count` new preview pictures since the dialog opened or the last `set`."""
        return self.pictures >= count

    def do_wait_status(self, text):
        """The preview's status line reads `text` (e.g. "Preview done": no picture of that job is still coming)."""
        return any(w.get_text() == text for w in self.find(self.dialog, "neural-style-preview-status"))

    def do_picture_stats(self, arg):
        """Size of the preview picture and the share of its fully transparent pixels."""
        pixbuf = self.find(self.dialog, "neural-style-preview")[0].get_pixbuf()
        data, stride = pixbuf.get_pixels(), pixbuf.get_rowstride()
        width, height = pixbuf.get_width(), pixbuf.get_height()
        clear = sum(1 for y in range(height) for x in range(width) if data[y * stride + x * 4 + 3] == 0)
        self.record["picture_stats"] = {"width": width, "height": height, "has_alpha": pixbuf.get_has_alpha(),
                                        "transparent": clear / float(width * height)}
        return True

    def do_wait_seconds(self, seconds):
        return time.monotonic() - self.since >= seconds

    def do_click(self, response):
        button = self.dialog.get_widget_for_response(
            {"ok": self.Gtk.ResponseType.OK, "cancel": self.Gtk.ResponseType.CANCEL}[response])
        self.record["clicked_" + response + "_at"] = time.time()
        button.clicked()
        self.dialog = None
        return True

    def _progress_window(self):
        for window in self.toplevels():
            if window.get_title() == "Neural Style" and self.find(window, kind=self.Gtk.ProgressBar):
                return window
        return None

    def do_wait_progress(self, fraction):
        window = self._progress_window()
        bars = self.find(window, kind=self.Gtk.ProgressBar) if window is not None else []
        return bool(bars) and bars[0].get_fraction() > fraction

    def do_wait_progress_text(self, text):
        """The progress window's bar has shown a text containing `text`."""
        return any(text in seen for seen in self.record.get("progress_texts", []))

    def do_cancel_progress(self, arg):
        window = self._progress_window()
        if window is None:
            return False
        buttons = self.find(window, kind=self.Gtk.Button)
        self.record["cancel_clicked_at"] = time.time()
        buttons[0].clicked()
        return True

    def do_error_box(self, arg):
        boxes = [w for w in self.toplevels() if isinstance(w, self.Gtk.MessageDialog)]
        if not boxes:
            return False
        box = boxes[0]
        details = [label.get_text() for e in self.find(box, kind=self.Gtk.Expander)
                   for label in self.find(e, kind=self.Gtk.Label) if label is not e.get_label_widget()]
        self.record["error_box"] = {"summary": box.get_property("text"), "details": "\n".join(details),
                                    "expanders": [e.get_label() for e in self.find(box, kind=self.Gtk.Expander)]}
        box.get_widget_for_response(self.Gtk.ResponseType.CLOSE).clicked()
        return True


def _start(plan):
    def wait_for_gtk():
        while "gi.repository.Gtk" not in sys.modules:
            time.sleep(0.05)
        time.sleep(0.2)              # the import itself finishes on the main thread
        from gi.repository import GLib

        def begin():
            runner = Runner(plan)
            GLib.timeout_add(50, runner.tick)
            return False
        GLib.idle_add(begin)
    threading.Thread(target=wait_for_gtk, name="ui-hook", daemon=True).start()


_PLAN = _plan()
if _PLAN is not None:
    _start(_PLAN)
