"""The engine client the plugins and the CLI use: connect (auto-starting the engine), submit, events, cancel.

A Client belongs to one thread; `Job.cancel()` is the one call that is safe from any thread.
Standard library + pyzmq + msgpack, Python 3.9+ (runs inside Krita's and GIMP's Pythons with
Debian's python3-zmq, which may be as old as pyzmq 24).
"""

import os
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import zmq

from . import endpoints, engine_start
from . import protocol as p
from .client_errors import ClientError, EngineLost, EngineUnavailable, JobFailed, ProtocolMismatch  # noqa: F401
from .job import Event, Job, pixels_from  # noqa: F401

ENGINE_LOST_AFTER_S = 5.0       # no message at all from the engine for this long while waiting: it is gone


class Client:
    """A connection to the engine. See docs/architecture.md ("The client") and docs/protocol.md."""

    def __init__(self, endpoint: Optional[str] = None, autostart: bool = True, start_timeout: float = 30.0,
                 engine_command: Any = None, client_name: str = "neural-style client",
                 connect_timeout: float = 2.0, lost_after: float = ENGINE_LOST_AFTER_S,
                 curve_dir: Optional[str] = None, weights: Optional[str] = None, curve: Optional[bool] = None):
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
        self._last_wait = 0.0          # when a _wait() last returned
        self._idle_until = 0.0
        self._lost = False

    # ----------------------------------------------------------------------------------- life cycle

    def connect(self) -> Dict[str, Any]:
        """Say hello (starting the engine if needed); returns the welcome map."""
        with self._lock:
            if self.welcome is not None and not self._lost:
                return self.welcome
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
            return welcome

    def close(self) -> None:
        """Say goodbye (the engine cancels this client's unfinished jobs) and close the socket."""
        with self._lock:
            if self._socket is not None:
                if self.welcome is not None and not self._lost:
                    try:
                        self._socket.send_multipart(p.encode(p.message(p.BYE)), zmq.NOBLOCK)
                    except zmq.ZMQError:
                        pass
                self._socket.close(linger=200)
                self._socket = None
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
               mask: Optional[p.Pixels] = None) -> Job:
        """Send a job; returns once the engine accepted it (JobFailed if it refused)."""
        with self._lock:
            self.connect()
            req = self._new_req()
            job = Job(self)
            self._submits[req] = job
            try:
                self._send(p.build_submit(image, styles, options, mask, req=req))
                header, _ = self._await_reply(req)
            finally:
                self._submits.pop(req, None)
            job.queue_position = header.get("queue_position")
            return job

    def status(self) -> Dict[str, Any]:
        """The engine's queue and current job (a status_report map)."""
        header, _ = self._request(p.STATUS)
        return header

    def shutdown(self) -> None:
        """Ask a local engine to stop (it finishes no jobs; their clients get an error)."""
        self._request(p.SHUTDOWN)
        self.close()

    # ----------------------------------------------------------------------------------- style library

    def list_styles(self) -> List[Dict[str, Any]]:
        """[{id, name, width, height, credit, added, thumbnail_png}] of the engine's style library."""
        header, frames = self._request(p.STYLE_LIST)
        return [self._style_info(item, frames) for item in header.get("styles", [])]

    def add_style(self, pixels: Optional[p.Pixels] = None, path: Optional[str] = None, name: Optional[str] = None,
                  credit: str = "") -> Dict[str, Any]:
        """Add a style from pixels (e.g. a layer) or from an image file on the engine's machine."""
        if (pixels is None) == (path is None):
            raise ValueError("add_style needs exactly one of pixels= or path=")
        fields: Dict[str, Any] = {"name": name, "credit": credit}
        frames: List[Any] = []
        if pixels is not None:
            fields["image"] = pixels.descriptor(1)
            frames.append(pixels.data)
        else:
            fields["path"] = path
        header, reply_frames = self._request(p.STYLE_ADD, frames, **fields)
        return self._style_info(header.get("style", {}), reply_frames)

    def rename_style(self, style_id: str, name: str) -> Dict[str, Any]:
        header, frames = self._request(p.STYLE_RENAME, id=style_id, name=name)
        return self._style_info(header.get("style", {}), frames)

    def remove_style(self, style_id: str) -> None:
        self._request(p.STYLE_REMOVE, id=style_id)

    def export_styles(self, pack_path: str, style_ids: Sequence[str]) -> int:
        """Write the chosen styles to a pack file on the engine's machine; returns how many."""
        header, _ = self._request(p.STYLE_EXPORT, path=pack_path, ids=list(style_ids))
        return int(header.get("count", 0))

    def import_styles(self, pack_path: str) -> List[Dict[str, Any]]:
        header, frames = self._request(p.STYLE_IMPORT, path=pack_path)
        return [self._style_info(item, frames) for item in header.get("styles", [])]

    @staticmethod
    def _style_info(item: Dict[str, Any], frames: List[bytes]) -> Dict[str, Any]:
        info = dict(item)
        index = info.pop("thumbnail_frame", None)
        info["thumbnail_png"] = frames[index] if isinstance(index, int) and 0 < index < len(frames) else b""
        return info

    # ----------------------------------------------------------------------------------- internals

    def _new_req(self) -> int:
        self._next_req += 1
        return self._next_req

    def _request(self, msg_type: str, frames: Sequence[Any] = (), **fields: Any) -> tuple:
        with self._lock:
            self.connect()
            req = self._new_req()
            self._send(p.encode(p.message(msg_type, req=req, **fields), frames))
            return self._await_reply(req)

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
        if self._socket is not None:
            self._socket.close(linger=0)
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve or (self.curve is None and not endpoints.is_loopback(self.endpoint)):
            self._apply_curve(sock)
        sock.connect(self.endpoint)
        self._socket = sock
        self._replies.clear()

    def _apply_curve(self, sock: zmq.Socket) -> None:
        import zmq.auth
        files = endpoints.curve_paths(self.curve_dir)
        missing = [files[key] for key in ("client_secret", "server_public") if not os.path.exists(files[key])]
        if missing:
            sock.close(linger=0)
            raise EngineUnavailable("the remote engine %s needs CurveZMQ keys, but %s is missing"
                                    % (self.endpoint, " and ".join(missing)))
        public, secret = zmq.auth.load_certificate(files["client_secret"])
        server_public, _ = zmq.auth.load_certificate(files["server_public"])
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = server_public

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
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._receive(remaining)
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
        return header

    def _start_and_hello(self) -> Dict[str, Any]:
        command, weights = engine_start.engine_command(self.engine_command, self.weights)
        if not command:
            raise EngineUnavailable("no engine is running on %s and none is installed to start: run python3 installer.py"
                                    % self.endpoint)
        return engine_start.start(command, self.endpoint, weights, self.start_timeout, self._maybe_listening,
                                  self._hello)

    def _wait(self, done, timeout: Optional[float]) -> None:
        """Receive and dispatch until done() or timeout; raises EngineLost when the engine falls silent."""
        if self._socket is None:
            raise EngineLost("the connection to the engine is closed")
        start = time.monotonic()
        if start - self._last_wait > 1.0:
            # Nobody was listening for a while: give the engine a full lost_after from now. (While a
            # caller keeps polling, even with short timeouts, the silence counts from the last message.)
            self._idle_until = start
        try:
            self._wait_loop(done, timeout, start)
        finally:
            self._last_wait = time.monotonic()

    def _wait_loop(self, done, timeout: Optional[float], start: float) -> None:
        while not done():
            now = time.monotonic()
            if self._lost:
                raise EngineLost("the engine on %s stopped answering" % self.endpoint)
            if now - max(self._last_heard, self._idle_until) > self.lost_after:
                self._lose()
                raise EngineLost("the engine on %s stopped answering (nothing for %g s): it may have crashed"
                                 % (self.endpoint, self.lost_after))
            if timeout is not None and now - start >= timeout:
                return
            step = 0.1 if timeout is None else max(0.0, min(0.1, start + timeout - now))
            self._receive(step)

    def _lose(self) -> None:
        self._lost = True
        for job in list(self._jobs.values()):
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
