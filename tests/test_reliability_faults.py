"""Faults: a client SIGKILLed in the middle of sending large submits.

The client process streams 16 MiB submits back to back (send high-water mark 1, so it is always
in the middle of a transfer) and is killed at several moments. The engine must stay up, drop the
half-received message, cancel the dead client's accepted jobs once it is silent for
`client_timeout_s`, and keep serving another client's job correctly.
"""

import os
import subprocess
import sys
import time

from shared.client import Client
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO
from tests.support.proc_memory import rss_kb

SIDE = 1024                        # 1024 x 1024 RGBA f32 = 16 MiB per submit

SENDER = r"""
import sys
import zmq
from shared import protocol as p
side = int(sys.argv[2])
image = p.Pixels(side, side, 4, "f32", b"\0" * (side * side * 16))
style = p.StyleRef.pixels(p.Pixels(16, 16, 3, "u8", b"\x80" * 768), name="s")
sock = zmq.Context().socket(zmq.DEALER)
sock.setsockopt(zmq.SNDHWM, 1)
sock.connect(sys.argv[1])
req = 0
while True:
    req += 1
    sock.send_multipart(p.build_submit(image, [style], {"iterations": 1, "max_size": 32,
                                                        "preview_interval_s": 0}, req=req), copy=False)
    if req == 1:
        print("SENDING", flush=True)
"""


def wait_idle_and_forgotten(client, timeout):
    """Until the engine has nothing queued or running and knows only `client`; -> seconds waited."""
    started = time.monotonic()
    while True:
        status = client.status()
        if status["queued"] == 0 and not status.get("running") and status["clients"] == 1:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, status
        time.sleep(0.25)


def test_a_client_killed_mid_transfer_is_dropped_and_the_engine_keeps_serving(engine):
    pid = engine.process.pid
    rss_start = rss_kb(pid)
    style = StyleRef.pixels(Pixels(16, 16, 3, "u8", bytes(range(256)) * 3), name="s")
    with Client(engine.endpoint, autostart=False) as bystander:
        bystander.connect()
        for delay in (0.05, 0.4, 1.0):
            sender = subprocess.Popen([sys.executable, "-c", SENDER, engine.endpoint, str(SIDE)], cwd=REPO,
                                      env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            try:
                assert sender.stdout.readline().strip() == "SENDING", sender.stderr.read()[-2000:]
                time.sleep(delay)
                assert sender.poll() is None, sender.stderr.read()[-2000:]
            finally:
                sender.kill()
                sender.wait(30)
            assert engine.process.poll() is None, engine.log_tail()
            # The dead client's accepted jobs end (run, or cancelled once it has been silent for
            # client_timeout_s = 4 s), and the engine forgets it.
            waited = wait_idle_and_forgotten(bystander, timeout=90)
            final = bystander.submit(Pixels(24, 16, 3, "u8", bytes(range(256)) * 4 + bytes(128)), [style],
                                     {"iterations": 2, "preview_interval_s": 0}).wait(120)
            assert final.type == "result", final.header
            assert (final.pixels.width, final.pixels.height, final.pixels.channels) == (24, 16, 3)
            print("\nkilled after %.2f s: engine idle and the client forgotten %.1f s later, RSS %d KiB"
                  % (delay, waited, rss_kb(pid)))
    assert engine.process.poll() is None
    # The half-sent 16 MiB messages and the dropped jobs are not kept: RSS stays within a bound.
    assert rss_kb(pid) - rss_start < 400 * 1024, (rss_start, rss_kb(pid))
