"""The client's socket beyond sending: CurveZMQ keys, ZeroMQ's socket events (a refused handshake,
a dropped connection) and a heartbeat thread that keeps the connection alive without its caller.

Standard library + pyzmq (24 or later), Python 3.9+.
"""

import os
import threading
import weakref
from typing import Any, List, Optional

import zmq

from . import endpoints
from .client_errors import EngineUnavailable

REFUSED_EVENTS = (getattr(zmq, "EVENT_HANDSHAKE_FAILED_AUTH", 0x4000),
                  getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", 0x2000))
SUCCEEDED = getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", 0x1000)
DISCONNECTED = zmq.EVENT_DISCONNECTED
WATCHED = DISCONNECTED | SUCCEEDED | REFUSED_EVENTS[0] | REFUSED_EVENTS[1]


class SocketEvents:
    """The handshake and disconnect events of one socket, read without blocking."""

    def __init__(self, sock: zmq.Socket):
        self.monitor = sock.get_monitor_socket(WATCHED)
        self.handshakes = 0          # successful handshakes seen
        self.refused = False         # the peer refused our key (or spoke no CurveZMQ)
        self.disconnected = False    # a connection that had completed its handshake was dropped

    def read(self) -> List[int]:
        events = []
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return events
            except zmq.ZMQError:
                return events
            if len(frames) < 2 or len(frames[0]) < 6:
                continue
            event = int.from_bytes(frames[0][:2], "little")
            events.append(event)
            if event == SUCCEEDED:
                self.handshakes += 1
            elif event in REFUSED_EVENTS:
                self.refused = True
            elif event == DISCONNECTED and self.handshakes:
                self.disconnected = True

    def close(self, sock: Any) -> None:
        try:
            sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(linger=0)


class Heartbeat(threading.Thread):
    """Calls the bound method `tick` every `interval` seconds until stopped (or its object is gone:
    it holds it weakly, so a client nobody closed can still be collected): the client's heartbeats
    and receiving go on while the editor's thread is busy elsewhere."""

    def __init__(self, tick: Any, interval: float):
        super().__init__(name="neural-style-heartbeat", daemon=True)
        self._tick = weakref.WeakMethod(tick)
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            tick = self._tick()
            if tick is None:
                return
            try:
                tick()
            except Exception:       # a closed socket at exit; the caller's next call reports it
                pass
            del tick

    def stop(self) -> None:
        self._stop_event.set()
        if self is not threading.current_thread() and self.is_alive():
            self.join(timeout=2.0)


def apply_curve(sock: zmq.Socket, endpoint: str, curve_dir: Optional[str]) -> None:
    """This client's CurveZMQ key pair and the engine's public key on `sock`."""
    import zmq.auth
    files = endpoints.curve_paths(curve_dir)
    missing = [files[key] for key in ("client_secret", "server_public") if not os.path.exists(files[key])]
    if missing:
        sock.close(linger=0)
        raise EngineUnavailable("the remote engine %s needs CurveZMQ keys, but %s is missing"
                                % (endpoint, " and ".join(missing)))
    public, secret = zmq.auth.load_certificate(files["client_secret"])
    server_public, _ = zmq.auth.load_certificate(files["server_public"])
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server_public
