"""The engine's I/O loop: one ROUTER socket, validation on arrival, heartbeats, jobs and library calls.

Threads: this loop (the only user of the ROUTER socket), the job worker (owns the device) and a
library worker (slow style library calls and a submit's style file checks, so they never stall the
loop). The workers hand their messages back through an inproc PUSH/PULL "outbox".

Nothing is dropped silently (outbox.Sender): a gone client's jobs are cancelled at once, and what a
full pipe refuses is sent again, but for progress and heartbeats (the next one says the same).
"""

import itertools
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import zmq

from shared import endpoints
from shared import protocol as p
from shared import validation

from .. import __version__
from ..core.errors import EngineError
from .outbox import PROGRESS_MARK, Outbox, Sender
from .jobs import Job, JobQueue, QueueFull, Worker, end_message, shutdown_message
from .library_handlers import LibraryHandlers

log = logging.getLogger(__name__)

FRAMED_TYPES = (p.SUBMIT, p.STYLE_ADD)        # the only client messages that may carry data frames
MAX_DRAIN = 64                                # messages handled per wake-up before looking at the outbox
WORKER_JOIN_S = 30.0                          # at shutdown: how long the running job may take to stop
CLOSE_LINGER_MS = 2000                        # at shutdown: how long the last messages may take to leave
CHECKED_MARK = b"checked:"                    # outbox marker: a submit's style files were checked
IDLE_TYPES = (p.HEARTBEAT, p.HELLO, p.BYE, p.STATUS)   # messages that do not keep an idle engine alive


