"""Engine faults (issue 9): hostile style files over the protocol, SIGKILL of the engine under several
clients, and a corrupt weights file at start.

- Hostile files named in `submit` (a style of kind "file") and in `style_add` (a path): a valid PNG
  that decodes to 30000 x 30000 pixels, a JPEG and a PNG whose headers declare absurd sizes, a valid
  8000 x 8000 PNG (under Pillow's own bomb limit, over the engine's `max_pixels`), a PNG whose header
  says 0 pixels, garbage and text with image extensions, an empty file, a folder named like an image,
  and a truncated PNG; also a good file replaced by the 8000 x 8000 one while its job is queued.
  Each gets an `error` naming the field and what is wrong, and the engine's memory (sampled every
  5 ms while the requests run) never grows by more than a small bound: nothing is decoded before
  the header has been checked. (The content of a job is always pixels in the
  protocol, never a file, so there is no content file to attack.)
- SIGKILL of the engine while five clients each have a running or queued job and a sixth sits idle:
  every one raises EngineLost within a bound, none hangs; the next `Client` with autostart starts a
  fresh engine over the stale socket and a half-written pidfile, and it serves a job.
- A broken weights file: `run` exits 2 with one sentence on stderr and in the log, and an
  auto-starting client gets EngineUnavailable carrying that sentence, not a timeout.
"""

import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import h5py
import numpy as np
import pytest
from PIL import Image

from shared import endpoints
from shared.client import Client, EngineLost, EngineUnavailable, JobFailed
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO, engine_env, running_engine, short_temp_dir
from tests.support.proc_memory import peak_rss_kb, rss_kb

RSS_BOUND_KIB = 64 * 1024        # decoding the 8000 x 8000 file alone would take ~800 MiB
NOTICED_WITHIN_S = 60.0          # a hang, not a busy machine: normally the client's 5 s silence bound
WEIGHTS_FAIL_WITHIN_S = 120.0    # a generous bound; measured 0.3 s (cheap checks) to ~6 s (TensorFlow's import)


