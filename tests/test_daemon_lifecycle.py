"""The engine's life cycle: SIGKILL and a clean restart, one instance per endpoint, refusing a public
endpoint without CurveZMQ, auto-start from the client, start/status/stop, stylize --engine."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from shared import endpoints
from shared.client import Client, EngineLost, EngineRefused, EngineUnavailable
from shared.explain import BY_KIND, explain
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO, engine_env, running_engine, short_temp_dir

LOST_WITHIN_S = 50.0     # a hang, not a busy machine: normally the client's 5 s silence bound


def engine_cli(args, env, timeout=240):
    return subprocess.run([sys.executable, "-m", "engine_server"] + list(args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def pidfile(home, endpoint):
    return os.path.join(home, "state", "neural-style", "engine-%s.pid" % endpoints.endpoint_key(endpoint))


def test_sigkill_mid_job_is_noticed_and_a_new_engine_starts_cleanly(fake_weights):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    socket_path = endpoint[len("ipc://"):]
    img = Pixels(32, 32, 3, "u8", bytes(32 * 32 * 3))
    with running_engine(endpoint, fake_weights, home=home) as first:
        assert oct(os.stat(socket_path).st_mode & 0o777) == "0o600"
        assert oct(os.stat(os.path.dirname(pidfile(home, endpoint))).st_mode & 0o777) == "0o700"
        client = Client(endpoint, autostart=False)
        job = client.submit(img, [StyleRef.pixels(img)], {"iterations": 10000, "preview_interval_s": 0,
                                                                "optimizer": "adam"})   # never stops early
        assert job.poll(60).type == "progress"
        os.kill(first.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(EngineLost) as caught:
            job.wait(LOST_WITHIN_S + 30)
        print("SIGKILL noticed by the waiting client after %.2f s" % (time.monotonic() - killed))
        assert time.monotonic() - killed < LOST_WITHIN_S
        assert "stopped answering" in str(caught.value)
        client.close()
        first.process.wait(10)
        assert os.path.exists(socket_path) and os.path.exists(pidfile(home, endpoint))   # left behind, stale
    with running_engine(endpoint, fake_weights, home=home) as second:
        with open(pidfile(home, endpoint)) as f:
            assert int(f.readline()) == second.process.pid
        with Client(endpoint, autostart=False) as client:
            assert client.submit(img, [StyleRef.pixels(img)], {"iterations": 2}).wait(120).type == "result"
        # one instance per user and endpoint
        duplicate = engine_cli(["run", "--endpoint", endpoint, "--weights", fake_weights], second.env)
        assert duplicate.returncode == 2
        assert "already running on %s (pid %d)" % (endpoint, second.process.pid) in duplicate.stderr
        assert second.process.poll() is None
    assert not os.path.exists(socket_path) and not os.path.exists(pidfile(home, endpoint))


def test_a_public_endpoint_without_curve_keys_is_refused(fake_weights):
    home = short_temp_dir()
    result = engine_cli(["run", "--endpoint", "tcp://0.0.0.0:45791", "--weights", fake_weights], engine_env(home),
                        timeout=120)
    assert result.returncode == 2
    assert "refusing to listen on tcp://0.0.0.0:45791" in result.stderr and "CurveZMQ" in result.stderr
    assert "Traceback" not in result.stderr


def test_autostart_then_status_start_and_stop(fake_weights, monkeypatch):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    env = engine_env(home)
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "PYTHONPATH"):
        monkeypatch.setenv(name, env[name])
    pid = None
    try:
        client = Client(endpoint, engine_command=[sys.executable, "-m", "engine_server"], weights=fake_weights,
                        start_timeout=240)
        welcome = client.connect()
        pid = welcome["pid"]
        img = Pixels(24, 24, 4, "u8", bytes(24 * 24 * 4))
        assert client.submit(img, [StyleRef.pixels(img)], {"iterations": 2}).wait(120).type == "result"
        client.close()

        status = engine_cli(["status", "--endpoint", endpoint], env)
        assert status.returncode == 0, status.stderr
        assert "answers on %s" % endpoint in status.stdout and "pid %d" % pid in status.stdout
        again = engine_cli(["start", "--endpoint", endpoint, "--weights", fake_weights], env)
        assert again.returncode == 0 and "pid %d" % pid in again.stdout       # the running one, not a second
        stop = engine_cli(["stop", "--endpoint", endpoint], env)
        assert stop.returncode == 0 and "engine stopped" in stop.stdout, stop.stderr
        status = engine_cli(["status", "--endpoint", endpoint], env)
        assert status.returncode == 1 and "no engine answers on %s" % endpoint in status.stdout
        assert not os.path.exists(endpoint[len("ipc://"):]) and not os.path.exists(pidfile(home, endpoint))
        with open(os.path.join(home, "state", "neural-style", "engine.log")) as f:
            assert "serving on %s" % endpoint in f.read()
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_autostart_failures_are_clear(fake_weights, monkeypatch, tmp_path):
    home = short_temp_dir()
    env = engine_env(home)
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "PYTHONPATH"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("NEURAL_STYLE_ENGINE", raising=False)
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    with pytest.raises(EngineUnavailable) as caught:
        Client(endpoint, start_timeout=5).connect()
    assert "python3 installer.py" in str(caught.value)
    # $NEURAL_STYLE_ENGINE is used, and the engine's own reason comes back
    monkeypatch.setenv("NEURAL_STYLE_ENGINE", "%s -m engine_server" % sys.executable)
    started = time.monotonic()
    with pytest.raises(EngineUnavailable) as caught:
        Client(endpoint, start_timeout=240, weights=str(tmp_path / "missing.h5")).connect()
    assert "missing.h5" in str(caught.value) and "could not be started" in str(caught.value)
    assert time.monotonic() - started < 240
    with pytest.raises(EngineUnavailable) as caught:
        Client(endpoint, autostart=False).connect()
    assert "no engine answers on %s" % endpoint in str(caught.value)


def test_stylize_through_the_engine_gives_the_same_image(engine, fake_weights, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(str(tmp_path / "content.png"))
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(str(tmp_path / "style.png"))
    common = ["stylize", str(tmp_path / "content.png"), str(tmp_path / "style.png"), "--iterations", "4",
              "--size", "32", "--weights", fake_weights]
    local = engine_cli(common + ["-o", str(tmp_path / "local.png")], engine.env)
    assert local.returncode == 0, local.stderr
    remote = engine_cli(common + ["-o", str(tmp_path / "remote.png"), "--engine", engine.endpoint], engine.env)
    assert remote.returncode == 0, remote.stderr
    a = np.asarray(Image.open(str(tmp_path / "local.png")))
    b = np.asarray(Image.open(str(tmp_path / "remote.png")))
    assert a.shape == b.shape == (27, 32, 3)
    assert np.array_equal(a, b), "max difference %d" % np.abs(a.astype(int) - b.astype(int)).max()


def test_curve_lets_only_authorized_clients_in(fake_weights):
    import shutil
    import socket
    import zmq.auth

    home = short_temp_dir()
    server_dir = os.path.join(home, "server")
    os.makedirs(os.path.join(server_dir, "authorized_clients"))
    zmq.auth.create_certificates(server_dir, "server")
    folders = {}
    for name in ("authorized", "stranger"):
        folders[name] = os.path.join(home, name)
        os.makedirs(folders[name])
        zmq.auth.create_certificates(folders[name], "client")
        shutil.copy(os.path.join(server_dir, "server.key"), folders[name])
    shutil.copy(os.path.join(folders["authorized"], "client.key"),
                os.path.join(server_dir, "authorized_clients", "client.key"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = "tcp://127.0.0.1:%d" % port
    with running_engine(endpoint, fake_weights, home=home, wait=False,
                        extra_args=("--curve", "--curve-dir", server_dir)) as engine:
        deadline = time.monotonic() + 240
        while True:
            assert engine.process.poll() is None, engine.log_tail()
            try:
                welcome = Client(endpoint, autostart=False, curve=True, curve_dir=folders["authorized"],
                                 connect_timeout=1.0).connect()
                break
            except EngineUnavailable:
                assert time.monotonic() < deadline, engine.log_tail()
        assert welcome["pid"] == engine.process.pid
        # A refused key is told apart from silence (ZeroMQ's handshake events), at once, and said so.
        for client in (Client(endpoint, autostart=False, curve=True, curve_dir=folders["stranger"],
                              connect_timeout=30.0),
                       Client(endpoint, autostart=False, curve=False, connect_timeout=30.0)):
            started = time.monotonic()
            with pytest.raises(EngineRefused) as caught:
                client.connect()
            assert time.monotonic() - started < 25.0, "waited for the timeout instead of the refusal"
            assert "refused this client's key" in str(caught.value)
            assert explain(caught.value).summary == BY_KIND["EngineRefused"]
            client.close()
        # Silence (nothing listens) is still EngineUnavailable, not a refusal.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            silent = "tcp://127.0.0.1:%d" % probe.getsockname()[1]
        with pytest.raises(EngineUnavailable):
            Client(silent, autostart=False, curve=True, curve_dir=folders["authorized"], connect_timeout=1.0).connect()
