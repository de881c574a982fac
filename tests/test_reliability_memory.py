"""A job larger than the memory the engine may use: its passes go in tiles, or it is refused at once.

The engine runs with `--job-memory-mib 400`. A 384 x 384 job (one pass would need ~440 MB) must be
worked on in tiles and finish; a 1024 x 1024 job (the optimizer alone would need ~350 MB) must be
refused with `out_of_memory` before any work; the engine stays up and serves the next job.
"""

import os
import time

import pytest

from shared.client import Client
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import running_engine, short_temp_dir
from tests.support.proc_memory import peak_rss_kb, rss_kb

LIMIT_MIB = 400


def gradient_image(side):
    row = bytes((x * 7 + y * 3) % 256 for y in range(1) for x in range(side * 3))
    return Pixels(side, side, 3, "u8", b"".join(row[y % 97:] + row[:y % 97] for y in range(side)))


@pytest.fixture
def limited_engine(fake_weights):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    with running_engine(endpoint, fake_weights, home=home,
                        extra_args=("--job-memory-mib", str(LIMIT_MIB))) as engine:
        yield engine


def test_jobs_over_the_engines_memory_are_tiled_or_refused_and_it_keeps_serving(limited_engine):
    pid = limited_engine.process.pid
    style = StyleRef.pixels(Pixels(64, 64, 3, "u8", bytes(range(256)) * 48), name="s")
    with Client(limited_engine.endpoint, autostart=False) as client:
        client.connect()
        rss_before = rss_kb(pid)
        started = time.monotonic()
        result = client.submit(gradient_image(384), [style], {"iterations": 1, "scales": 1, "max_size": 384,
                                                             "preview_interval_s": 0}).wait(600)
        tiled_s = time.monotonic() - started
        assert result.type == "result", result.header
        assert (result.pixels.width, result.pixels.height) == (384, 384)
        with open(os.path.join(limited_engine.home, "state", "neural-style", "engine.log")) as log:
            assert "384x384 pixels: passes in tiles of 176 pixels" in log.read()
        growth_mib = (peak_rss_kb(pid) - rss_before) / 1024.0
        print("\n384x384 in tiles: %.1f s, engine RSS %d MiB before, peak +%.0f MiB"
              % (tiled_s, rss_before // 1024, growth_mib))
        assert growth_mib < LIMIT_MIB + 200

        started = time.monotonic()
        refused = client.submit(gradient_image(1024), [style], {"iterations": 1, "max_size": 1024}).wait(120)
        assert (refused.type, refused.header["code"]) == ("error", "out_of_memory"), refused.header
        message = refused.header["message"]
        assert "1024x1024" in message and "%d MiB" % LIMIT_MIB in message
        print("1024x1024 refused after %.2f s: %s" % (time.monotonic() - started, message))

        small = client.submit(gradient_image(48), [style], {"iterations": 2, "preview_interval_s": 0}).wait(120)
        assert small.type == "result"
    assert limited_engine.process.poll() is None