# ---------------------------------------------------------------------------------------------- hostile files

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width, height, idat):
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def png_bomb(width, height):
    """A *valid* 1-bit PNG of width x height black pixels: ~110 KB on disk for 30000 x 30000."""
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    parts = [packer.compress(row * 1000) for _ in range(height // 1000)]
    parts += [packer.compress(row * (height % 1000)), packer.flush()]
    return _png(width, height, b"".join(parts))


def jpeg_declaring(width, height):
    """A 16 x 16 JPEG whose frame header (SOF0) is patched to declare width x height."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 100, 50)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def hostile_files(folder):
    """{name: (path, words the error must contain)}; every path is absolute."""
    rng = np.random.default_rng(9)
    small = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(small, "PNG")
    contents = {
        "bomb.png": (png_bomb(30000, 30000), ["declares 900000000 pixels", "limit of 33554432", "decompression bomb"]),
        "absurd.jpg": (jpeg_declaring(65000, 65000), ["declares 4225000000 pixels", "limit of 33554432",
                                                     "decompression bomb"]),
        "absurd.png": (_png(100000, 100000, zlib.compress(b"\0" * 1000)), ["decompression bomb"]),
        "over-limit.png": (png_bomb(8000, 8000), ["is 8000x8000 pixels", "33554432 in all", "decompression bomb"]),
        "no-pixels.png": (_png(0, 10, zlib.compress(b"\0")), ["has no pixels (0x10)"]),
        "garbage.png": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), ["is not an image"]),
        "text.jpg": (b"<html>404 Not Found</html>\n", ["is not an image"]),
        "empty.png": (b"", ["is empty (0 bytes)"]),
        "truncated.png": (small.getvalue()[:len(small.getvalue()) // 2], ["is truncated or damaged"]),
    }
    files = {}
    for name, (data, words) in contents.items():
        path = os.path.join(str(folder), name)
        with open(path, "wb") as f:
            f.write(data)
        files[name] = (path, words)
    os.mkdir(os.path.join(str(folder), "folder.png"))
    files["folder.png"] = (os.path.join(str(folder), "folder.png"), ["is not a file but a folder"])
    return files


class RssSampler:
    """The largest RSS of `pid` seen while it runs (every 5 ms), to catch an allocation that is freed again."""

    def __init__(self, pid):
        self.pid, self.highest, self._stop = pid, rss_kb(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.005):
            self.highest = max(self.highest, rss_kb(self.pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def test_hostile_style_files_are_refused_before_anything_is_decoded(engine, tmp_path):
    pid = engine.process.pid
    files = hostile_files(tmp_path)
    rgb = Pixels(24, 16, 3, "u8", bytes(range(256)) * 4 + bytes(128))
    good_style = StyleRef.pixels(Pixels(16, 16, 3, "u8", bytes(range(256)) * 3), name="ok")
    options = {"iterations": 2, "preview_interval_s": 0}
    with Client(engine.endpoint, autostart=False) as client:
        styles_before = client.list_styles()
        # One warm-up job and one library call, so the RSS is measured after the engine's own first-use growth.
        assert client.submit(rgb, [good_style], options).wait(120).type == "result"
        rss_before, peak_before = rss_kb(pid), peak_rss_kb(pid)
        started = time.monotonic()
        answers = {}
        with RssSampler(pid) as sampler:
            for name, (path, words) in sorted(files.items()):
                # As the second style of a job: refused at once (the header is read) or, for a file
                # damaged beyond its header, accepted and then failed when the job loads it.
                try:
                    final = client.submit(rgb, [good_style, StyleRef.file(path)], options).wait(120)
                    assert final.type == "error", (name, final.header)
                    code, field, message = final.header["code"], final.header.get("field"), final.header["message"]
                    when = "job"
                except JobFailed as error:
                    code, field, message, when = error.code, error.field, error.message, "submit"
                assert (code, field) == ("bad_input", "styles[1].path"), (name, code, field, message)
                assert path in message and all(word in message for word in words), (name, message)
                assert "\n" not in message and "Traceback" not in message
                assert when == ("job" if name == "truncated.png" else "submit"), (name, message)
                # Added to the style library from its path.
                with pytest.raises(JobFailed) as caught:
                    client.add_style(path=path, name="hostile")
                assert (caught.value.code, caught.value.field) == ("bad_input", "path"), (name, caught.value.header)
                assert path in caught.value.message and all(word in caught.value.message for word in words)
                answers[name] = message
            # A good style file that is replaced by the 8000 x 8000 one while its job waits in the queue
            # is checked again (header only) when the job starts.
            blocker = client.submit(rgb, [good_style], {"iterations": 10000, "preview_interval_s": 0,
                                                        "optimizer": "adam"})   # never stops early
            swapped = str(tmp_path / "swapped.png")
            Image.new("RGB", (32, 32), (20, 90, 160)).save(swapped)
            queued = client.submit(rgb, [good_style, StyleRef.file(swapped)], options)
            shutil.copy(files["over-limit.png"][0], swapped + ".new")
            os.replace(swapped + ".new", swapped)
            blocker.cancel()
            assert blocker.wait(120).type == "cancelled"
            final = queued.wait(120)
            assert final.type == "error" and final.header["field"] == "styles[1].path", final.header
            assert swapped in final.header["message"] and "is 8000x8000 pixels" in final.header["message"]
            answers["swapped.png"] = final.header["message"]
        elapsed = time.monotonic() - started
        rss_after, peak_after = rss_kb(pid), peak_rss_kb(pid)
        assert [style["id"] for style in client.list_styles()] == [style["id"] for style in styles_before]
        # The engine keeps serving.
        final = client.submit(rgb, [good_style], options).wait(120)
        assert final.type == "result" and (final.pixels.width, final.pixels.height) == (24, 16), final.header
    assert engine.process.poll() is None, engine.log_tail()
    print("\n%d hostile files x 2 requests (and a swapped one) in %.2f s; engine RSS %.1f -> %.1f MiB "
          "(highest sampled %.1f, peak %.1f -> %.1f)" % (len(files), elapsed, rss_before / 1024, rss_after / 1024, sampler.highest / 1024,
                                 peak_before / 1024, peak_after / 1024))
    for name in sorted(answers):
        print("  %-15s %s" % (name, answers[name]))
    assert sampler.highest - rss_before < RSS_BOUND_KIB, (rss_before, sampler.highest)
    assert rss_after - rss_before < RSS_BOUND_KIB, (rss_before, rss_after)
    assert peak_after - max(peak_before, rss_before) < RSS_BOUND_KIB, (peak_before, peak_after)


# ---------------------------------------------------------------------------------------------- SIGKILL under load

def _pidfile(home, endpoint):
    return os.path.join(home, "state", "neural-style", "engine-%s.pid" % endpoints.endpoint_key(endpoint))


def _use_engine_env(monkeypatch, home):
    env = engine_env(home)
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "PYTHONPATH"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("NEURAL_STYLE_ENGINE", raising=False)
    return env


def _stop_engine(pid):
    """SIGTERM an auto-started engine (SIGKILL after 30 s); it is not our child, so poll for it."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_sigkill_under_several_clients_each_notices_and_autostart_recovers(fake_weights, monkeypatch):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    _use_engine_env(monkeypatch, home)
    clients_count = 5
    outcomes = [None] * clients_count
    submitted = threading.Barrier(clients_count + 1, timeout=180)
    killed_at = []

    def client_thread(index):
        client = Client(endpoint, autostart=False, client_name="client %d" % index)
        try:
            side = 24 + 4 * index       # a size per client
            image = Pixels(side, side, 3, "u8", bytes(side * side * 3))
            job = client.submit(image, [StyleRef.pixels(image)], {"iterations": 10000, "preview_interval_s": 0,
                                                                   "optimizer": "adam"})   # never stops early
            submitted.wait()
            try:
                final = job.wait(120)
                outcomes[index] = ("ended", final.type, time.monotonic())
            except EngineLost as error:
                outcomes[index] = ("lost", str(error), time.monotonic())
            except Exception as error:        # a wrong exception is a failure the main thread reports
                outcomes[index] = ("other", repr(error), time.monotonic())
        finally:
            client.close()

    second_pid = None
    try:
        with running_engine(endpoint, fake_weights, home=home) as first:
            idle = Client(endpoint, autostart=False, client_name="idle")
            idle.connect()
            threads = [threading.Thread(target=client_thread, args=(i,), daemon=True) for i in range(clients_count)]
            for thread in threads:
                thread.start()
            submitted.wait()
            deadline = time.monotonic() + 120
            while True:     # one job running (past its first iteration), the others queued
                status = idle.status()
                if status.get("running") and status["queued"] == clients_count - 1:
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.2)
            os.kill(first.process.pid, signal.SIGKILL)
            killed_at.append(time.monotonic())
            with pytest.raises(EngineLost):
                idle.status()          # a client that was not waiting notices at its next call
            idle_noticed = time.monotonic() - killed_at[0]
            idle.close()
            for thread in threads:
                thread.join(NOTICED_WITHIN_S + 30)
            assert not any(thread.is_alive() for thread in threads), "a client hangs: %r" % outcomes
            first.process.wait(10)
            socket_path = endpoint[len("ipc://"):]
            assert os.path.exists(socket_path) and os.path.exists(_pidfile(home, endpoint))   # stale, left behind
        waits = []
        for index, outcome in enumerate(outcomes):
            assert outcome is not None and outcome[0] == "lost", (index, outcome)
            assert "stopped answering" in outcome[1]
            waits.append(outcome[2] - killed_at[0])
        print("SIGKILL noticed after %s s" % [round(w, 2) for w in waits + [idle_noticed]])
        assert max(waits + [idle_noticed]) < NOTICED_WITHIN_S, waits
        # As if the engine had died while writing its pidfile: a half-written one does not block the next.
        with open(_pidfile(home, endpoint), "w") as f:
            f.write("12")
        started = time.monotonic()
        client = Client(endpoint, engine_command=[sys.executable, "-m", "engine_server"], weights=fake_weights,
                        start_timeout=240)
        welcome = client.connect()
        second_pid = welcome["pid"]
        restart_s = time.monotonic() - started
        assert second_pid != first.process.pid
        image = Pixels(32, 24, 3, "u8", bytes(range(256)) * 9)
        final = client.submit(image, [StyleRef.pixels(image)], {"iterations": 2, "preview_interval_s": 0}).wait(120)
        assert final.type == "result" and (final.pixels.width, final.pixels.height) == (32, 24), final.header
        client.close()
        with open(_pidfile(home, endpoint)) as f:
            assert int(f.readline()) == second_pid
        print("\nSIGKILL with %d clients waiting on jobs (1 running, %d queued): each raised EngineLost after "
              "%s s (idle client at its next call: %.2f s); auto-start of a fresh engine %.1f s, then a job"
              % (clients_count, clients_count - 1, " / ".join("%.2f" % w for w in sorted(waits)), idle_noticed,
                 restart_s))
    finally:
        if second_pid is not None:
            _stop_engine(second_pid)
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- broken weights

def _zero(path, good):
    open(path, "wb").close()


def _truncated(path, good):
    with open(good, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 3])


