"""The engine worker: owns the one Client, in its own QThread, and talks to the UI by signals.

Requests are queued under a lock and a signal wakes the worker thread, which then runs every job
(Apply's layers, one after another, and the live preview beside them) in one polling loop, so a
preview can be sent while a full job runs. The only call that crosses threads directly is
cancel(), which sets a flag and calls job.cancel() (the one client call that is safe from another
thread). No Krita API here: Krita objects are used only on the UI thread, the worker gets plain
bytes and does every conversion (channel order, half floats, preview columns, display pixels).
"""

import collections
import logging
import threading
import time
import traceback

from PyQt5.QtCore import QObject, QThread, QTimer, pyqtSignal, pyqtSlot

from .painter import PICTURE_INTERVAL_S
from .payloads import FrameTask, display_picture, resolve_styles
from .preview import pick_columns
from .shared.client import ClientError, EngineLost, EngineUnavailable, ProtocolMismatch
from .shared.explain import explain
from .shared.protocol import Pixels
from .worker_frames import POLL_S, FrameSteps, FrameSupply, cancel_running_frame, start_sequence

log = logging.getLogger("neural_style")

WATCH_INTERVAL_MS = 1500  # how often an idle worker checks that its engine is still there
ALIVE_FOR_S = 1.0        # an engine heard from this recently is not asked again before a submit
CONNECTION_ERRORS = (EngineUnavailable, EngineLost, ProtocolMismatch)
STOPPED = "it stopped; it starts again on the next Apply or Preview"
_STOP_PREVIEW = object()


class _Batch:
    def __init__(self, tasks, options):
        self.tasks, self.options, self.index, self.job = tasks, options, 0, None
        self.picture_at = float("-inf")     # when the last progress picture was converted


