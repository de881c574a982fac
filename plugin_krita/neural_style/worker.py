"""The engine worker: owns the one Client, in its own QThread, and talks to the UI by signals.

Requests are queued signals (so they run in the worker thread, one after another); the only call
that crosses threads directly is cancel(), which only sets a flag and calls job.cancel() (the one
client call that is safe from another thread). No Krita API here: Krita objects are used only on
the UI thread, the worker gets plain bytes.
"""

import logging
import threading
import traceback

from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from .pixels import krita_to_wire, wire_format, wire_to_krita
from .shared.client import EngineLost, EngineUnavailable, ProtocolMismatch
from .shared.protocol import Pixels

log = logging.getLogger("neural_style")


class Task:
    """One layer to stylize: its Krita bytes, mask and style refs (read on the UI thread)."""

    def __init__(self, key, layer, mask, styles):
        self.key = key          # the controller's handle for the result layer
        self.layer = layer      # LayerBytes
        self.mask = mask        # Pixels (1 channel u8) or None
        self.styles = styles    # [StyleRef]


class LayerBytes:
    """A rectangle of a layer as Krita stores it; the worker converts it to and from the protocol."""

    def __init__(self, data, width, height, color_model, color_depth, transfer):
        self.data, self.width, self.height = data, width, height
        self.color_model, self.color_depth, self.transfer = color_model, color_depth, transfer

    def to_pixels(self):
        channels, dtype = wire_format("", self.color_model, self.color_depth)
        return Pixels(self.width, self.height, channels, dtype,
                      krita_to_wire(self.data, self.color_model, self.color_depth), self.transfer)

    def from_pixels(self, pixels):
        """Krita bytes of an engine image of this rectangle, or None if its size is wrong."""
        if (pixels.width, pixels.height) != (self.width, self.height):
            log.warning("the engine sent %dx%d for a %dx%d region; ignored",
                        pixels.width, pixels.height, self.width, self.height)
            return None
        return wire_to_krita(pixels.data, self.color_model, self.color_depth)


class EngineWorker(QObject):
    state_changed = pyqtSignal(str, str)          # "starting" | "connected" | "not running", detail
    styles_listed = pyqtSignal(list)              # [dict] from client.list_styles()
    style_added = pyqtSignal(object)              # what client.add_style returned
    request_failed = pyqtSignal(str, str)         # request name, message
    task_event = pyqtSignal(int, object, str, dict, object)  # index, key, event type, header, Krita bytes|None
    batch_finished = pyqtSignal(str, str)         # "done" | "cancelled" | "error", message

    _request = pyqtSignal(str, object)

    def __init__(self, client_factory):
        super().__init__()
        self._client_factory = client_factory     # () -> Client, called in the worker thread
        self._client = None
        self._lock = threading.Lock()
        self._job = None
        self._cancelled = False
        self._request.connect(self._handle)       # queued: the worker lives in another thread

    # ---- called from the UI thread -------------------------------------------------------
    def post(self, name, payload=None):
        """Queue a request ("connect", "list_styles", "add_style", "run", "close") for the worker."""
        if name == "run":
            with self._lock:
                self._cancelled = False
        self._request.emit(name, payload)

    def cancel(self):
        with self._lock:
            self._cancelled = True
            job = self._job
        if job is not None:
            job.cancel()

    def close_client(self):
        """Only once the worker thread has stopped (Krita is closing)."""
        self._close_client()

    def reconfigure(self, client_factory):
        """Use another client factory from the next request on (the old client is closed first)."""
        self._request.emit("close", None)
        self._request.emit("_factory", client_factory)

    # ---- the worker thread ---------------------------------------------------------------
    @pyqtSlot(str, object)
    def _handle(self, name, payload):
        try:
            if name == "_factory":
                self._client_factory = payload
            elif name == "close":
                self._close_client()
            elif name == "connect":
                self._ensure_client()
            elif name == "list_styles":
                self.styles_listed.emit(list(self._ensure_client().list_styles()))
            elif name == "add_style":
                self.style_added.emit(self._ensure_client().add_style(**payload))
            elif name == "run":
                self._run(*payload)
        except Exception as error:   # every client failure has a readable str()
            message = str(error) or type(error).__name__
            log.warning("%s failed: %s\n%s", name, message, traceback.format_exc())
            if isinstance(error, (EngineUnavailable, EngineLost, ProtocolMismatch)):
                self._close_client()
                self.state_changed.emit("not running", message)
            if name == "run":
                self.batch_finished.emit("error", message)
            else:
                self.request_failed.emit(name, message)

    def _ensure_client(self):
        if self._client is None:
            self.state_changed.emit("starting", "connecting to the engine…")
            client = self._client_factory()
            try:
                welcome = client.connect()
            except Exception:
                client.close()
                raise
            self._client = client
            self.state_changed.emit("connected", str(welcome.get("device", "")))
        return self._client

    def _close_client(self):
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.warning("closing the client failed:\n%s", traceback.format_exc())

    def _run(self, tasks, options):
        client = self._ensure_client()
        for index, task in enumerate(tasks):
            with self._lock:
                if self._cancelled:
                    self.batch_finished.emit("cancelled", "Cancelled.")
                    return
            job = client.submit(image=task.layer.to_pixels(), mask=task.mask, styles=task.styles, options=options)
            with self._lock:
                self._job = job
                cancel_now = self._cancelled
            if cancel_now:
                job.cancel()
            outcome = None
            try:
                for event in job.events():
                    data = task.layer.from_pixels(event.pixels) if event.pixels is not None else None
                    self.task_event.emit(index, task.key, event.type, dict(event.header or {}), data)
                    if event.type in ("result", "error", "cancelled"):
                        outcome = event
            finally:
                with self._lock:
                    self._job = None
            if outcome is None or outcome.type == "cancelled":
                self.batch_finished.emit("cancelled", "Cancelled.")
                return
            if outcome.type == "error":
                header = outcome.header or {}
                self.batch_finished.emit("error", str(header.get("message") or "the engine reported an error"))
                return
        self.batch_finished.emit("done", "Done.")


def start_worker(client_factory):
    """(thread, worker): a running QThread with an EngineWorker living in it."""
    thread = QThread()
    thread.setObjectName("neural_style_engine")
    worker = EngineWorker(client_factory)
    worker.moveToThread(thread)
    thread.start()
    return thread, worker
