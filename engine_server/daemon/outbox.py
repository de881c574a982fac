"""Sending from the engine: the outbox (how the worker threads hand messages to the I/O loop) and
the loop's Sender, which never blocks and never drops a message silently."""

import logging
import threading
from typing import Any, Callable, Dict, List

import zmq

from shared import protocol as p

log = logging.getLogger(__name__)

PROGRESS_MARK = b"~"          # outbox marker: may be skipped when the client does not read


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

    def send(self, identity: bytes, final_job: Any, header: Dict[str, Any], frames: Any = ()) -> None:
        self.send_marked(identity, b"" if final_job is None else str(final_job).encode(), header, frames)

    def send_marked(self, identity: bytes, marker: bytes, header: Dict[str, Any], frames: Any = ()) -> None:
        sock = getattr(self._local, "socket", None)
        if sock is None:
            sock = self.context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.address)
            self._local.socket = sock
            with self._lock:
                self._sockets.append(sock)
        sock.send_multipart([identity, marker, p.pack_header(header)] + list(frames), copy=False)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
        self.pull.close(linger=0)


class Sender:
    """The ROUTER's sends, on the I/O loop. The ROUTER is "mandatory": a gone client is an error (the
    server cancels its jobs at once, `on_gone(identity)`), and so is a full pipe; a reply or a job's
    last message that a full pipe refuses waits in `backlog` (in order, per client) and is sent again
    by `send_backlog()`. Only progress and heartbeats may be skipped (the next one says the same)."""

    def __init__(self, router: zmq.Socket, is_client: Callable[[bytes], bool], on_gone: Callable[[bytes], None]):
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router = router
        self.is_client = is_client
        self.on_gone = on_gone
        self.backlog: List[tuple] = []      # (identity, frames)

    def send(self, identity: bytes, frames: List[Any], droppable: bool = False) -> bool:
        """True when sent now."""
        if not droppable and any(waiting == identity for waiting, _ in self.backlog):
            self.backlog.append((identity, list(frames)))
            return False
        try:
            self.router.send_multipart([identity] + list(frames), zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            if droppable:
                log.debug("client %s is not reading: a progress or heartbeat message was skipped", identity.hex())
            else:
                log.warning("client %s is not reading: a message waits to be sent again", identity.hex())
                self.backlog.append((identity, list(frames)))
        except zmq.ZMQError as error:
            if error.errno == zmq.EHOSTUNREACH:
                self.on_gone(identity)
            else:
                log.warning("could not send to client %s: %s", identity.hex(), error)
        return False

    def send_backlog(self) -> None:
        waiting, self.backlog = self.backlog, []
        for identity, frames in waiting:
            if self.is_client(identity):
                self.send(identity, frames)
            else:
                log.info("client %s is gone: a message waiting for it is not sent", identity.hex())