class EngineServer:
    def __init__(self, endpoint: str, run_job: Callable, limits: Optional[Dict[str, Any]] = None,
                 device: str = "CPU", library: Any = None, curve: Optional[Dict[str, Any]] = None,
                 context: Optional[zmq.Context] = None, log_path: str = "", idle_timeout: float = 0.0):
        self.endpoint = endpoint
        self.limits = dict(p.DEFAULT_LIMITS, **(limits or {}))
        self.device = device
        self.library = library
        self.local = endpoints.is_loopback(endpoint)
        self.log_path = log_path
        self.context = context or zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes())
        self.router.setsockopt(zmq.SNDHWM, 10000)
        self.router.setsockopt(zmq.RCVHWM, 1000)
        self._authenticator = None
        if curve is not None:
            self._setup_curve(curve)
        self.outbox = Outbox(self.context)
        self.queue = JobQueue(int(self.limits["max_queue"]), int(self.limits["max_queued_bytes"]))
        self.worker = Worker(self.queue, run_job, self._emit, log_path, lambda: bool(self.clients))
        self.library_handlers = LibraryHandlers(library, self.limits, self._reply)
        self.clients: Dict[bytes, float] = {}         # identity -> last time heard
        self.jobs: Dict[int, Job] = {}                # unfinished jobs by id
        self.checking: Dict[int, tuple] = {}          # job id -> (req, job) while its style files are checked
        self.sender = Sender(self.router, lambda identity: identity in self.clients, self._client_gone)
        self.idle_timeout = float(idle_timeout)       # 0: never stop for idleness
        self.last_work = time.monotonic()
        self._job_ids = itertools.count(1)
        self._stop = threading.Event()
        self.started = time.monotonic()

    # ------------------------------------------------------------------------------ set-up

    def max_message_bytes(self) -> int:
        """libzmq's MAXMSGSIZE (per frame): a peer sending a larger frame is disconnected unread."""
        return max(p.max_frame_bytes(self.limits), int(self.limits["max_header_bytes"])) + 1024

    def _setup_curve(self, curve: Dict[str, Any]) -> None:
        from zmq.auth.thread import ThreadAuthenticator
        self._authenticator = ThreadAuthenticator(self.context)
        self._authenticator.start()
        self._authenticator.configure_curve(domain="*", location=curve["authorized"])
        self.router.curve_server = True
        self.router.curve_publickey = curve["public"]
        self.router.curve_secretkey = curve["secret"]

    def bind(self) -> None:
        path = endpoints.ipc_path(self.endpoint)
        old_umask = os.umask(0o077) if path else None     # the socket file is born 0600, no window
        try:
            self.router.bind(self.endpoint)
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        if path:
            os.chmod(path, 0o600)

    def stop(self) -> None:
        """Ask the loop to end (safe from signal handlers and other threads)."""
        self._stop.set()

    # ------------------------------------------------------------------------------ the loop

    def serve(self) -> None:
        self.worker.start()
        self.library_handlers.start()
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.outbox.pull, zmq.POLLIN)
        interval = float(self.limits["heartbeat_interval_s"])
        next_beat = time.monotonic()
        log.info("engine %s serving on %s (device %s)", __version__, self.endpoint, self.device)
        try:
            while not self._stop.is_set():
                try:
                    ready = dict(poller.poll(int(min(interval, 0.25) * 1000)))
                except zmq.ZMQError as error:
                    if error.errno == getattr(zmq, "EINTR", 4):
                        continue
                    raise
                if self.outbox.pull in ready:
                    self._forward_outbox()
                if self.router in ready:
                    self._drain_router()
                if self.sender.backlog:
                    self._send_backlog()
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + interval
                    self._heartbeats(now)
                    self._stop_if_idle(now)
        finally:
            self._shutdown()

    def _stop_if_idle(self, now: float) -> None:
        if self.idle_timeout <= 0 or self.jobs or self.checking or not self.queue.idle():
            return
        if now - self.last_work >= self.idle_timeout and self.library_handlers.worker.tasks.empty():
            log.info("no work for %.0f s (--idle-timeout): stopping", now - self.last_work)
            self.stop()

    def _drain_router(self) -> None:
        for _ in range(MAX_DRAIN):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue      # cannot happen on a ROUTER (identity + at least one frame), but never trust it
            identity = frames[0].bytes
            try:
                self._handle(identity, frames[1:])
            except Exception:  # a bug must not take the engine down; the client gets an answer
                log.exception("unexpected failure handling a message")
                self._send(identity, p.error_message(p.E_INTERNAL, "the engine failed to handle this message; "
                                                     "details are in %s" % (self.log_path or "the engine log")))

    def _forward_outbox(self, most: int = MAX_DRAIN) -> None:
        for _ in range(most):
            try:
                frames = self.outbox.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            identity, marker = frames[0].bytes, frames[1].bytes
            if marker.startswith(CHECKED_MARK):
                self._checked(identity, int(marker[len(CHECKED_MARK):]), p.decode_header(frames[2].bytes))
                continue
            if marker and marker != PROGRESS_MARK:
                self.jobs.pop(int(marker), None)
                self.last_work = time.monotonic()
            if identity in self.clients:
                self._send_frames(identity, frames[2:], droppable=marker == PROGRESS_MARK)
            elif marker and marker != PROGRESS_MARK:
                log.info("job %s ended after its client was gone: its last message is not sent", marker.decode())

    def _heartbeats(self, now: float) -> None:
        timeout = float(self.limits["client_timeout_s"])
        beat = p.pack_header(p.message(p.HEARTBEAT))
        for identity, heard in list(self.clients.items()):
            if now - heard > timeout:
                log.info("client %s silent for %.1f s: cancelling its jobs", identity.hex(), now - heard)
                self._forget_client(identity, p.E_CLIENT_GONE)
            else:
                self._send_frames(identity, [beat], droppable=True)

    # ------------------------------------------------------------------------------ sending

    def _send_frames(self, identity: bytes, frames: List[Any], droppable: bool = False) -> bool:
        return self.sender.send(identity, frames, droppable)

    def _send_backlog(self) -> None:
        self.sender.send_backlog()

    def _client_gone(self, identity: bytes) -> None:
        if identity in self.clients:
            log.info("client %s disconnected: cancelling its jobs", identity.hex())
            self._forget_client(identity, p.E_CLIENT_GONE)

    def _send(self, identity: bytes, header: Dict[str, Any], frames: Any = ()) -> None:
        self._send_frames(identity, [p.pack_header(header)] + list(frames))

    def _emit(self, job: Job, header: Dict[str, Any], frames: Any = ()) -> None:
        """From the worker: a job's message; final ones also retire the job."""
        final = header.get("type") in p.JOB_END_TYPES
        marker = str(job.id).encode() if final else PROGRESS_MARK if header.get("type") == p.PROGRESS else b""
        self.outbox.send_marked(job.client, marker, header, frames)

    def _reply(self, identity: bytes, req: Any, header: Dict[str, Any], frames: Any = ()) -> None:
        """From the library thread: the answer to request `req`."""
        if req is not None:
            header["req"] = req
        self.outbox.send(identity, None, header, frames)

    # ------------------------------------------------------------------------------ handling

    def _handle(self, identity: bytes, frames: List[Any]) -> None:
        req = None
        try:
            header = p.decode_header(frames[0].bytes, int(self.limits["max_header_bytes"]))
            req = header.get("req")
            if req is not None and (isinstance(req, bool) or not isinstance(req, (int, str))
                                    or (isinstance(req, str) and len(req) > 64)
                                    or (isinstance(req, int) and not -2**63 <= req < 2**64)):
                req = None
                raise p.ProtocolError(p.E_INVALID, "req must be an integer or a short string", "req")
            self.clients[identity] = time.monotonic()
            msg_type = header["type"]
            if msg_type not in IDLE_TYPES:
                self.last_work = self.clients[identity]
            handler = self._handlers().get(msg_type)
            if handler is None:
                raise p.ProtocolError(p.E_UNKNOWN_TYPE, "unknown message type %r (known: %s)"
                                      % (msg_type[:40], ", ".join(p.CLIENT_TYPES)), "type")
            if len(frames) > 1 and msg_type not in FRAMED_TYPES:
                raise p.ProtocolError(p.E_FRAME, "a %s message carries no data frames, got %d"
                                      % (msg_type, len(frames) - 1))
            if len(frames) > int(self.limits["max_frames"]) + 1:
                raise p.ProtocolError(p.E_TOO_LARGE, "the message has %d data frames, more than the limit of %d"
                                      % (len(frames) - 1, self.limits["max_frames"]))
            handler(identity, header, frames, req)
        except p.ProtocolError as error:
            self._send(identity, p.error_message(error.code, error.message, error.field, req=req))
        except EngineError as error:
            self._send(identity, p.error_message(error.code, error.message, error.field, req=req))

    def _handlers(self) -> Dict[str, Callable]:
        return {
            p.HELLO: self._on_hello, p.HEARTBEAT: self._on_heartbeat, p.BYE: self._on_bye,
            p.SUBMIT: self._on_submit, p.CANCEL: self._on_cancel, p.STATUS: self._on_status,
            p.SHUTDOWN: self._on_shutdown,
            **self.library_handlers.handlers(),
        }

    def capabilities(self) -> List[str]:
        caps = ["submit", "cancel", "status", "mask", "feather", "previews", "linear", "u8", "u16", "f32",
                "priority", "frames"]
        if self.local:
            caps.append("shutdown")
        if self.library is not None:
            caps.append("styles")
        return caps

    def _on_hello(self, identity, header, frames, req) -> None:
        limits = {key: self.limits[key] for key in p.DEFAULT_LIMITS}
        limits["max_frame_bytes"] = p.max_frame_bytes(self.limits)
        self._send(identity, p.message(p.WELCOME, req=req, engine_version=__version__,
                                       protocol_version=p.PROTOCOL_VERSION, device=self.device,
                                       limits=limits, capabilities=self.capabilities(), pid=os.getpid(),
                                       options=sorted(p.ALL_OPTIONS_BY_NAME)))

    def _on_heartbeat(self, identity, header, frames, req) -> None:
        pass

    def _on_bye(self, identity, header, frames, req) -> None:
        self._forget_client(identity, p.E_CLIENT_GONE)

    def _forget_client(self, identity: bytes, reason: str) -> None:
        self.clients.pop(identity, None)
        for job in [job for job in self.jobs.values() if job.client == identity]:
            if self.queue.cancel(job, reason) == "queued":
                self.jobs.pop(job.id, None)
            log.info("job %d of a gone client cancelled", job.id)

    def _on_submit(self, identity, header, frames, req) -> None:
        request = validation.validate_submit(header, frames, self.limits)
        job = Job(next(self._job_ids), identity, request)
        if not any(style.kind in ("file", "library") for style in request.styles):
            self._queue(identity, req, job)
            return
        self.checking[job.id] = (req, job)

        def then(error: Optional[p.ProtocolError]) -> None:     # on the library thread
            header = p.message(p.OK) if error is None else p.error_message(error.code, error.message, error.field,
                                                                             req=req)
            self.outbox.send_marked(identity, CHECKED_MARK + str(job.id).encode(), header)

        self.library_handlers.check_styles(request.styles, then)

    def _checked(self, identity: bytes, job_id: int, outcome: Dict[str, Any]) -> None:
        req, job = self.checking.pop(job_id)
        if identity not in self.clients:
            return
        if outcome["type"] == p.ERROR:
            self._send(identity, outcome)
            return
        try:
            self._queue(identity, req, job)
        except p.ProtocolError as refused:
            self._send(identity, p.error_message(refused.code, refused.message, refused.field, req=req))

    def _queue(self, identity: bytes, req: Any, job: Job) -> None:
        request = job.request
        if job.priority == p.PREVIEW:
            for older in [other for other in self.jobs.values()
                          if other.client == identity and other.priority == p.PREVIEW]:
                log.info("preview job %d superseded by job %d", older.id, job.id)
                if self.queue.cancel(older, p.SUPERSEDED) == "queued":
                    self.jobs.pop(older.id, None)
                    self._send(identity, end_message(older))
        try:
            ahead = self.queue.put(job)
        except QueueFull as error:
            raise p.ProtocolError(p.E_QUEUE_FULL, str(error))
        self.jobs[job.id] = job
        log.info("job %d accepted: %s, %dx%d %s x%d, %d style(s), %d iterations, %d ahead", job.id, job.priority,
                 request.image.width, request.image.height, request.image.dtype, request.image.channels,
                 len(request.styles), request.options["iterations"], ahead)
        # Sent now, from this thread: the worker's messages for the job are forwarded by this thread
        # later, so "accepted" always comes first.
        self._send(identity, p.message(p.ACCEPTED, req=req, job=job.id, queue_position=ahead))

    def _on_cancel(self, identity, header, frames, req) -> None:
        job_id = validation.require(header, "job", int)
        job = self.jobs.get(job_id)
        if job is None or job.client != identity:
            raise p.ProtocolError(p.E_UNKNOWN_JOB, "job %d is not a job of this client that is still queued or "
                                  "running" % job_id, "job")
        outcome = self.queue.cancel(job)
        log.info("job %d cancel requested (%s)", job.id, outcome)
        if outcome == "queued":
            self.jobs.pop(job.id, None)
            self._send(identity, end_message(job))

    def _on_status(self, identity, header, frames, req) -> None:
        snapshot = self.queue.snapshot()
        running = snapshot["running"]
        waiting = snapshot["waiting"]
        mine = [{"job": job.id, "position": index + (1 if running else 0)}
                for index, job in enumerate(waiting) if job.client == identity]
        current = None
        if running is not None:
            current = {"mine": running.client == identity, "elapsed_s": time.monotonic() - (running.started or 0),
                       "priority": running.priority, "paused": len(snapshot["paused"])}
            if running.client == identity:
                current["job"] = running.id
                current["iteration"] = running.progress.get("iteration", 0)
                current["iterations"] = running.progress.get("iterations", running.request.options["iterations"])
        self._send(identity, p.message(p.STATUS_REPORT, req=req, running=current, queued=len(waiting), mine=mine,
                                       max_queue=self.queue.max_queue, clients=len(self.clients),
                                       device=self.device, uptime_s=time.monotonic() - self.started,
                                       engine_version=__version__, pid=os.getpid()))

    def _on_shutdown(self, identity, header, frames, req) -> None:
        if not self.local:
            raise p.ProtocolError(p.E_NOT_ALLOWED, "shutdown is only accepted on a local endpoint (ipc or loopback)")
        log.info("shutdown requested by a client")
        self._send(identity, p.message(p.OK, req=req))
        self.stop()

    # ------------------------------------------------------------------------------ shutdown

    def _shutdown(self) -> None:
        log.info("engine stopping")
        for job in self.queue.stop():
            self._send(job.client, shutdown_message(job))
        # The worker stops at its next check (between iterations or tiles); its sockets are closed
        # only after it has ended, and its last message is forwarded.
        self.worker.join(timeout=WORKER_JOIN_S)
        if self.worker.is_alive():
            log.warning("the running job did not stop within %g s; its client is told the engine stopped",
                        WORKER_JOIN_S)
            for job in self.queue.started_jobs():
                self._send(job.client, shutdown_message(job))
        self.library_handlers.stop()
        self._forward_outbox(most=1 << 30)
        self._send_backlog()
        if self._authenticator is not None:
            self._authenticator.stop()
        if not self.worker.is_alive() and not self.library_handlers.worker.is_alive():
            self.outbox.close()
        self.router.close(linger=CLOSE_LINGER_MS)     # the last messages still leave
        path = endpoints.ipc_path(self.endpoint)
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
        log.info("engine stopped")
