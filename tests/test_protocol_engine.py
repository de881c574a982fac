"""A real engine process (fake VGG-19 weights) and real clients: jobs, previews, concurrency, cancel, bad input."""

import os
import shutil
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from shared import protocol as p
from shared.client import Client, JobFailed
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO, running_engine, short_temp_dir
from tests.support.skips import skip_or_fail

MAX_PIXELS = 128 * 128          # a small limit, so an oversized frame is cheap to send
# Runs until cancelled: Adam never stops early (L-BFGS stops a converged job, issue 14).
LONG = {"iterations": 10000, "preview_interval_s": 0.0, "optimizer": "adam"}


GIMP_ROOT = os.environ.get("NEURAL_STYLE_GIMP_ROOT", "/opt/neural-style-ci/trixie-root")


def gimp_root_python():
    """The Debian 13 root's python3 (GIMP 3's Python on a Debian 12 machine), or None."""
    python = os.path.join(GIMP_ROOT, "usr", "bin", "python3")
    if not os.path.exists(python) or not os.path.isdir(os.path.join(GIMP_ROOT, "tmp")) or os.geteuid() != 0:
        return None
    return python


@pytest.fixture(scope="module")
def shared_engine(fake_weights):
    """One engine for this module (starting TensorFlow costs ~10 s of a shared CPU). Its socket lives
    in the GIMP root's /tmp when there is one, so a client inside that root can reach it too."""
    home = short_temp_dir(parent=os.path.join(GIMP_ROOT, "tmp") if gimp_root_python() else None)
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    try:
        with running_engine(endpoint, fake_weights, home=home, extra_args=(
                "--client-timeout", "4", "--max-queue", "4", "--max-pixels", str(MAX_PIXELS))) as engine:
            yield engine
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def client(shared_engine):
    with Client(shared_engine.endpoint, autostart=False) as c:
        yield c