def _not_hdf5(path, good):
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04" + b"a zip archive, not weights " * 64)


def _wrong_layout(path, good):
    """A valid HDF5 file without Keras' layer groups (e.g. a model saved another way)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=np.zeros(10, np.float32))


def _wrong_shapes(path, good):
    """The fake VGG-19 with block3_conv2's kernel of 128 instead of 256 filters."""
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        del f["block3_conv2"]["block3_conv2_W_1:0"]
        f["block3_conv2"].create_dataset("block3_conv2_W_1:0", data=np.zeros((3, 3, 256, 128), np.float32))


BROKEN_WEIGHTS = {
    "zero_bytes": (_zero, "is empty (0 bytes"),
    "truncated_hdf5": (_truncated, "is truncated or damaged"),
    "not_hdf5": (_not_hdf5, "is not an HDF5 file"),
    "wrong_layout": (_wrong_layout, "is not the Keras VGG-19 notop weights file"),
    "wrong_shapes": (_wrong_shapes, "block3_conv2"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_WEIGHTS))
def test_a_broken_weights_file_stops_the_start_with_its_reason(kind, fake_weights, monkeypatch, tmp_path):
    make, reason = BROKEN_WEIGHTS[kind]
    weights = str(tmp_path / ("%s.h5" % kind))
    make(weights, fake_weights)
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    env = _use_engine_env(monkeypatch, home)
    try:
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "engine_server", "run", "--endpoint", endpoint,
                              "--weights", weights], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=WEIGHTS_FAIL_WITHIN_S + 60)
        run_s = time.monotonic() - started
        assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        sentence = lines[-1]
        assert sentence.startswith("error: VGG-19 weights file %s " % weights), run.stderr[-2000:]
        assert reason in sentence and "--weights PATH" in sentence and sentence.endswith("."), sentence
        assert "Traceback" not in run.stderr and sum("VGG-19 weights" in line for line in lines) == 1, run.stderr
        with open(os.path.join(home, "state", "neural-style", "engine.log"), encoding="utf-8") as f:
            assert "ERROR engine_server: the engine did not start: " + sentence[len("error: "):] in f.read()
        assert not os.path.exists(endpoint[len("ipc://"):]) and not os.path.exists(_pidfile(home, endpoint))
        assert run_s < WEIGHTS_FAIL_WITHIN_S

        started = time.monotonic()
        with pytest.raises(EngineUnavailable) as caught:
            Client(endpoint, engine_command=[sys.executable, "-m", "engine_server"], weights=weights,
                   start_timeout=240).connect()
        autostart_s = time.monotonic() - started
        message = str(caught.value)
        assert message.startswith("the engine could not be started: VGG-19 weights file %s " % weights), message
        assert reason in message and "did not answer" not in message, message
        assert autostart_s < WEIGHTS_FAIL_WITHIN_S
        print("\n%s: run exits 2 after %.2f s, auto-start raises EngineUnavailable after %.2f s: %s"
              % (kind, run_s, autostart_s, message[:220]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
