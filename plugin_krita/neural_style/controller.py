"""Krita side of a job: reads layers and the selection, creates result layers, paints previews.

One Controller per Krita process (controller()); the docker and the action are views on it and
scripts/tests drive it through apply(), cancel(), configure() and its signals. Krita objects are
only touched here, on the UI thread; the engine worker gets bytes.
"""

import logging
import time

from PyQt5.QtCore import QObject, QTimer, pyqtSignal

from krita import Krita

from .closing import CloseWatcher, window_shows
from .controller_frames import FrameJobs
from .history import History
from .layers import (MASK_TYPES, ApplyError, StyleChoice, is_open, layer_region, node_rect,  # noqa: F401 (API)
                     read_layer, style_ref)
from .painter import BandPainter, timed
from .pixels import UnsupportedLayer
from .preview import sampled_rows, step_for
from .progress import failure_text, fraction, progress_text
from .region import incomplete_layer_name, result_layer_name
from .settings import option_error_text, preview_options, to_options
from .shared.explain import explain
from .shared.options import OptionError
from .shared.protocol import Pixels
from .payloads import PreviewTask, Task
from .worker import start_worker

log = logging.getLogger("neural_style")

REFRESH_INTERVAL_S = 0.5           # previews: the canvas is recomposited at most this often
ON_DEMAND_IDLE_TIMEOUT_S = 600.0    # an engine this plugin started exits after 10 idle minutes
NOT_STARTED = ("not started", "it starts when you Apply, Preview or list the library")


class _LayerJob:
    def __init__(self, source, result, rect):
        self.source, self.result, self.rect = source, result, rect
        self.started = False    # the engine sent an event for it
        self.painted = False    # a preview (or the result) is in the result layer
        self.final = False      # the result is in the result layer
        self.times = None       # an animated layer's keyframe times (one result per keyframe)


