"""The engine client the plugins and the CLI use: connect (auto-starting the engine), submit, events, cancel.

A Client belongs to one thread; `Job.cancel()` and `engine_running()` are safe from any thread. A
heartbeat thread keeps the connection alive (and receives) while the caller's thread is busy.
Standard library + pyzmq + msgpack, Python 3.9+ (runs inside Krita's and GIMP's Pythons with
Debian's python3-zmq, which may be as old as pyzmq 24).
"""

import contextlib
import os
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import zmq

from . import endpoints, engine_options, engine_start, keepalive
from . import protocol as p
from .client_errors import (ClientError, EngineLost, EngineOutdated, EngineRefused,  # noqa: F401
                            EngineUnavailable, JobFailed, ProtocolMismatch)
from .job import Event, Job, pixels_from  # noqa: F401
from .library_calls import LibraryCalls

ENGINE_LOST_AFTER_S = 5.0       # no message at all from the engine for this long: it is gone
IDLE_TIMEOUT_S = 600.0          # an engine this client starts exits after this long without work


class Client(LibraryCalls):
    """A connection to the engine. See docs/architecture.md ("The client") and docs/protocol.md."""

    def __init__(self, endpoint: Optional[str] = None, autostart: bool = True, start_timeout: float = 30.0,
                 engine_command: Any = None, client_name: str = "neural-style client",
                 connect_timeout: float = 2.0, lost_after: float = ENGINE_LOST_AFTER_S,
                 curve_dir: Optional[str] = None, weights: Optional[str] = None, curve: Optional[bool] = None,
                 idle_timeout: float = IDLE_TIMEOUT_S):
        try:
            self.endpoint = endpoints.resolve(endpoint)
        except endpoints.EndpointError as error:
            raise EngineUnavailable(str(error))
        self.autostart = autostart
        self.start_timeout = start_timeout
        self.engine_command = engine_command
        self.client_name = client_name
        self.connect_timeout = connect_timeout
        self.lost_after = lost_after
        self.curve_dir = curve_dir
        self.curve = curve             # None: CurveZMQ for any endpoint that is not ipc or loopback
        self.weights = weights
        self.idle_timeout = idle_timeout   # for an engine this client starts (0 = it never exits by itself)
        self.welcome: Optional[Dict[str, Any]] = None
        self._context = zmq.Context.instance()
        self._socket: Optional[zmq.Socket] = None
        self._lock = threading.RLock()
        self._next_req = 0
        self._replies: Dict[int, tuple] = {}
        self._submits: Dict[int, Job] = {}
        self._jobs: Dict[Any, Job] = {}
        self._heartbeat_interval = p.DEFAULT_LIMITS["heartbeat_interval_s"]
        self._last_heard = 0.0
        self._last_sent = 0.0
        self._lost = False
        self._lost_reason = ""
        self._events: Optional[keepalive.SocketEvents] = None
        self._heartbeat: Optional[keepalive.Heartbeat] = None
        self._engine_options = engine_options.EngineOptions()

    # ----------------------------------------------------------------------------------- life cycle

    def connect(self) -> Dict[str, Any]:
        """Say hello (starting the engine if needed); returns the welcome map."""
        with self._lock:
            if self.welcome is not None and not self._lost and self._socket is not None:
                self._watch_events()          # a connection dropped a moment ago is noticed here
            if self.welcome is not None and not self._lost:
                return self.welcome
            self.welcome = None          # until a new hello is answered
            self._lost = False
            welcome = None
            if self._maybe_listening():
                welcome = self._hello(self.connect_timeout)
            if welcome is None:
                if not self.autostart:
                    raise EngineUnavailable("no engine answers on %s (start one with: python3 -m engine_server start)"
                                            % self.endpoint)
                welcome = self._start_and_hello()
            self.welcome = welcome
            self._heartbeat_interval = float(welcome.get("limits", {}).get("heartbeat_interval_s", 1.0))
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = keepalive.Heartbeat(self._background_tick, min(0.5, self._heartbeat_interval / 2))
                self._heartbeat.start()
            return welcome

    def engine_running(self, timeout: float = 1.0) -> bool:
        """True if an engine answers on this endpoint now; never starts one, never raises. Cheap while
        connected (the heartbeats say it), else one hello on a socket of its own."""
        if self._lock.acquire(blocking=False):      # else another thread is receiving right now
            try:
                self._watch_events()
            finally:
                self._lock.release()
        if self.welcome is not None and not self._lost:
            return time.monotonic() - self._last_heard < max(2.5, 2.5 * self._heartbeat_interval)
        probe = Client(self.endpoint, autostart=False, connect_timeout=timeout, client_name=self.client_name,
                       curve_dir=self.curve_dir, curve=self.curve)
        try:
            probe._connect_once()
            return True
        except ClientError:
            return False
        finally:
            probe.close()

    def close(self) -> None:
        """Say goodbye (the engine cancels this client's unfinished jobs) and close the socket."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        with self._lock:
            if self._socket is not None:
                if self.welcome is not None and not self._lost:
                    try:
                        self._socket.send_multipart(p.encode(p.message(p.BYE)), zmq.NOBLOCK)
                    except zmq.ZMQError:
                        pass
                self._close_socket(linger=200)
            self.welcome = None
            for job in list(self._jobs.values()):
                job.done = True
            self._jobs.clear()

    def __enter__(self) -> "Client":
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- jobs
    def submit(self, image: p.Pixels, styles: Sequence[p.StyleRef], options: Optional[Dict[str, Any]] = None,
               mask: Optional[p.Pixels] = None, priority: str = "normal", previous_frame: Any = None) -> Job:
        """Send a job; returns once the engine accepted it (JobFailed if it refused, EngineOutdated if an
        older engine lacks a non-default option or frames). A "preview" job runs first, replacing this client's
        last preview. previous_frame: None, or (previous content, previous result) Pixels (docs/protocol.md)."""
        if priority not in p.PRIORITIES:
            raise ValueError("priority must be one of %s, got %r" % (", ".join(p.PRIORITIES), priority))
        with self._lock:
            job = Job(self)
            header = self._engine_options.submit(self, options, previous_frame is not None, lambda sent: self._send_request(
                p.build_submit(image, styles, sent, mask, priority=priority, previous_frame=previous_frame), job)[0])
            job.queue_position = header.get("queue_position")
            return job

    def status(self) -> Dict[str, Any]:
        """The engine's queue and current job (a status_report map)."""
        header, _ = self._request(p.STATUS)
        return header

    def shutdown(self) -> None:
        """Ask a local engine to stop (it finishes no jobs; their clients get an error)."""
        with self._lock:
            self.connect()
            req = self._new_req()
            self._send(p.encode(p.message(p.SHUTDOWN, req=req)))
            with contextlib.suppress(EngineLost):   # gone before its ok was read: it stopped, as asked
                self._await_reply(req)
        self.close()

    # ----------------------------------------------------------------------------------- internals
    def _new_req(self) -> int:
        self._next_req += 1
        return self._next_req

    def _request(self, msg_type: str, frames: Sequence[Any] = (), **fields: Any) -> tuple:
        return self._send_request(p.encode(p.message(msg_type, **fields), frames))

    def _send_request(self, frames: List[Any], job: Optional[Job] = None) -> tuple:
        """Send a request (frame 0 gets a fresh req) and await its answer. An engine found gone before it
        answered is started again (autostart) and asked once more: the first request after a crash or
        a stop succeeds."""
        header = p.decode_header(frames[0])
        with self._lock:
            for attempt in (1, 2):
                self.connect()
                req = self._new_req()
                header["req"] = req
                if job is not None:
                    self._submits[req] = job
                try:
                    self._send([p.pack_header(header)] + list(frames[1:]))
                    return self._await_reply(req)
                except EngineLost:
                    if attempt == 2 or not self.autostart:
                        raise
                finally:
                    self._submits.pop(req, None)
            raise AssertionError("unreachable")

    def _await_reply(self, req: int) -> tuple:
        self._wait(lambda: req in self._replies, None)
        header, frames = self._replies.pop(req)
        if header.get("type") == p.ERROR:
            raise JobFailed(str(header.get("code")), str(header.get("message")), header.get("field"), header)
        return header, frames

    def _send(self, frames: Sequence[Any]) -> None:
        self._socket.send_multipart(frames, copy=False)
        self._last_sent = time.monotonic()

    def _open_socket(self) -> None:
        self._close_socket(linger=0)
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        curve = bool(self.curve or (self.curve is None and not endpoints.is_loopback(self.endpoint)))
        if curve:
            keepalive.apply_curve(sock, self.endpoint, self.curve_dir)
        # ZeroMQ's socket events only where a key can be refused (tcp), and only until the welcome:
        # the ipc socket file and the heartbeats tell a gone engine (see _watch_events).
        self._events = keepalive.SocketEvents(sock) if curve or endpoints.ipc_path(self.endpoint) is None else None
        sock.connect(self.endpoint)
        self._socket = sock
        self._replies.clear()

    def _close_socket(self, linger: int) -> None:
        if self._socket is not None:
            self._close_events()
            self._socket.close(linger=linger)
            self._socket = None

    def _close_events(self) -> None:
        if self._events is not None and self._socket is not None:
            self._events.close(self._socket)
        self._events = None

    def _watch_events(self) -> None:
        """Notice a gone engine early (the next request then starts a new one): its ipc socket file is
        gone (stopped, idle), or it missed its heartbeats while no job of ours runs (crashed)."""
        if self.welcome is None or self._lost:
            return
        path = endpoints.ipc_path(self.endpoint)
        if path is not None and not os.path.exists(path):
            self._lose("the engine on %s stopped answering (its socket is gone: it stopped or crashed)"
                       % self.endpoint)
        elif not self._jobs and not self._submits and time.monotonic() - self._last_heard > max(2.5, 2.5 * self._heartbeat_interval):
            self._lose("the engine on %s stopped answering (it missed its heartbeats: it may have crashed)"
                       % self.endpoint)

    def _maybe_listening(self) -> bool:
        return engine_start.maybe_listening(self.endpoint)

    def _hello(self, timeout: float) -> Optional[Dict[str, Any]]:
        """One hello on a fresh socket; the welcome map, or None if nothing answered in time."""
        self._open_socket()
        req = self._new_req()
        self._send(p.encode(p.message(p.HELLO, req=req, client=self.client_name,
                                      protocol_versions=[p.PROTOCOL_VERSION])))
        deadline = time.monotonic() + timeout
        while req not in self._replies:
            if self._events is not None:
                self._events.read()
                if self._events.refused:
                    self._close_events()
                    raise EngineRefused("the engine on %s refused this client's key (CurveZMQ): this client's "
                                        "public key must be among the engine's authorized clients, and the "
                                        "engine's public key must be this client's server key" % self.endpoint)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._receive(min(remaining, 0.1))
        header, _ = self._replies.pop(req)
        if header.get("type") == p.ERROR:
            if header.get("code") == p.E_VERSION:
                raise ProtocolMismatch("the engine on %s does not speak protocol version %d: %s"
                                       % (self.endpoint, p.PROTOCOL_VERSION, header.get("message")))
            raise EngineUnavailable("the engine refused the connection: %s" % header.get("message"))
        if header.get("type") != p.WELCOME or header.get("protocol_version") != p.PROTOCOL_VERSION:
            raise ProtocolMismatch("the engine on %s answered hello with %r (protocol %r); this plugin needs "
                                   "protocol version %d: update the plugin or the engine"
                                   % (self.endpoint, header.get("type"), header.get("protocol_version"),
                                      p.PROTOCOL_VERSION))
        self._last_heard = time.monotonic()
        self._close_events()
        return header

    def _start_and_hello(self) -> Dict[str, Any]:
        command, weights = engine_start.engine_command(self.engine_command, self.weights)
        if not command:
            raise EngineUnavailable("no engine is running on %s and none is installed to start: run python3 installer.py"
                                    % self.endpoint)
        return engine_start.start(command, self.endpoint, weights, self.start_timeout, self._maybe_listening,
                                  self._hello, idle_timeout=self.idle_timeout)

    def _connect_once(self) -> Dict[str, Any]:
        """One hello, no autostart: the welcome map, or EngineUnavailable / EngineRefused."""
        welcome = self._hello(self.connect_timeout) if self._maybe_listening() else None
        if welcome is None:
            raise EngineUnavailable("no engine answers on %s" % self.endpoint)
        return welcome

    def _background_tick(self) -> None:
        """From the heartbeat thread: heartbeats, receiving, and noticing a gone engine, unless the
        caller's thread is doing that right now."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._socket is None or self.welcome is None or self._lost:
                return
            self._receive(0.0)
            self._watch_events()
            if not self._lost and time.monotonic() - self._last_heard > self.lost_after:
                self._lose("the engine on %s stopped answering (nothing for %g s): it may have crashed"
                           % (self.endpoint, self.lost_after))
        finally:
            self._lock.release()

    def _wait(self, done, timeout: Optional[float]) -> None:
        """Receive and dispatch until done() or timeout; raises EngineLost when the engine falls silent."""
        if self._socket is None:
            raise EngineLost("the connection to the engine is closed")
        self._wait_loop(done, timeout, time.monotonic())

    def _wait_loop(self, done, timeout: Optional[float], start: float) -> None:
        while not done():
            now = time.monotonic()
            self._watch_events()
            if self._lost:
                raise EngineLost(self._lost_reason or "the engine on %s stopped answering" % self.endpoint)
            if now - self._last_heard > self.lost_after:
                self._lose("the engine on %s stopped answering (nothing for %g s): it may have crashed"
                           % (self.endpoint, self.lost_after))
                raise EngineLost(self._lost_reason)
            if timeout is not None and now - start >= timeout:
                return
            step = 0.1 if timeout is None else max(0.0, min(0.1, start + timeout - now))
            self._receive(step)

    def _lose(self, reason: str) -> None:
        self._lost = True
        self._lost_reason = reason
        for job in list(self._jobs.values()):
            job._lost = reason
            job.done = True
        self._jobs.clear()

    def _receive(self, timeout: float) -> None:
        self._send_cancels()
        now = time.monotonic()
        if self.welcome is not None and now - self._last_sent >= self._heartbeat_interval:
            self._send(p.encode(p.message(p.HEARTBEAT)))
        if not self._socket.poll(int(timeout * 1000)):
            return
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._last_heard = time.monotonic()
            self._dispatch(frames)

    def _dispatch(self, frames: List[bytes]) -> None:
        try:
            header = p.decode_header(frames[0])
        except p.ProtocolError as error:
            raise ProtocolMismatch("the engine on %s sent a message this plugin cannot read: %s"
                                   % (self.endpoint, error.message))
        msg_type = header["type"]
        if msg_type == p.HEARTBEAT:
            return
        req = header.get("req")
        if msg_type == p.ACCEPTED and req in self._submits:
            job = self._submits[req]
            job.id = header.get("job")
            self._jobs[job.id] = job
        job_id = header.get("job")
        if msg_type in (p.PROGRESS, p.RESULT, p.CANCELLED) or (msg_type == p.ERROR and job_id is not None
                                                                  and req is None):
            job = self._jobs.get(job_id)
            if job is None:
                return      # a job this client already closed or forgot
            pixels = pixels_from(header.get("preview") if msg_type == p.PROGRESS else header.get("image"), frames)
            job._events.append(Event(header, pixels))
            if msg_type in p.JOB_END_TYPES:
                self._jobs.pop(job_id, None)
            return
        if req is not None:
            self._replies[req] = (header, frames)

    def _try_send_cancels(self) -> None:
        """From any thread: send now if no other thread is using the socket, else the next receive does."""
        if self._lock.acquire(blocking=False):
            try:
                if self._socket is not None and not self._lost:
                    self._send_cancels()
            finally:
                self._lock.release()

    def _send_cancels(self) -> None:
        for job in list(self._jobs.values()):
            if job._cancel_wanted.is_set() and not job._cancel_sent and not job.done:
                job._cancel_sent = True
                self._send(p.encode(p.message(p.CANCEL, job=job.id)))