class EngineWorker(FrameSteps, QObject):
    state_changed = pyqtSignal(str, str)          # "starting" | "connected" | "not running", detail
    styles_listed = pyqtSignal(list)              # [dict] from client.list_styles()
    style_added = pyqtSignal(object)              # what client.add_style returned
    request_failed = pyqtSignal(str, str, str)    # request name, summary, details
    task_event = pyqtSignal(int, object, str, dict, object)  # index, key, event type, header, Krita bytes|None
    frame_wanted = pyqtSignal(object, int)        # key, frame index: the UI thread answers with give_frame()
    frame_event = pyqtSignal(object, int, int, str, dict, object, str)  # key, frame, count, type, header, bytes, text
    batch_finished = pyqtSignal(str, str, str)    # "done" | "cancelled" | "error", summary, the full message
    preview_event = pyqtSignal(object, str, object)  # token, "source"|"progress"|"result"|"error", picture|texts

    _wake = pyqtSignal()

    def __init__(self, client_factory):
        super().__init__()
        self._client_factory = client_factory     # (autostart=None) -> Client, called in the worker thread
        self._client = None
        self._alive_at = 0.0
        self._lock = threading.Lock()
        self._queue = collections.deque()
        self._pending_preview = None
        self._batch = None
        self._preview = None                      # (PreviewTask, job)
        self._job = None
        self._cancelled = False
        self._driving = False
        self._watchdog = None
        self._frames = FrameSupply(self.frame_wanted.emit, self._is_cancelled)
        self._wake.connect(self._on_wake)         # queued: the worker lives in another thread

    # ---- called from the UI thread -------------------------------------------------------
    def post(self, name, payload=None):
        """Queue a request ("connect", "list_styles", "add_style", "run", "close") for the worker."""
        with self._lock:
            if name == "run":
                self._cancelled = False
            self._queue.append((name, payload))
        self._wake.emit()

    def post_preview(self, task):
        """Preview `task` (a PreviewTask), replacing any older one; None stops the preview."""
        with self._lock:
            self._pending_preview = task if task is not None else _STOP_PREVIEW
        self._wake.emit()

    def cancel(self):
        with self._lock:
            self._cancelled = True
            job = self._job
        if hasattr(job, "progress_text"):
            cancel_running_frame(job)   # the sequence itself is ended by the worker thread (see _step_frames)
        elif job is not None:
            job.cancel()

    def close_client(self):
        """Only once the worker thread has stopped (Krita is closing)."""
        self._close_client()

    def reconfigure(self, client_factory):
        """Use another client factory from the next request on (the old client is closed first)."""
        self.post("close")
        self.post("_factory", client_factory)

    # ---- the worker thread ---------------------------------------------------------------
    @pyqtSlot()
    def start_watchdog(self):
        self._watchdog = QTimer()
        self._watchdog.setInterval(WATCH_INTERVAL_MS)
        self._watchdog.timeout.connect(self._watch)
        self._watchdog.start()

    @pyqtSlot()
    def _watch(self):
        """Notice a stopped or crashed engine while idle, so the state line says so and the next
        request starts a fresh one at once (instead of first waiting for the dead one)."""
        if self._driving or self._client is None or time.monotonic() - self._alive_at < ALIVE_FOR_S:
            return
        if self._engine_running(self._client):
            self._alive_at = time.monotonic()
        else:
            log.info("the engine stopped answering while idle")
            self._drop_client(STOPPED)

    @pyqtSlot()
    def _on_wake(self):
        if self._driving:
            return
        self._driving = True
        try:
            self._drive()
        finally:
            self._driving = False

    def _drive(self):
        while True:
            with self._lock:
                request = None
                if self._queue and not (self._batch is not None and self._queue[0][0] == "run"):
                    request = self._queue.popleft()
                preview, self._pending_preview = self._pending_preview, None
                waiting = bool(self._queue)
            if request is not None:
                self._handle(*request)
            if preview is not None:
                self._start_preview(preview)
            if self._batch is None and self._preview is None:
                if request is None and preview is None and not waiting:
                    return
                continue
            self._step()

    def _handle(self, name, payload):
        try:
            if name == "_factory":
                self._client_factory = payload
            elif name == "close":
                self._close_client()
            elif name == "connect":
                self._ensure_client(check=True)
            elif name == "list_styles":
                if (payload or {}).get("start", True) or self._client is not None or self._probe():
                    self.styles_listed.emit(list(self._ensure_client(check=True).list_styles()))
            elif name == "add_style":
                self.style_added.emit(self._ensure_client(check=True).add_style(**payload))
            elif name == "run":
                self._batch = _Batch(*payload)
                self._submit_task()
        except Exception as error:   # every client failure has a readable str()
            summary, details = self._failure(name, error)
            if name == "run":
                self._end_batch("error", summary, str(error) or type(error).__name__)
            else:
                self.request_failed.emit(name, summary, details)

    def _failure(self, name, error):
        """(summary, details) for a failed request; a lost engine also drops the client."""
        log.warning("%s failed: %s\n%s", name, error, traceback.format_exc())
        if isinstance(error, CONNECTION_ERRORS):
            self._drop_client(STOPPED if isinstance(error, EngineLost) else "it could not be reached")
        return tuple(explain(error=error))

    # ---- the client and the engine's life ------------------------------------------------
    def _ensure_client(self, check=False):
        if self._client is not None and check and time.monotonic() - self._alive_at > ALIVE_FOR_S:
            if not self._engine_running(self._client):
                log.info("the engine stopped since it last answered: starting a fresh one")
                self._drop_client(STOPPED)
        if self._client is None:
            self.state_changed.emit("starting", "connecting to the engine…")
            client = self._client_factory()
            try:
                welcome = client.connect()
            except Exception:
                client.close()
                raise
            self._client = client
            self._alive_at = time.monotonic()
            self.state_changed.emit("connected", str(welcome.get("device", "")))
        return self._client

    def _engine_running(self, client):
        try:
            return bool(client.engine_running(timeout=1.0))
        except ClientError:
            return False

    def _probe(self):
        """Is an engine answering (without starting one)?"""
        probe = self._client_factory(autostart=False)
        try:
            probe.connect()
            return True
        except ClientError:
            return False
        finally:
            probe.close()

    def _drop_client(self, detail):
        self._close_client()
        self.state_changed.emit("not running", detail)

    def _close_client(self):
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.warning("closing the client failed:\n%s", traceback.format_exc())

    def _submit(self, priority, **kwargs):
        client = self._ensure_client(check=True)
        try:
            job = client.submit(priority=priority, **kwargs)
        except EngineLost:
            # The engine died after it last answered and never saw this job: start a fresh one.
            log.info("the engine was lost before the job was accepted: starting a fresh one")
            self._drop_client(STOPPED)
            job = self._ensure_client().submit(priority=priority, **kwargs)
        self._alive_at = time.monotonic()
        return job

    # ---- Apply: the layers, one after another ------------------------------------------------
    def _submit_task(self):
        batch = self._batch
        with self._lock:
            cancelled = self._cancelled
        if cancelled:
            self._end_batch("cancelled", "Cancelled.", "")
            return
        task = batch.tasks[batch.index]
        if isinstance(task, FrameTask):
            self._frames.clear()
            batch.job = start_sequence(self._ensure_client(check=True), task, self._frames,
                                       resolve_styles(task.styles), batch.options)
        else:
            batch.job = self._submit("normal", image=task.layer.to_pixels(), mask=task.mask,
                                     styles=resolve_styles(task.styles), options=batch.options)
        with self._lock:
            self._job = batch.job
            cancel_now = self._cancelled
        if cancel_now:
            batch.job.cancel()

    def _step(self):
        wait = POLL_S
        if self._batch is not None:
            try:
                self._step_batch()
            except Exception as error:
                summary, details = self._failure("run", error)
                self._end_batch("error", summary, str(error) or type(error).__name__)
                if isinstance(error, CONNECTION_ERRORS):
                    self._end_preview("error", (summary, details))
            wait = 0.0
        if self._preview is not None:
            try:
                self._step_preview(wait)
            except Exception as error:
                self._end_preview("error", self._failure("preview", error))

    def _step_batch(self):
        batch = self._batch
        if isinstance(batch.tasks[batch.index], FrameTask):
            return self._step_frames(batch, batch.tasks[batch.index])
        event = batch.job.poll(POLL_S)
        if event is None:
            if batch.job.done:
                self._end_batch("cancelled", "Cancelled.", "")
            return
        now = self._alive_at = time.monotonic()
        task = batch.tasks[batch.index]
        data = None
        # The painter shows a progress picture at most every PICTURE_INTERVAL_S: converting the ones
        # between would only take Python's lock from Krita's UI thread.
        progress = event.type == "progress"
        if event.pixels is not None and not (progress and now - batch.picture_at < PICTURE_INTERVAL_S):
            data = task.layer.from_pixels(event.pixels)
            batch.picture_at = now if progress else float("-inf")
        header = dict(event.header or {})
        self.task_event.emit(batch.index, task.key, event.type, header, data)
        if event.type == "result":
            self._next_task()
        elif event.type == "cancelled":
            self._end_batch("cancelled", "Cancelled.", "")
        elif event.type == "error":
            self._end_with_error(header)

    def _next_task(self):
        batch = self._batch
        batch.index += 1
        with self._lock:
            self._job = None
        if batch.index < len(batch.tasks):
            self._submit_task()
        else:
            self._end_batch("done", "Done.", "")

    def _end_with_error(self, header):
        message = str(header.get("message") or "the engine reported an error")
        self._end_batch("error", explain(code=header.get("code"), message=message).summary, message)

    def _end_batch(self, outcome, summary, details):
        self._batch = None
        with self._lock:
            self._job = None
        self.batch_finished.emit(outcome, summary, details)

    # ---- the live preview ----------------------------------------------------------------
    def _start_preview(self, request):
        old, self._preview = self._preview, None
        if old is not None:
            old[1].cancel()      # the engine also supersedes it; this stops one that has no priorities
        if request is _STOP_PREVIEW:
            return
        try:
            small = request.layer.columns(request.step)
            mask = None
            if request.mask_rows is not None:
                mask = Pixels(small.width, small.height, 1, "u8",
                              pick_columns(request.mask_rows, request.layer.width, small.height, 1, request.step))
            image = small.to_pixels()
            self.preview_event.emit(request.token, "source", display_picture(image))
            job = self._submit("preview", image=image, mask=mask, styles=resolve_styles(request.styles),
                               options=request.options)
            self._preview = (request, job)
        except Exception as error:
            self.preview_event.emit(request.token, "error", self._failure("preview", error))

    def _step_preview(self, wait):
        request, job = self._preview
        event = job.poll(wait)
        while event is not None:
            self._alive_at = time.monotonic()
            if event.pixels is not None and event.type in ("progress", "result"):
                self.preview_event.emit(request.token, event.type, display_picture(event.pixels))
            if event.type == "error":
                header = event.header or {}
                self._end_preview("error", tuple(explain(code=header.get("code"),
                                                         message=str(header.get("message") or ""))))
                return
            if event.is_final:
                self._end_preview(event.type, None)
                return
            event = job.poll(0)
        if job.done:
            self._end_preview("cancelled", None)

    def _end_preview(self, kind, texts):
        if self._preview is None:
            return
        request, _ = self._preview
        self._preview = None
        if kind != "result":
            self.preview_event.emit(request.token, kind, texts)


def start_worker(client_factory):
    """(thread, worker): a running QThread with an EngineWorker living in it."""
    thread = QThread()
    thread.setObjectName("neural_style_engine")
    worker = EngineWorker(client_factory)
    worker.moveToThread(thread)
    thread.started.connect(worker.start_watchdog)
    thread.start()
    return thread, worker