class Controller(FrameJobs, QObject):
    state_changed = pyqtSignal(str, str)      # "not started" | "starting" | "connected" | "not running", detail
    styles_changed = pyqtSignal(list)         # library styles (dicts from client.list_styles())
    progress = pyqtSignal(float, str)         # 0..1 over the whole Apply, text with ETA
    layer_painted = pyqtSignal(object, bool)  # result Node, final
    finished = pyqtSignal(str, str)           # "done" | "cancelled" | "error", message (one sentence)
    failure = pyqtSignal(str, str)            # a failed job (before its finished) or request: summary, details
    message = pyqtSignal(str)                 # a non-job request failed or succeeded (one sentence)
    preview_changed = pyqtSignal(object, str, object)  # token, kind, (rgba8, w, h) | (summary, details) | None
    history_changed = pyqtSignal()

    def __init__(self):
        super().__init__()
        self.state = NOT_STARTED
        self.details = ""                     # the last failure's full text (the docker's "Details")
        self._config = {"endpoint": None, "autostart": True, "engine_command": None, "start_timeout": 30.0}
        self._document = None
        self._jobs = []
        self._finish = None                   # (outcome, summary, details) waiting for the last paint
        self._closing = False
        self._preview_token = 0
        self.history = History()
        self._painter = BandPainter()
        self._last_refresh = 0.0
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self._refresh)
        self._painter.painted.connect(self._on_painted)
        self._thread, self._worker = start_worker(self._client_factory())
        self._worker.state_changed.connect(self._on_state)
        self._worker.styles_listed.connect(self.styles_changed)
        self._worker.style_added.connect(self._on_style_added)
        self._worker.request_failed.connect(self._on_request_failed)
        self._worker.task_event.connect(self._on_task_event)
        self._worker.frame_event.connect(self._on_frame_event)
        self._worker.frame_wanted.connect(self._on_frame_wanted)
        self._worker.batch_finished.connect(self._on_batch_finished)
        self._worker.preview_event.connect(self._on_preview_event)
        notifier = Krita.instance().notifier()
        notifier.imageClosed.connect(self._check_document_open)
        notifier.viewClosed.connect(self._check_document_open)
        notifier.applicationClosing.connect(self.shutdown)
        self.close_watcher = CloseWatcher(self)   # the extension has it watch each main window
        self.close_watcher.closing.connect(self._window_closing)

    # ---- configuration and engine state -------------------------------------------------
    def configure(self, endpoint=None, autostart=True, engine_command=None, start_timeout=30.0):
        """Which engine to use (None: $NEURAL_STYLE_ENDPOINT, then the per-user default)."""
        self._config = {"endpoint": endpoint, "autostart": autostart, "engine_command": engine_command,
                        "start_timeout": start_timeout}
        self._on_state(*NOT_STARTED)
        self._worker.reconfigure(self._client_factory())

    @property
    def endpoint(self):
        return self._config["endpoint"]

    def _client_factory(self):
        config = dict(self._config)

        def make_client(autostart=None):   # runs in the worker thread
            from .shared.client import Client
            kwargs = {"endpoint": config["endpoint"], "start_timeout": config["start_timeout"],
                      "autostart": config["autostart"] if autostart is None else autostart}
            if autostart is False:
                kwargs["connect_timeout"] = 1.0
            if config["engine_command"] is not None:
                kwargs["engine_command"] = config["engine_command"]
            kwargs["idle_timeout"] = ON_DEMAND_IDLE_TIMEOUT_S    # engines started on demand end by themselves
            return Client(**kwargs)
        return make_client

    def connect_engine(self):
        self._worker.post("connect")

    def refresh_styles(self, start=True):
        """List the library; with start=False only if an engine is already running (the docker
        opening is not a request: it must not start an engine)."""
        self._worker.post("list_styles", {"start": start})

    def _on_state(self, state, detail):
        self.state = (state, detail)
        self.state_changed.emit(state, detail)

    def _on_request_failed(self, name, summary, details):
        self.details = details
        self.failure.emit(summary, details)

    # ---- the style library ---------------------------------------------------------------
    def save_layer_as_style(self, node, name):
        """Add a layer's pixels to the engine's style library under `name`."""
        try:
            rect = node_rect(node)
            if rect.width <= 0 or rect.height <= 0:
                raise ApplyError("Layer \"%s\" is empty: there is nothing to save as a style." % node.name())
            pixels = read_layer(node, rect).to_pixels()
        except (ApplyError, UnsupportedLayer) as error:
            self.message.emit(str(error))
            return False
        self._worker.post("add_style", {"pixels": pixels, "name": name})
        return True

    def _on_style_added(self, info):
        self.message.emit("Saved the style to the library.")
        self.refresh_styles()

    # ---- Apply / Cancel --------------------------------------------------------------------
    def is_busy(self):
        return bool(self._jobs)

    def apply(self, document, nodes, style, settings, all_frames=True):
        """Stylize `nodes` of `document`; False (and `finished("error", why)`) when it cannot start.
        An animated paint layer gives an animated result layer, one frame per keyframe (with
        `all_frames`; without, its current frame gives a plain layer, as any other layer does).
        While a job runs, a second Apply only says so (`message`): the running job keeps its Cancel."""
        if self._closing:
            return False
        if self.is_busy():
            self.message.emit("A Neural Style job is still running: wait for it or press Cancel.")
            return False
        self.details = ""
        try:
            options = to_options(settings)
            tasks, jobs = self._prepare(document, nodes, style, all_frames)
        except OptionError as error:
            self.finished.emit("error", option_error_text(error))
            return False
        except (ApplyError, UnsupportedLayer) as error:
            self.finished.emit("error", str(error))
            return False
        for job in jobs:   # only now that every layer could be read: nothing to undo on a refusal
            if job.times is None:
                job.source.parentNode().addChildNode(job.result, job.source)
        self._add_frame_results(document, jobs, lambda node: result_layer_name(node.name(), style.name))
        self._document, self._jobs = document, jobs
        self._applied = (style, settings)
        self.progress.emit(0.0, "Starting…")
        self._worker.post("run", (tasks, options))
        return True

    def _prepare(self, document, nodes, style, all_frames=True):
        if document is None:
            raise ApplyError("Open an image first.")
        nodes = [node for node in nodes if node.type() not in MASK_TYPES]
        if not nodes:
            raise ApplyError("Select the layer(s) to stylize in the Layers docker.")
        styles = [style_ref(style)]
        tasks, jobs = [], []
        for node in nodes:
            framed = self._frame_job(document, node, styles, len(jobs), _LayerJob) if all_frames else None
            if framed is not None:
                tasks.append(framed[0])
                jobs.append(framed[1])
                continue
            rect, selection = layer_region(document, node)
            image = read_layer(node, rect)
            mask = None
            if selection is not None:
                mask = Pixels(rect.width, rect.height, 1, "u8",
                              bytes(selection.pixelData(rect.x, rect.y, rect.width, rect.height)))
            result = document.createNode(result_layer_name(node.name(), style.name), "paintlayer")
            if (result.colorModel(), result.colorDepth()) != (node.colorModel(), node.colorDepth()):
                result.setColorSpace(node.colorModel(), node.colorDepth(), node.colorProfile())
            job = _LayerJob(node, result, rect)
            tasks.append(Task(len(jobs), image, mask, styles))
            jobs.append(job)
        return tasks, jobs

    def cancel(self):
        """Stop the running Apply; result layers keep their last preview (empty ones are removed).

        A job that fails (engine error, engine gone) also keeps its last preview, renamed
        "<name> (incomplete)"; see _on_batch_finished.
        """
        if self.is_busy():
            self.progress.emit(-1.0, "Cancelling…")
        self._worker.cancel()

    def _window_closing(self, qwindow):
        """A window (maybe Krita) is closing: nothing more is painted into the job's document if it
        shows it, and the job is cancelled (see closing.py)."""
        if not self._closing and self._jobs and window_shows(qwindow, self._document):
            self._abandon_document("its window is closing")

    def _check_document_open(self, *args):
        if self._closing:
            return
        if self._jobs and not is_open(self._document):
            self._abandon_document("it was closed")

    def _abandon_document(self, why):
        log.info("the document of the running job: %s; cancelling, nothing more is painted", why)
        self._document = None
        self._painter.clear()
        self._refresh_timer.stop()
        self._worker.cancel()

    def _on_task_event(self, index, key, kind, header, data):
        with timed("a %s event" % kind):
            self._task_event(key, kind, header, data)

    def _task_event(self, key, kind, header, data):
        if self._closing or not self._jobs or key >= len(self._jobs):
            return
        job = self._jobs[key]
        job.started = True
        if kind == "progress":
            done = fraction(header, key, len(self._jobs))
            self.progress.emit(done, progress_text(header, job.source.name(), key, len(self._jobs)))
        if data is not None and kind in ("progress", "result") and is_open(self._document):
            self._painter.paint(key, job.result, job.rect, data, kind == "result")

    def _on_painted(self, key, final):
        if self._closing or key >= len(self._jobs) or not is_open(self._document):
            return
        job = self._jobs[key]
        job.painted = True
        job.final = job.final or final
        wait = self._last_refresh + REFRESH_INTERVAL_S - time.monotonic()
        if final:
            self._document.refreshProjection()
            self._last_refresh = time.monotonic()
        elif wait <= 0:
            self._refresh()
        elif not self._refresh_timer.isActive():
            self._refresh_timer.start(int(wait * 1000) + 1)
        self.layer_painted.emit(job.result, final)
        if self._finish is not None and not self.painting():
            self._finish_batch(*self._finish)

    def _refresh(self):
        """Show the painted pixels on the canvas. Krita's refreshProjection() recomposites the whole
        image before it returns (on a busy CPU that can take a good part of a second), so previews
        refresh the canvas at most every REFRESH_INTERVAL_S."""
        self._refresh_timer.stop()
        if not is_open(self._document):
            return
        if not self._document.tryBarrierLock():   # Krita is still updating: do not wait for it here
            self._refresh_timer.start(100)
            return
        self._document.unlock()
        with timed("refreshProjection"):
            self._document.refreshProjection()
        self._last_refresh = time.monotonic()

    def _on_batch_finished(self, outcome, summary, details):
        if self._closing:
            return
        if self.painting() and is_open(self._document):
            self._finish = (outcome, summary, details)   # the last picture is still being painted
            return
        self._finish_batch(outcome, summary, details)

    def _finish_batch(self, outcome, summary, details):
        self._finish = None
        self._painter.clear()
        self._refresh_timer.stop()
        jobs, document = self._jobs, self._document
        self._jobs, self._document = [], None
        kept = []
        if is_open(document):
            for job in jobs:
                if not job.painted:
                    job.result.remove()
                elif (outcome == "error" or job.times is not None) and not job.final:
                    # The job died after previews: keep the last one, named so that nobody takes it
                    # for a finished result (a cancelled job keeps its name: the artist chose to stop;
                    # not so an animated layer, whose frames not done are empty).
                    job.result.setName(incomplete_layer_name(job.result.name()))
                    kept.append(job.result.name())
            if jobs:
                document.setActiveNode(jobs[0].source)   # Apply again stylizes the source, not the result
            document.refreshProjection()
            if outcome == "done":
                style, settings = self._applied
                for job in jobs:
                    self.history.add(document, job.result, job.source.name(), style, settings)
                self.history_changed.emit()
        message = summary
        if outcome == "error":
            failed = [job for job in jobs if job.started and not job.final]
            # details is the engine's or the client's full message; Details shows it with the layer,
            # what was kept, and where the log is.
            self.details = explain(message=failure_text(details, failed[0].source.name() if failed else None,
                                                         kept)).details
            self.failure.emit(summary, self.details)
        self.progress.emit(1.0 if outcome == "done" else 0.0, message)
        self.finished.emit(outcome, message)

    # ---- the live preview -------------------------------------------------------------------
    def preview(self, document, node, style, settings):
        """Preview `settings` on `node` (cut to the selection) at ≈160 px; returns its token, whose
        pictures come as preview_changed(token, kind, picture). Raises ApplyError / OptionError /
        UnsupportedLayer (with one sentence) when it cannot start."""
        if document is None or node is None or node.type() in MASK_TYPES:
            raise ApplyError("Select a layer to preview.")
        options = to_options(settings)
        rect, selection = layer_region(document, node)
        step = step_for(rect.width, rect.height)
        rows = sampled_rows(rect.height, step)
        layer = read_layer(node, rect, rows)
        mask_rows = None
        if selection is not None:
            mask_rows = b"".join(bytes(selection.pixelData(rect.x, rect.y + row, rect.width, 1)) for row in rows)
        styles = [style_ref(style)]
        self._preview_token += 1
        self._worker.post_preview(PreviewTask(self._preview_token, layer, mask_rows, styles,
                                              preview_options(options, step), step))
        return self._preview_token

    def stop_preview(self):
        self._preview_token += 1
        self._worker.post_preview(None)

    def _on_preview_event(self, token, kind, picture):
        if not self._closing and token == self._preview_token:
            with timed("showing a preview"):
                self.preview_changed.emit(token, kind, picture)

    def shutdown(self):
        """Krita is closing: cancel the job, stop the worker thread, then close its client.

        From here on no slot touches Krita objects: documents are being destroyed, and signals the
        worker queued before it stopped may still be delivered.
        """
        if self._thread is None:
            return
        self._closing = True
        self._jobs, self._document = [], None
        self._painter.clear()
        self._worker.post_preview(None)
        self._worker.cancel()
        self._thread.quit()
        if self._thread.wait(10000):
            self._worker.close_client()   # the worker thread has ended: the client is ours now
            log.info("engine worker stopped")
        else:
            log.warning("the engine worker did not stop within 10 s")
        self._thread = None


_controller = None


def controller() -> Controller:
    global _controller
    if _controller is None:
        _controller = Controller()
    return _controller