def image(width, height, channels=4, dtype="u8", seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "f32":
        values = rng.uniform(0, 1, (height, width, channels)).astype("<f4")
    else:
        top = 255 if dtype == "u8" else 65535
        values = rng.integers(0, top + 1, (height, width, channels)).astype(p.DTYPES[dtype] == 1 and "<u1" or "<u2")
    return Pixels(width, height, channels, dtype, values.tobytes())


STYLE = StyleRef.pixels(image(32, 32, 3, seed=9), name="noise")


def as_array(pixels):
    dtype = {"u8": "<u1", "u16": "<u2", "f32": "<f4"}[pixels.dtype]
    return np.frombuffer(pixels.data, dtype).reshape(pixels.height, pixels.width, pixels.channels)


def first_progress(job, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = job.poll(0.2)
        if event is not None:
            assert event.type == "progress", event.header
            return event
    raise AssertionError("no progress within %g s" % timeout)


def cancel_and_wait(job, timeout=30):
    job.cancel()
    final = job.wait(timeout)
    assert final.type in ("cancelled", "result"), final.header
    return final


# ---------------------------------------------------------------------------------------------- jobs

def test_handshake(client, shared_engine):
    welcome = client.connect()
    assert welcome["protocol_version"] == 1 and welcome["type"] == "welcome"
    assert welcome["device"] == "CPU"
    assert welcome["engine_version"]
    assert welcome["limits"]["max_pixels"] == MAX_PIXELS
    assert welcome["limits"]["max_queue"] == 4
    assert {"submit", "cancel", "status", "shutdown", "styles"} <= set(welcome["capabilities"])
    assert welcome["pid"] == shared_engine.process.pid


def test_submit_progress_previews_and_result_in_the_sent_format(client):
    width, height = 40, 36
    mask = np.zeros((height, width), np.uint8)
    mask[8:28, 10:30] = 255
    job = client.submit(image(width, height, 3, "u16", seed=1), [STYLE],
                        {"iterations": 8, "max_size": 32, "preview_interval_s": 0.05, "feather": 2},
                        mask=Pixels(width, height, 1, "u8", mask.tobytes()))
    assert job.queue_position == 0 and isinstance(job.id, int)
    events = list(job.events())
    progress = [e for e in events if e.type == "progress"]
    assert events[-1].type == "result", events[-1].header
    assert progress and progress[-1].header["iteration"] == progress[-1].header["iterations"] == 8
    for key in ("stage", "scale", "scales", "content_loss", "style_loss", "tv_loss", "total_loss", "elapsed_s", "eta_s"):
        assert key in progress[-1].header
    previews = [e.pixels for e in progress if e.pixels is not None]
    assert previews, "no preview although preview_interval_s=0.05"
    result = events[-1].pixels
    for pixels in previews + [result]:
        # the whole image at the sent size, in the sent format; the mask added an alpha channel
        assert (pixels.width, pixels.height, pixels.channels, pixels.dtype) == (width, height, 4, "u16")
    values = as_array(result)
    assert events[-1].header["work_width"] == 32       # optimized at max_size, returned at the sent size
    assert values[0, 0, 3] == 0 and values[4, 4, 3] == 0              # outside the selection: transparent
    assert values[18, 20, 3] == 65535                                 # well inside: opaque
    assert 0 < values[8, 20, 3] < 65535                               # the soft edge
    assert values[..., :3].std() > 0


def test_gray_and_float_layers_come_back_as_sent(client):
    for source in (image(24, 20, 1, "u8", seed=2), image(20, 24, 2, "f32", seed=3)):
        final = client.submit(source, [STYLE], {"iterations": 2, "preview_interval_s": 0}).wait(120)
        assert final.type == "result", final.header
        out = final.pixels
        assert (out.width, out.height, out.channels, out.dtype) == (source.width, source.height,
                                                                     source.channels, source.dtype)
        if source.channels == 2:     # the source alpha is kept
            np.testing.assert_allclose(as_array(out)[..., 1], as_array(source)[..., 1], atol=1e-6)


def test_two_clients_at_once_each_get_only_their_own_events(shared_engine):
    outcomes = {}

    def work(name, size, seed):
        with Client(shared_engine.endpoint, autostart=False) as c:
            job = c.submit(image(size[0], size[1], 4, seed=seed), [STYLE],
                           {"iterations": 3, "preview_interval_s": 0.01})
            events = list(job.events())
            outcomes[name] = (job.id, events)

    threads = [threading.Thread(target=work, args=("a", (36, 28), 4)),
               threading.Thread(target=work, args=("b", (28, 36), 5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert set(outcomes) == {"a", "b"}
    assert outcomes["a"][0] != outcomes["b"][0]
    for name, size in (("a", (36, 28)), ("b", (28, 36))):
        job_id, events = outcomes[name]
        assert all(e.header["job"] == job_id for e in events)
        assert events[-1].type == "result"
        assert (events[-1].pixels.width, events[-1].pixels.height) == size


def test_cancel_while_queued_and_while_running(shared_engine, client):
    running = client.submit(image(32, 32, seed=6), [STYLE], LONG)
    first_progress(running)
    with Client(shared_engine.endpoint, autostart=False) as other:
        queued = other.submit(image(32, 32, seed=7), [STYLE], {"iterations": 3})
        assert queued.queue_position == 1
        status = other.status()
        assert status["queued"] == 1 and status["mine"] == [{"job": queued.id, "position": 1}]
        assert status["running"]["mine"] is False
        queued.cancel()
        assert queued.wait(10).type == "cancelled"
    # cancel() from another thread while this one waits for events
    threading.Timer(0.5, running.cancel).start()
    started = time.monotonic()
    assert running.wait(30).type == "cancelled"
    print("cancel from another thread -> cancelled: %.2f s (0.5 s of it the timer)" % (time.monotonic() - started))
    assert time.monotonic() - started < 15
    assert "running" not in client.status()


def test_queue_full_is_an_explicit_error(client):
    jobs = [client.submit(image(32, 32, seed=8), [STYLE], LONG)]
    first_progress(jobs[0])
    for _ in range(4):
        jobs.append(client.submit(image(32, 32, seed=8), [STYLE], LONG))
    with pytest.raises(JobFailed) as caught:
        client.submit(image(32, 32, seed=8), [STYLE], LONG)
    assert caught.value.code == "queue_full" and "queue is full" in str(caught.value)
    for job in reversed(jobs):
        cancel_and_wait(job)


def test_a_vanished_client_loses_its_jobs(shared_engine, client):
    script = (
        "import sys, numpy as np\n"
        "from shared.client import Client\n"
        "from shared.protocol import Pixels, StyleRef\n"
        "c = Client(sys.argv[1], autostart=False)\n"
        "img = Pixels(32, 32, 3, 'u8', bytes(32 * 32 * 3))\n"
        "job = c.submit(img, [StyleRef.pixels(img)], {'iterations': 10000, 'preview_interval_s': 0, 'optimizer': 'adam'})\n"
        "for event in job.events():\n"
        "    print(event.type, flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", script, shared_engine.endpoint], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "progress"
        assert client.status()["running"]["mine"] is False
    finally:
        child.kill()
        child.wait(10)
    vanished = time.monotonic()
    deadline = vanished + 60      # a hang: the engine's client timeout here is 4 s
    while "running" in client.status():
        assert time.monotonic() < deadline, "the vanished client's job is still running"
        time.sleep(0.5)
    print("the vanished client's job stopped after %.1f s" % (time.monotonic() - vanished))
    assert client.submit(image(24, 24, seed=1), [STYLE], {"iterations": 2}).wait(60).type == "result"


# ---------------------------------------------------------------------------------------------- bad input

def raw_socket(endpoint):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def ask(sock, frames, timeout=10.0):
    sock.send_multipart(frames)
    assert sock.poll(int(timeout * 1000)), "the engine did not answer %r" % (frames[0][:40],)
    header = msgpack.unpackb(sock.recv_multipart()[0], raw=False)
    return header


def test_malformed_messages_get_errors_and_the_engine_keeps_serving(shared_engine, client):
    sock = raw_socket(shared_engine.endpoint)
    good = p.build_submit(image(16, 16, 3), [STYLE], {"iterations": 1}, req=1)
    header = msgpack.unpackb(good[0], raw=False)

    def submit_with(**changes):
        changed = dict(header, **changes)
        return [msgpack.packb(changed)] + good[1:]

    cases = [
        ([b"\xc1\xc1"], "bad_message"),
        ([b""], "bad_message"),
        ([msgpack.packb([1, 2, 3])], "bad_message"),
        ([msgpack.packb({"v": 99, "type": "hello"})], "unsupported_version"),
        ([msgpack.packb({"v": 1, "type": "launch_missiles"})], "unknown_type"),
        ([msgpack.packb({"v": 1, "type": "hello"}), b"stray frame"], "bad_frame"),
        ([msgpack.packb({"v": 1, "type": "cancel", "job": 123456})], "unknown_job"),
        ([msgpack.packb({"v": 1, "type": "cancel", "job": "x"})], "invalid_field"),
        ([msgpack.packb({"v": 1, "type": "hello", "pad": "x" * (1 << 20)})], "too_large"),
        (good[:1] + [good[1][:-7]] + good[2:], "bad_frame"),                       # truncated pixels
        (good[:2], "bad_frame"),                                                   # a frame missing
        (submit_with(image=dict(header["image"], width=60000, height=60000)), "too_large"),
        (submit_with(options={"iterations": "many"}), "invalid_field"),
        (submit_with(styles=[{"kind": "file", "path": "relative.png"}])[:2], "invalid_field"),
        (submit_with(styles=[{"kind": "file", "path": "/no/such/style.png"}])[:2], "not_found"),
        (submit_with(styles=[{"kind": "library", "id": "0123456789abcdef"}])[:2], "style_not_found"),
        ([msgpack.packb({"v": 1, "type": "status", "req": [1]})], "invalid_field"),
    ]
    try:
        for frames, code in cases:
            answer = ask(sock, frames, timeout=30)
            assert answer["type"] == "error", (frames[0][:60], answer)
            assert answer["code"] == code, (frames[0][:60], answer)
            assert isinstance(answer["message"], str) and len(answer["message"]) > 10
        # A frame beyond MAXMSGSIZE: libzmq drops that connection; the engine itself is unaffected.
        sock.send_multipart([good[0], b"\0" * (4 << 20)])
    finally:
        sock.close(linger=0)
    welcome = Client(shared_engine.endpoint, autostart=False)
    try:
        assert welcome.connect()["protocol_version"] == 1
    finally:
        welcome.close()
    final = client.submit(image(24, 24, seed=2), [STYLE], {"iterations": 2}).wait(60)
    assert final.type == "result"
    assert shared_engine.process.poll() is None


def test_job_errors_name_the_field(client):
    with pytest.raises(JobFailed) as caught:
        client.submit(image(24, 24), [StyleRef.file("/no/such/style.png")], {"iterations": 2})
    assert caught.value.code == "not_found" and caught.value.field == "styles[0].path"
    assert "/no/such/style.png" in str(caught.value)


# ---------------------------------------------------------------------------------------------- style library

def test_style_library_messages(client, tmp_path):
    pixels = image(40, 30, 3, seed=11)
    added = client.add_style(pixels=pixels, name="Noise \"1\" / test", credit="tests")
    assert added["name"] == 'Noise "1" / test' and (added["width"], added["height"]) == (40, 30)
    assert added["thumbnail_png"].startswith(b"\x89PNG")
    listed = {style["id"]: style for style in client.list_styles()}
    assert added["id"] in listed and listed[added["id"]]["thumbnail_png"].startswith(b"\x89PNG")
    renamed = client.rename_style(added["id"], "Renamed")
    assert renamed["name"] == "Renamed"
    final = client.submit(image(24, 24, seed=3), [StyleRef.library(added["id"])], {"iterations": 2}).wait(60)
    assert final.type == "result", final.header
    pack = str(tmp_path / "pack.tfrecord")
    assert client.export_styles(pack, [added["id"]]) == 1
    client.remove_style(added["id"])
    assert added["id"] not in {style["id"] for style in client.list_styles()}
    imported = client.import_styles(pack)
    assert [style["name"] for style in imported] == ["Renamed"]
    with pytest.raises(JobFailed) as caught:
        client.rename_style("ffffffffffffffff", "x")
    assert caught.value.code == "style_not_found"
    with pytest.raises(JobFailed) as caught:
        client.add_style(path="relative/path.png", name="x")
    assert caught.value.code == "invalid_field" and caught.value.field == "path"


# ---------------------------------------------------------------------------------------------- editors' Pythons

DEBIAN_PYTHON = "/usr/bin/python3"


def plugin_copy_of_shared(folder):
    """shared/ copied into `folder` as the sub-package neural_style.shared, exactly as the plugins get it."""
    os.makedirs(os.path.join(folder, "neural_style"))
    open(os.path.join(folder, "neural_style", "__init__.py"), "w").close()
    shutil.copytree(os.path.join(REPO, "shared"), os.path.join(folder, "neural_style", "shared"))


def client_script(folder, dtype, report):
    """A script for an editor's Python: handshake, one 20x16 RGBA job of `dtype`, print `report`."""
    return (
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "from neural_style.shared.client import Client\n"
        "from neural_style.shared.protocol import Pixels, StyleRef\n"
        "c = Client(sys.argv[1], autostart=False)\n"
        "print(c.connect()['protocol_version'])\n"
        "img = Pixels(20, 16, 4, %r, bytes(range(256)) * %d)\n"
        "final = c.submit(img, [StyleRef.pixels(img)], {'iterations': 2, 'preview_interval_s': 0}).wait(120)\n"
        "print(%s)\n"
        "c.close()\n" % (folder, dtype, 5 if dtype == "u8" else 10, report))


def test_client_runs_in_debians_python_with_debians_pyzmq(shared_engine):
    """Krita 5.1 on Debian 12 embeds the system Python 3.11 with python3-zmq (pyzmq 24) and python3-msgpack."""
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import zmq, msgpack; print(zmq.__version__)"],
                           capture_output=True, text=True) if os.path.exists(DEBIAN_PYTHON) else None
    if probe is None or probe.returncode != 0:
        skip_or_fail("%s with python3-zmq and python3-msgpack is not installed (.ci/install_krita.sh)"
                     % DEBIAN_PYTHON)
    folder = short_temp_dir("nse-plugin-")
    try:
        plugin_copy_of_shared(folder)
        script = client_script(folder, "u8", "final.type, final.pixels.width, final.pixels.height, "
                                             "final.pixels.channels, len(final.pixels.data)")
        run = subprocess.run([DEBIAN_PYTHON, "-c", script, shared_engine.endpoint], capture_output=True, text=True,
                             timeout=180, cwd=folder)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["1", "result", "20", "16", "4", str(20 * 16 * 4)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_many_clients_at_once_complete_or_get_queue_full(shared_engine):
    """8 clients submit at the same moment into a queue of 4: each job completes or is refused with
    queue_full, and every client sees only its own job's events."""
    outcomes = {}
    barrier = threading.Barrier(8)

    def work(index):
        with Client(shared_engine.endpoint, autostart=False) as c:
            source = image(16 + index, 16, 3, seed=index)
            barrier.wait(30)
            try:
                job = c.submit(source, [STYLE], {"iterations": 2, "preview_interval_s": 0.01})
            except JobFailed as error:
                outcomes[index] = ("refused", error.code)
                return
            events = list(job.events())
            own = all(e.header["job"] == job.id for e in events)
            outcomes[index] = (events[-1].type, own and events[-1].pixels.width == 16 + index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(outcomes) == 8
    assert all(outcome in (("result", True), ("refused", "queue_full")) for outcome in outcomes.values()), outcomes
    assert sum(outcome[0] == "result" for outcome in outcomes.values()) >= 5      # 1 running + 4 waiting at least


def test_client_runs_in_gimps_python_in_the_debian_13_root(shared_engine):
    """GIMP 3 on a Debian 12 machine runs in a Debian 13 root: Python 3.13, python3-zmq (pyzmq 26)."""
    if gimp_root_python() is None:
        skip_or_fail("no Debian 13 root for GIMP 3 at %s (or not root, which chroot needs; "
                     ".ci/install_gimp.sh makes it)" % GIMP_ROOT)
    inside = short_temp_dir("nse-plugin-", parent=os.path.join(GIMP_ROOT, "tmp"))
    try:
        plugin_copy_of_shared(inside)
        folder = "/tmp/" + os.path.basename(inside)
        endpoint = "ipc://" + shared_engine.endpoint[len("ipc://" + GIMP_ROOT):]
        script = client_script(folder, "u16", "sys.version_info[0], sys.version_info[1], final.type, "
                                              "final.pixels.dtype, len(final.pixels.data)")
        run = subprocess.run(["chroot", GIMP_ROOT, "/usr/bin/python3", "-c", script, endpoint],
                             capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr
        lines = run.stdout.split()
        assert lines[0] == "1" and lines[3:] == ["result", "u16", str(20 * 16 * 4 * 2)], run.stdout
        assert (int(lines[1]), int(lines[2])) >= (3, 12)
    finally:
        shutil.rmtree(inside, ignore_errors=True)
