"""Krita side of a job: reads layers and the selection, creates result layers, paints previews.

One Controller per Krita process (controller()); the docker and the action are views on it and
scripts/tests drive it through apply(), cancel(), configure() and its signals. Krita objects are
only touched here, on the UI thread; the engine worker gets bytes.
"""

import logging
import os

from PyQt5.QtCore import QObject, pyqtSignal

from krita import Krita

from .pixels import UnsupportedLayer, transfer_of, wire_format
from .progress import failure_text, fraction, progress_text
from .region import Rect, incomplete_layer_name, job_region, result_layer_name, style_name_from_path
from .settings import option_error_text, to_options
from .shared.options import OptionError
from .shared.protocol import Pixels, StyleRef
from .worker import LayerBytes, Task, start_worker

log = logging.getLogger("neural_style")

MASK_TYPES = ("selectionmask", "transparencymask", "filtermask", "colorizemask", "transformmask")


class ApplyError(ValueError):
    """Apply cannot start; str() is one sentence for the artist."""


class StyleChoice:
    """What to stylize with: a library style, an image file, or a layer of an open document."""

    def __init__(self, kind, name, path=None, style_id=None, node=None):
        self.kind, self.name, self.path, self.style_id, self.node = kind, name, path, style_id, node

    @classmethod
    def file(cls, path, name=None):
        return cls("file", name or style_name_from_path(path), path=path)

    @classmethod
    def library(cls, style_id, name):
        return cls("library", name, style_id=style_id)

    @classmethod
    def layer(cls, node):
        return cls("layer", node.name(), node=node)


def node_rect(node) -> Rect:
    bounds = node.bounds()
    return Rect(bounds.x(), bounds.y(), bounds.width(), bounds.height())


def read_layer(node, rect: Rect) -> LayerBytes:
    """The layer's bytes in `rect` (converted later, by the worker); raises UnsupportedLayer."""
    wire_format(node.name(), node.colorModel(), node.colorDepth())
    return LayerBytes(bytes(node.pixelData(rect.x, rect.y, rect.width, rect.height)), rect.width, rect.height,
                      node.colorModel(), node.colorDepth(), transfer_of(node.colorProfile()))


def is_open(document) -> bool:
    return document is not None and any(document == other for other in Krita.instance().documents())


class _LayerJob:
    def __init__(self, source, result, rect):
        self.source, self.result, self.rect = source, result, rect
        self.started = False    # the engine sent an event for it
        self.painted = False    # a preview (or the result) is in the result layer
        self.final = False      # the result is in the result layer


