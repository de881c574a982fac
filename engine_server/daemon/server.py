"""The engine's I/O loop: one ROUTER socket, validation on arrival, heartbeats, jobs and library calls.

Threads: this loop (the only user of the ROUTER socket), the job worker (owns the device) and a
library worker (slow style library calls, so they never stall the loop). The workers hand their
messages back through an inproc PUSH/PULL "outbox".
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
from ..core import images
from ..core.errors import EngineError, InputError
from .jobs import Job, JobQueue, QueueFull, Worker, end_message, shutdown_message
from .library_handlers import LibraryHandlers, require_library

log = logging.getLogger(__name__)

FRAMED_TYPES = (p.SUBMIT, p.STYLE_ADD)        # the only client messages that may carry data frames
MAX_DRAIN = 64                                # messages handled per wake-up before looking at the outbox


class Outbox:
    """Thread-safe way for worker threads to send through the loop's ROUTER socket."""

    def __init__(self, context: zmq.Context):
        self.context = context
        self.address = "inproc://neural-style-outbox-%x" % id(self)
        self.pull = context.socket(zmq.PULL)
        self.pull.bind(self.address)
        self._local = threading.local()
        self._sockets: List[zmq.Socket] = []
        self._lock = threading.Lock()

    def send(self, identity: bytes, final_job: Optional[int], header: Dict[str, Any], frames: Any = ()) -> None:
        sock = getattr(self._local, "socket", None)
        if sock is None:
            sock = self.context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.address)
            self._local.socket = sock
            with self._lock:
                self._sockets.append(sock)
        marker = b"" if final_job is None else str(final_job).encode()
        sock.send_multipart([identity, marker, p.pack_header(header)] + list(frames), copy=False)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
        self.pull.close(linger=0)


class EngineServer:
    def __init__(self, endpoint: str, run_job: Callable, limits: Optional[Dict[str, Any]] = None,
                 device: str = "CPU", library: Any = None, curve: Optional[Dict[str, Any]] = None,
                 context: Optional[zmq.Context] = None, log_path: str = ""):
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
        self.worker = Worker(self.queue, run_job, self._emit, log_path)
        self.library_handlers = LibraryHandlers(library, self.limits, self._reply, self._check_image_file)
        self.clients: Dict[bytes, float] = {}         # identity -> last time heard
        self.jobs: Dict[int, Job] = {}                # unfinished jobs by id
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
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + interval
                    self._heartbeats(now)
        finally:
            self._shutdown()

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

    def _forward_outbox(self) -> None:
        for _ in range(MAX_DRAIN):
            try:
                frames = self.outbox.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            identity, marker = frames[0].bytes, frames[1].bytes
            if marker:
                self.jobs.pop(int(marker), None)
            if identity in self.clients:
                self._send_frames(identity, frames[2:])

    def _heartbeats(self, now: float) -> None:
        timeout = float(self.limits["client_timeout_s"])
        beat = p.pack_header(p.message(p.HEARTBEAT))
        for identity, heard in list(self.clients.items()):
            if now - heard > timeout:
                log.info("client %s silent for %.1f s: cancelling its jobs", identity.hex(), now - heard)
                self._forget_client(identity, p.E_CLIENT_GONE)
            else:
                self._send_frames(identity, [beat])

    # ------------------------------------------------------------------------------ sending

    def _send_frames(self, identity: bytes, frames: List[Any]) -> None:
        try:
            self.router.send_multipart([identity] + list(frames), zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as error:   # a vanished peer or a full pipe: drop, never block the loop
            log.debug("could not send to %s: %s", identity.hex(), error)

    def _send(self, identity: bytes, header: Dict[str, Any], frames: Any = ()) -> None:
        self._send_frames(identity, [p.pack_header(header)] + list(frames))

    def _emit(self, job: Job, header: Dict[str, Any], frames: Any = ()) -> None:
        """From the worker: a job's message; final ones also retire the job."""
        final = header.get("type") in p.JOB_END_TYPES
        self.outbox.send(job.client, job.id if final else None, header, frames)

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
        caps = ["submit", "cancel", "status", "mask", "feather", "previews", "linear", "u8", "u16", "f32"]
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
                                       limits=limits, capabilities=self.capabilities(), pid=os.getpid()))

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
        self._check_style_sources(request.styles)
        job = Job(next(self._job_ids), identity, request)
        try:
            ahead = self.queue.put(job)
        except QueueFull as error:
            raise p.ProtocolError(p.E_QUEUE_FULL, str(error))
        self.jobs[job.id] = job
        log.info("job %d accepted: %dx%d %s x%d, %d style(s), %d iterations, %d ahead", job.id,
                 request.image.width, request.image.height, request.image.dtype, request.image.channels,
                 len(request.styles), request.options["iterations"], ahead)
        # Sent now, from this thread: the worker's messages for the job are forwarded by this thread
        # later, so "accepted" always comes first.
        self._send(identity, p.message(p.ACCEPTED, req=req, job=job.id, queue_position=ahead))

    def _check_style_sources(self, styles: List[p.StyleRef]) -> None:
        """Refuse a missing style file or library id at once (a stat, no reading), not after queueing."""
        for index, style in enumerate(styles):
            field = "styles[%d]" % index
            if style.kind == "file":
                if not os.path.exists(style.path):
                    raise p.ProtocolError(p.E_NOT_FOUND, "%s.path: the style file %s does not exist on the "
                                          "engine's machine" % (field, style.path[:500]), field + ".path")
                self._check_image_file(style.path, field + ".path", "style")
            elif style.kind == "library":
                try:
                    path = require_library(self.library, field).path_of(style.style_id)
                except EngineError as error:
                    raise p.ProtocolError(error.code, error.message, field + ".id")
                if not os.path.isfile(path):
                    raise p.ProtocolError("style_not_found", "%s.id: the style library has no style %r"
                                          % (field, style.style_id[:40]), field + ".id")

    def _check_image_file(self, path: str, field: str, what: str) -> None:
        """Refuse a folder, an empty file, a non-image or one of more than limits.max_pixels from its
        header alone, before anything is decoded (a small PNG may declare 30000 x 30000 pixels)."""
        try:
            images.check_image_file(path, what, int(self.limits["max_pixels"]))
        except InputError as error:
            raise p.ProtocolError(error.code, "%s: %s" % (field, error.message), field)

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
            current = {"mine": running.client == identity, "elapsed_s": time.monotonic() - (running.started or 0)}
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
        self.worker.join(timeout=30)
        self.library_handlers.stop()
        self._forward_outbox()       # the worker's last words (e.g. "shutting down" for the running job)
        if self._authenticator is not None:
            self._authenticator.stop()
        self.outbox.close()
        self.router.close(linger=0)
        path = endpoints.ipc_path(self.endpoint)
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
        log.info("engine stopped")

