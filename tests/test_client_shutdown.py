"""Client.shutdown() against an engine that stops as asked: its ipc socket file goes away, and the
client may notice that before (or instead of) reading the engine's `ok`. Seen in the full suite: the
Krita autostart test's shutdown raised "its socket is gone" right after the engine logged
"shutdown requested by a client"."""

import os
import threading

import zmq

from shared import protocol as p
from shared.client import Client


def stand_in_engine(endpoint, ready):
    """Answers hello, then on shutdown closes its socket (removing the file) without replying."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    ready.set()
    try:
        while router.poll(10000):
            identity, *frames = router.recv_multipart()
            header = p.decode_header(frames[0])
            if header["type"] == p.HELLO:
                welcome = p.message(p.WELCOME, req=header.get("req"), engine_version="stand-in",
                                    protocol_version=p.PROTOCOL_VERSION, device="CPU", limits=dict(p.DEFAULT_LIMITS),
                                    capabilities=["shutdown"], pid=os.getpid())
                router.send_multipart([identity] + p.encode(welcome))
            elif header["type"] == p.SHUTDOWN:
                os.unlink(endpoint[len("ipc://"):])      # as the engine's stop does: the socket file goes
                return
    finally:
        router.close(linger=0)


def test_shutdown_succeeds_when_the_engine_is_gone_before_its_ok(tmp_path):
    endpoint = "ipc://" + str(tmp_path / "engine.sock")
    ready = threading.Event()
    engine = threading.Thread(target=stand_in_engine, args=(endpoint, ready), daemon=True)
    engine.start()
    assert ready.wait(10)
    client = Client(endpoint=endpoint, autostart=False)
    client.connect()
    client.shutdown()           # the engine stopped, as asked: not an error
    engine.join(10)
    assert not engine.is_alive() and not os.path.exists(str(tmp_path / "engine.sock"))
