"""Fixture `engine`: a real `python -m engine_server run` subprocess on a temporary ipc endpoint.

Also `running_engine(endpoint, weights, extra_env=None)`, a plain context manager for tests that
need their own engine (editor tests, kill/restart tests). The engine always gets private
XDG_* folders (state, data, config, runtime) so it never touches the real user's files, and it
is always killed at the end.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT_S = 180.0      # TensorFlow's import alone takes a while on a busy 2-core machine


class EngineProcess:
    def __init__(self, endpoint, process, home, log_path):
        self.endpoint = endpoint
        self.process = process
        self.home = home              # the engine's private XDG folders live here
        self.log_path = log_path      # its stdout + stderr

    @property
    def env(self):
        """The XDG variables the engine runs with (for a second engine or a CLI call that should match)."""
        return engine_env(self.home)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


def kill_engine_pid(pid):
    """SIGKILL process `pid` if it is still an engine (a pid that was reused is left alone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"engine_server" not in f.read():
                return
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def short_temp_dir(prefix="nse-", parent=None):
    """A temp folder with a short path (ipc socket paths are limited to ~100 bytes)."""
    return tempfile.mkdtemp(prefix=prefix, dir=parent or ("/tmp" if os.path.isdir("/tmp") else None))


def engine_env(home, extra_env=None, repo=REPO):
    env = dict(os.environ)
    env.update({
        "XDG_STATE_HOME": os.path.join(home, "state"),
        "XDG_DATA_HOME": os.path.join(home, "data"),
        "XDG_CONFIG_HOME": os.path.join(home, "config"),
        "XDG_RUNTIME_DIR": os.path.join(home, "run"),
        "PYTHONPATH": repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
    })
    env.pop("NEURAL_STYLE_ENDPOINT", None)
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
    env.update(extra_env or {})
    return env


def wait_until_answering(endpoint, process=None, timeout=START_TIMEOUT_S, log_path=None):
    """Poll with hello until the engine answers; fail with its log if it exits or times out."""
    from shared.client import Client, ClientError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("the engine exited with code %s before answering:\n%s"
                               % (process.returncode, _read(log_path)))
        path = endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None
        if path is None or os.path.exists(path):
            client = Client(endpoint, autostart=False, connect_timeout=1.0)
            try:
                return client.connect()
            except ClientError:
                pass
            finally:
                client.close()
        time.sleep(0.2)
    raise RuntimeError("the engine did not answer on %s within %g s:\n%s" % (endpoint, timeout, _read(log_path)))


def _read(path):
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]
    except OSError:
        return ""


@contextlib.contextmanager
def running_engine(endpoint, weights, extra_env=None, extra_args=(), home=None, wait=True, repo=REPO):
    """Start `python -m engine_server run` on `endpoint` (the sources in `repo`: another folder runs an
    older engine); yield an EngineProcess; always kill it."""
    own_home = home is None
    home = home or short_temp_dir()
    log_path = os.path.join(home, "engine-stdio.log")
    command = [sys.executable, "-m", "engine_server", "run", "--endpoint", endpoint, "--weights", weights]
    command += list(extra_args)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=repo, env=engine_env(home, extra_env, repo), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = EngineProcess(endpoint, process, home, log_path)
    try:
        if wait:
            wait_until_answering(endpoint, process, log_path=log_path)
        yield engine
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        engine.kill()
        if own_home:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def engine(fake_weights):
    """A real engine on a temporary ipc endpoint with the fake VGG-19 weights (.endpoint, .process)."""
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    try:
        with running_engine(endpoint, fake_weights, home=home,
                            extra_args=("--client-timeout", "4", "--max-queue", "4")) as process:
            yield process
    finally:
        shutil.rmtree(home, ignore_errors=True)