class Controller(QObject):
    state_changed = pyqtSignal(str, str)      # "starting" | "connected" | "not running", detail
    styles_changed = pyqtSignal(list)         # library styles (dicts from client.list_styles())
    progress = pyqtSignal(float, str)         # 0..1 over the whole Apply, text with ETA
    layer_painted = pyqtSignal(object, bool)  # result Node, final
    finished = pyqtSignal(str, str)           # "done" | "cancelled" | "error", message
    message = pyqtSignal(str)                 # a non-job request failed or succeeded (one sentence)

    def __init__(self):
        super().__init__()
        self.state = ("not connected", "")
        self._config = {"endpoint": None, "autostart": True, "engine_command": None, "start_timeout": 30.0}
        self._document = None
        self._jobs = []
        self._closing = False
        self._thread, self._worker = start_worker(self._client_factory())
        self._worker.state_changed.connect(self._on_state)
        self._worker.styles_listed.connect(self.styles_changed)
        self._worker.style_added.connect(self._on_style_added)
        self._worker.request_failed.connect(lambda name, text: self.message.emit(text))
        self._worker.task_event.connect(self._on_task_event)
        self._worker.batch_finished.connect(self._on_batch_finished)
        notifier = Krita.instance().notifier()
        notifier.imageClosed.connect(self._check_document_open)
        notifier.viewClosed.connect(self._check_document_open)
        notifier.applicationClosing.connect(self.shutdown)

    # ---- configuration and engine state -------------------------------------------------
    def configure(self, endpoint=None, autostart=True, engine_command=None, start_timeout=30.0):
        """Which engine to use (None: $NEURAL_STYLE_ENDPOINT, then the per-user default)."""
        self._config = {"endpoint": endpoint, "autostart": autostart, "engine_command": engine_command,
                        "start_timeout": start_timeout}
        self.state = ("not connected", "")
        self._worker.reconfigure(self._client_factory())

    def _client_factory(self):
        config = dict(self._config)

        def make_client():   # runs in the worker thread
            from .shared.client import Client
            kwargs = {"endpoint": config["endpoint"], "autostart": config["autostart"],
                      "start_timeout": config["start_timeout"]}
            if config["engine_command"] is not None:
                kwargs["engine_command"] = config["engine_command"]
            return Client(**kwargs)
        return make_client

    def connect_engine(self):
        self._worker.post("connect")

    def refresh_styles(self):
        self._worker.post("list_styles")

    def _on_state(self, state, detail):
        self.state = (state, detail)
        self.state_changed.emit(state, detail)

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

    def apply(self, document, nodes, style, settings):
        """Stylize `nodes` of `document`; False (and `finished("error", why)`) when it cannot start."""
        if self._closing:
            return False
        try:
            if self.is_busy():
                raise ApplyError("A Neural Style job is still running: wait for it or press Cancel.")
            options = to_options(settings)
            tasks, jobs = self._prepare(document, nodes, style)
        except OptionError as error:
            self.finished.emit("error", option_error_text(error))
            return False
        except (ApplyError, UnsupportedLayer) as error:
            self.finished.emit("error", str(error))
            return False
        for job in jobs:   # only now that every layer could be read: nothing to undo on a refusal
            parent = job.source.parentNode()
            parent.addChildNode(job.result, job.source)
        self._document, self._jobs = document, jobs
        self.progress.emit(0.0, "Starting…")
        self._worker.post("run", (tasks, options))
        return True

    def _prepare(self, document, nodes, style):
        if document is None:
            raise ApplyError("Open an image first.")
        nodes = [node for node in nodes if node.type() not in MASK_TYPES]
        if not nodes:
            raise ApplyError("Select the layer(s) to stylize in the Layers docker.")
        styles = [self._style_ref(style)]
        canvas = Rect(0, 0, document.width(), document.height())
        selection = document.selection()
        selection_rect = None
        if selection is not None and selection.width() > 0 and selection.height() > 0:
            selection_rect = Rect(selection.x(), selection.y(), selection.width(), selection.height())
        tasks, jobs = [], []
        for node in nodes:
            rect = job_region(node_rect(node), canvas, selection_rect)   # the soft edge lies inside
            if rect is None:
                raise ApplyError("Layer \"%s\" has no pixels %s." % (
                    node.name(), "inside the selection" if selection_rect else "on the canvas"))
            image = read_layer(node, rect)
            mask = None
            if selection_rect is not None:
                mask = Pixels(rect.width, rect.height, 1, "u8",
                              bytes(selection.pixelData(rect.x, rect.y, rect.width, rect.height)))
            result = document.createNode(result_layer_name(node.name(), style.name), "paintlayer")
            if (result.colorModel(), result.colorDepth()) != (node.colorModel(), node.colorDepth()):
                result.setColorSpace(node.colorModel(), node.colorDepth(), node.colorProfile())
            job = _LayerJob(node, result, rect)
            tasks.append(Task(len(jobs), image, mask, styles))
            jobs.append(job)
        return tasks, jobs

    def _style_ref(self, style):
        if style is None:
            raise ApplyError("Choose a style first: a library style, an image file or a layer.")
        if style.kind == "library":
            return StyleRef.library(style.style_id)
        if style.kind == "file":
            if not style.path or not os.path.isfile(style.path):
                raise ApplyError("The style image \"%s\" does not exist." % (style.path or ""))
            return StyleRef.file(os.path.abspath(style.path))
        rect = node_rect(style.node)
        if rect.width <= 0 or rect.height <= 0:
            raise ApplyError("The style layer \"%s\" is empty." % style.node.name())
        return StyleRef.pixels(read_layer(style.node, rect).to_pixels(), name=style.node.name())

    def cancel(self):
        """Stop the running Apply; result layers keep their last preview (empty ones are removed).

        A job that fails (engine error, engine gone) also keeps its last preview, renamed
        "<name> (incomplete)"; see _on_batch_finished.
        """
        if self.is_busy():
            self.progress.emit(-1.0, "Cancelling…")
        self._worker.cancel()

    def _check_document_open(self, *args):
        if self._closing:
            return
        if self._jobs and not is_open(self._document):
            log.info("the document of the running job was closed: cancelling")
            self._document = None
            self._worker.cancel()

    def _on_task_event(self, index, key, kind, header, data):
        if self._closing or not self._jobs or key >= len(self._jobs):
            return
        job = self._jobs[key]
        job.started = True
        if kind == "progress":
            done = fraction(header, key, len(self._jobs))
            self.progress.emit(done, progress_text(header, job.source.name(), key, len(self._jobs)))
        if data is not None and kind in ("progress", "result"):
            self._paint(job, data, final=kind == "result")

    def _paint(self, job, data, final):
        if not is_open(self._document):
            self._check_document_open()
            return
        rect = job.rect
        job.result.setPixelData(data, rect.x, rect.y, rect.width, rect.height)
        job.painted = True
        job.final = job.final or final
        self._document.refreshProjection()
        self.layer_painted.emit(job.result, final)

    def _on_batch_finished(self, outcome, message):
        if self._closing:
            return
        jobs, document = self._jobs, self._document
        self._jobs, self._document = [], None
        kept = []
        if is_open(document):
            for job in jobs:
                if not job.painted:
                    job.result.remove()
                elif outcome == "error" and not job.final:
                    # The job died after previews: keep the last one, named so that nobody takes it
                    # for a finished result (a cancelled job keeps its name: the artist chose to stop).
                    job.result.setName(incomplete_layer_name(job.result.name()))
                    kept.append(job.result.name())
            document.refreshProjection()
        if outcome == "error":
            failed = [job for job in jobs if job.started and not job.final]
            message = failure_text(message, failed[0].source.name() if failed else None, kept)
        self.progress.emit(1.0 if outcome == "done" else 0.0, message)
        self.finished.emit(outcome, message)

    def shutdown(self):
        """Krita is closing: cancel the job, stop the worker thread, then close its client.

        From here on no slot touches Krita objects: documents are being destroyed, and signals the
        worker queued before it stopped may still be delivered.
        """
        if self._thread is None:
            return
        self._closing = True
        self._jobs, self._document = [], None
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
