"""The engine's I/O loop in-process (a stand-in job runner, real ZeroMQ sockets): no message is dropped
silently, the loop never opens a file, the pidfile lock cannot be held twice, GPU memory is taken
as needed (issue 15, points 5, 9, 10)."""

import contextlib
import os
import threading
import time

import msgpack
import pytest
import zmq

from shared import protocol as p
from shared.client import Client
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import short_temp_dir

IMG = Pixels(8, 8, 3, "u8", bytes(8 * 8 * 3))


@contextlib.contextmanager
def engine_loop(run_job, limits=None, before_bind=None):
    """An EngineServer serving on a temporary ipc endpoint in a thread; yields (server, endpoint)."""
    from engine_server.daemon.server import EngineServer
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    server = EngineServer(endpoint, run_job, dict({"client_timeout_s": 30.0}, **(limits or {})),
                          context=zmq.Context())
    if before_bind is not None:
        before_bind(server)
    server.bind()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server, endpoint
    finally:
        server.stop()
        thread.join(30)
        assert not thread.is_alive()
        server.context.term()


def raw_dealer(endpoint, rcvhwm=1000):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.connect(endpoint)
    return sock


def send(sock, header, frames=()):
    sock.send_multipart([p.pack_header(header)] + list(frames))


def test_a_job_result_reaches_a_client_that_does_not_read_for_a_while():
    """The result must arrive even when the client's pipe was full of progress when it was sent."""
    def run_job(job, emit):
        for iteration in range(400):
            emit(job, p.message(p.PROGRESS, job=job.id, iteration=iteration), [bytes(32 * 1024)])
        emit(job, p.message(p.RESULT, job=job.id, image=IMG.descriptor(1)), [IMG.data])

    def small_pipes(server):
        server.router.setsockopt(zmq.SNDHWM, 4)

    with engine_loop(run_job, before_bind=small_pipes) as (server, endpoint):
        sock = raw_dealer(endpoint, rcvhwm=4)
        submit = p.build_submit(IMG, [StyleRef.pixels(IMG)], {"iterations": 2}, req=1)
        sock.send_multipart(submit)
        # Not reading (an editor busy elsewhere) while the job sends everything, beating meanwhile.
        for _ in range(20):
            time.sleep(0.1)
            send(sock, p.message(p.HEARTBEAT))
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not seen or seen[-1] not in p.JOB_END_TYPES):
            if sock.poll(200):
                seen.append(msgpack.unpackb(sock.recv_multipart()[0], raw=False)["type"])
            send(sock, p.message(p.HEARTBEAT))
        sock.close(linger=0)
    assert seen[0] == p.ACCEPTED and seen[-1] == p.RESULT, seen[-5:]


def test_style_files_are_checked_off_the_io_loop(monkeypatch, tmp_path):
    """A style file on a slow disk stalls only that submit, never another client's answers."""
    from engine_server.core import images
    release = threading.Event()
    real_check = images.check_image_file

    def slow_disk(path, *args, **kwargs):
        release.wait(20)
        return real_check(path, *args, **kwargs)

    monkeypatch.setattr(images, "check_image_file", slow_disk)
    style_path = str(tmp_path / "style.png")
    from PIL import Image
    Image.new("RGB", (16, 16), (200, 30, 30)).save(style_path)

    def run_job(job, emit):
        emit(job, p.message(p.RESULT, job=job.id, image=IMG.descriptor(1)), [IMG.data])

    with engine_loop(run_job) as (server, endpoint):
        slow = raw_dealer(endpoint)
        slow.send_multipart(p.build_submit(IMG, [StyleRef.file(style_path)], {"iterations": 2}, req=7))
        time.sleep(0.3)
        other = Client(endpoint, autostart=False, connect_timeout=3.0)
        try:
            started = time.monotonic()
            other.connect()
            other.status()
            answered = time.monotonic() - started
        finally:
            release.set()
            other.close()
        assert answered < 2.0, "another client waited %.1f s for the loop" % answered
        header = {"type": None}
        deadline = time.monotonic() + 20
        while header["type"] == p.HEARTBEAT or header["type"] is None:
            assert slow.poll(max(1, int((deadline - time.monotonic()) * 1000)))
            header = msgpack.unpackb(slow.recv_multipart()[0], raw=False)
        assert header["type"] == p.ACCEPTED and header["req"] == 7, header
        slow.close(linger=0)


def test_the_pidfile_lock_is_never_held_twice(tmp_path, monkeypatch):
    """An engine that opened the pidfile just before the running one stopped and removed it must not
    win a lock on that removed file while a third engine holds the new one."""
    from engine_server.daemon import lifecycle
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    endpoint = "ipc://" + str(tmp_path / "e.sock")
    first = lifecycle.InstanceLock(endpoint)
    first.acquire()
    early = os.open(first.path, os.O_RDWR)        # a starting engine has opened the file, not locked it yet
    first.release()
    second = lifecycle.InstanceLock(endpoint)
    second.acquire()
    real_open = os.open
    handed = []

    def open_early_once(path, *args, **kwargs):
        if path == first.path and not handed:
            handed.append(path)
            return early
        return real_open(path, *args, **kwargs)

    late = lifecycle.InstanceLock(endpoint)
    with monkeypatch.context() as patched:
        patched.setattr(lifecycle.os, "open", open_early_once)
        with pytest.raises(lifecycle.DaemonError):
            late.acquire()
    assert handed
    assert lifecycle.engine_holds_lock(endpoint)
    second.release()
    assert not lifecycle.engine_holds_lock(endpoint)


def test_gpu_memory_is_taken_as_needed_or_capped(monkeypatch):
    import tensorflow as tf
    from engine_server.daemon import devices
    calls = []
    gpus = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"),
            tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: calls.append(("growth", gpu.name, on)))
    monkeypatch.setattr(tf.config, "set_logical_device_configuration",
                        lambda gpu, configs: calls.append(("limit", gpu.name, configs[0].memory_limit)))
    devices.configure_gpus(None)
    assert calls == [("growth", gpu.name, True) for gpu in gpus]
    calls.clear()
    devices.configure_gpus(1536)
    assert calls == [("limit", gpu.name, 1536) for gpu in gpus]


def test_the_engine_configures_gpus_before_it_loads_the_model():
    import inspect
    from engine_server.daemon import lifecycle
    source = inspect.getsource(lifecycle._serve)
    assert source.index("configure_gpus(") < source.index("VGG19Features.load(")


def test_a_stopped_engine_is_noticed_at_once_and_is_not_reported_running_again():
    from shared.client import EngineUnavailable

    def run_job(job, emit):
        emit(job, p.message(p.RESULT, job=job.id, image=IMG.descriptor(1)), [IMG.data])

    with engine_loop(run_job) as (server, endpoint):
        client = Client(endpoint, autostart=False, lost_after=30.0)     # silence alone would take 30 s
        client.connect()
        assert client.engine_running()
        server.stop()
        stopped = time.monotonic()
        deadline = stopped + 10
        while client.engine_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        noticed = time.monotonic() - stopped
        assert noticed < 5.0, "noticed only after %.1f s" % noticed
        for _ in range(2):
            with pytest.raises(EngineUnavailable):
                client.connect()
        client.close()
