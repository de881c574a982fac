"""The engine's life cycle: run (foreground), start (background), stop, status.

One engine per user and endpoint: `run` holds an exclusive lock on the endpoint's pidfile in
shared.paths.state_dir() for as long as it lives. The kernel drops the lock when the process
dies, even by SIGKILL, so a pidfile or ipc socket left behind is recognisably stale and is
cleaned up by the next engine.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Optional

from shared import endpoints, paths

from ..logs import setup_logging
from .devices import configure_gpus, device_name

try:
    import fcntl
except ImportError:      # Windows: fall back to "is that pid alive"
    fcntl = None

log = logging.getLogger("engine_server")



class DaemonError(Exception):
    """The engine cannot be run/started/stopped; the message says why in one sentence."""


# ---------------------------------------------------------------------------------------------- pidfile

def pidfile_path(endpoint: str) -> str:
    return os.path.join(paths.state_dir(), "engine-%s.pid" % endpoints.endpoint_key(endpoint))


class InstanceLock:
    """The pidfile, exclusively locked by the running engine."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.path = pidfile_path(endpoint)
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        paths.ensure_private_dir(paths.state_dir())
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                owner = read_pid(self.endpoint)
                raise DaemonError("an engine is already running on %s%s" % (
                    self.endpoint, " (pid %d)" % owner if owner else ""))
            # The lock counts only on the file that is the pidfile now: an engine that stopped
            # removes its file (still holding the lock) before it lets go of it, so a lock won on
            # a file opened before that removal is on a file nobody else will look at.
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            except OSError:
                pass
            os.close(fd)
        if fcntl is None:
            owner = read_pid(self.endpoint)
            if owner and owner != os.getpid() and _alive(owner):
                os.close(fd)
                raise DaemonError("an engine is already running on %s (pid %d)" % (self.endpoint, owner))
        os.ftruncate(fd, 0)
        os.write(fd, ("%d\n%s\n" % (os.getpid(), self.endpoint)).encode("utf-8"))
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        """Remove the pidfile while still holding its lock; closing it then lets go of the lock."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def read_pid(endpoint: str) -> Optional[int]:
    try:
        with open(pidfile_path(endpoint), encoding="utf-8") as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def engine_holds_lock(endpoint: str) -> bool:
    """True while a live engine holds the endpoint's pidfile lock."""
    path = pidfile_path(endpoint)
    if not os.path.exists(path):
        return False
    if fcntl is None:
        pid = read_pid(endpoint)
        return bool(pid) and _alive(pid)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# ---------------------------------------------------------------------------------------------- security

def check_endpoint_security(endpoint: str, curve_folder: Optional[str] = None,
                            force_curve: bool = False) -> Optional[Dict[str, Any]]:
    """None for a local endpoint (unless force_curve); the CurveZMQ settings for any other, or
    DaemonError saying what is missing."""
    if endpoints.is_loopback(endpoint) and not force_curve:
        return None
    import zmq
    files = endpoints.curve_paths(curve_folder)
    if not zmq.has("curve"):
        raise DaemonError("refusing to listen on %s: it is reachable from other machines and needs CurveZMQ "
                          "encryption, which this libzmq lacks" % endpoint)
    missing = []
    if not os.path.isfile(files["server_secret"]):
        missing.append("the server key pair %s" % files["server_secret"])
    authorized = files["authorized"]
    if not os.path.isdir(authorized) or not any(name.endswith(".key") for name in os.listdir(authorized)):
        missing.append("at least one authorized client key (*.key) in %s" % authorized)
    if missing:
        raise DaemonError("refusing to listen on %s: it is reachable from other machines (or --curve was given), "
                          "so it needs CurveZMQ keys, but %s %s missing (see docs/protocol.md, \"Remote engines\")"
                          % (endpoint, " and ".join(missing), "are" if len(missing) > 1 else "is"))
    import zmq.auth
    public, secret = zmq.auth.load_certificate(files["server_secret"])
    return {"public": public, "secret": secret, "authorized": authorized}


# ---------------------------------------------------------------------------------------------- run

def run(endpoint: Optional[str] = None, weights: Optional[str] = None, limits: Optional[Dict[str, Any]] = None,
        library_folder: Optional[str] = None, quiet: bool = False, curve_folder: Optional[str] = None,
        force_curve: bool = False, job_memory_bytes: Optional[int] = None, precision: str = "auto",
        idle_timeout: float = 0.0, gpu_memory_mib: Optional[int] = None, nice: int = 0) -> None:
    """Serve until stopped (SIGTERM, SIGINT or a shutdown message). Raises DaemonError with a sentence.
    `nice` lowers the CPU priority by that many steps first (before TensorFlow starts its threads)."""
    try:
        endpoint = endpoints.resolve(endpoint)
    except endpoints.EndpointError as error:
        raise DaemonError(str(error))
    curve = check_endpoint_security(endpoint, curve_folder, force_curve)
    lock = InstanceLock(endpoint)
    lock.acquire()
    try:
        log_path = setup_logging(to_stderr=not quiet)
        log.info("engine starting on %s (pid %d)", endpoint, os.getpid())
        lower_cpu_priority(nice)
        _serve(endpoint, weights, limits, library_folder, curve, log_path, job_memory_bytes, precision,
               idle_timeout, gpu_memory_mib)
    except DaemonError as error:
        # The caller prints the sentence on stderr; the log file gets it too (not stderr twice).
        log.error("the engine did not start: %s", error, extra={"file_only": True})
        raise
    finally:
        lock.release()


def lower_cpu_priority(steps: int) -> None:
    """Lower this process's CPU priority by `steps`. On Linux a thread's priority is its own and the
    threads it creates inherit it, so this runs before TensorFlow creates its thread pools. Measured
    (docs/benchmarks.md, "Krita's event loop during a job"): at the same priority, the engine's
    threads kept the display server and Krita's canvas from the CPU for up to 60 ms at a time."""
    if steps <= 0 or not hasattr(os, "nice"):
        return
    try:
        log.info("CPU priority lowered by %d (nice %d): the editor and the desktop come first", steps, os.nice(steps))
    except OSError as error:
        log.warning("could not lower the CPU priority: %s", error)


def _serve(endpoint, weights, limits, library_folder, curve, log_path, job_memory_bytes, precision,
           idle_timeout=0.0, gpu_memory_mib=None) -> None:
    from shared import protocol as p

    from ..core.errors import EngineError
    from ..core.weights import check_weights_file

    weights_path = paths.weights_path(weights)
    try:
        check_weights_file(os.path.abspath(os.path.expanduser(weights_path)))   # before TensorFlow's slow import
    except EngineError as error:
        raise DaemonError(error.message)
    from ..core import memory
    from .job_runner import StylizeRunner
    from ..core.model import VGG19Features
    from .server import EngineServer

    configure_gpus(gpu_memory_mib)
    try:
        model = VGG19Features.load(weights_path, precision=precision)
    except EngineError as error:
        raise DaemonError(error.message)
    log.info("VGG-19 on %s, convolutions in %s", model.device, model.precision)
    memory.set_job_limit(job_memory_bytes)
    library = _open_library(library_folder, weights_path, model.precision)
    path = endpoints.ipc_path(endpoint)
    if path:
        folder = os.path.dirname(path)
        if not os.path.isdir(folder) or folder == paths.runtime_dir():
            try:
                paths.ensure_private_dir(folder)      # the default folder is always made 0700 again
            except OSError as error:
                raise DaemonError("cannot make the socket folder %s private (0700): %s" % (folder, error.strerror))
        if os.path.exists(path):
            log.info("removing the stale socket %s left by an engine that died", path)
            os.unlink(path)
    max_pixels = int(dict(p.DEFAULT_LIMITS, **(limits or {}))["max_pixels"])
    server = EngineServer(endpoint, StylizeRunner(model, library, max_pixels=max_pixels), limits,
                          device=device_name(model), library=library, curve=curve, log_path=log_path,
                          idle_timeout=idle_timeout)
    try:
        server.bind()
    except Exception as error:
        server.router.close(linger=0)
        raise DaemonError("cannot listen on %s: %s" % (endpoint, error))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop())
    server.serve()


def _open_library(folder: Optional[str], weights_path: str, precision: str) -> Any:
    try:
        from ..library import StyleLibrary, weights_tag
    except ImportError as error:
        log.warning("no style library in this engine (%s): library calls answer \"unsupported\"", error)
        return None
    try:
        # Grams computed in another precision differ slightly, so they are cached apart.
        tag = weights_tag(weights_path) + ("" if precision == "float32" else "-" + precision)
        return StyleLibrary(folder, model_tag=tag)
    except Exception as error:
        log.warning("the style library could not be opened (%s): library calls answer \"unsupported\"", error)
        return None


# ---------------------------------------------------------------------------------------------- start / stop / status

def _client(endpoint: str, timeout: float = 2.0):
    from shared.client import Client
    return Client(endpoint, autostart=False, connect_timeout=timeout)


def probe(endpoint: str, timeout: float = 2.0) -> Optional[Dict[str, Any]]:
    """The welcome map of an engine answering on `endpoint`, or None."""
    from shared.client import ClientError
    client = _client(endpoint, timeout)
    try:
        return client.connect()
    except ClientError:
        return None
    finally:
        client.close()


def run_command(endpoint: str, weights: Optional[str], extra: Optional[list] = None) -> list:
    command = [sys.executable, "-m", "engine_server", "run", "--endpoint", endpoint, "--quiet"]
    if weights:
        command += ["--weights", weights]
    return command + list(extra or [])


def start(endpoint: Optional[str] = None, weights: Optional[str] = None, timeout: float = 120.0,
          extra: Optional[list] = None) -> Dict[str, Any]:
    """Start a background engine (unless one answers already); returns its welcome map."""
    try:
        endpoint = endpoints.resolve(endpoint)
    except endpoints.EndpointError as error:
        raise DaemonError(str(error))
    check_endpoint_security(endpoint)
    welcome = probe(endpoint, 1.0) if engine_holds_lock(endpoint) or not endpoints.ipc_path(endpoint) else None
    if welcome is not None:
        return welcome
    paths.ensure_private_dir(paths.state_dir())
    output_path = os.path.join(paths.state_dir(), "engine-%s.start.log" % endpoints.endpoint_key(endpoint))
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(output_path, "wb") as output:
        process = subprocess.Popen(run_command(endpoint, weights, extra), stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, close_fds=True, start_new_session=True, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            with open(output_path, encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
            reason = lines[-1] if lines else "exit code %d" % code
            if reason.lower().startswith("error: "):
                reason = reason[len("error: "):]
            if "already running" in reason:
                welcome = probe(endpoint, 2.0)
                if welcome is not None:
                    return welcome
            raise DaemonError("the engine did not start: %s (log: %s)" % (reason, output_path))
        if not endpoints.ipc_path(endpoint) or os.path.exists(endpoints.ipc_path(endpoint)):
            welcome = probe(endpoint, 1.0)
            if welcome is not None:
                return welcome
        time.sleep(0.2)
    raise DaemonError("the engine did not answer on %s within %g s; see %s" % (endpoint, timeout, paths.log_path()))


def stop(endpoint: Optional[str] = None, timeout: float = 30.0) -> Optional[int]:
    """Stop the engine on `endpoint`; returns its pid, or None when none was running."""
    endpoint = endpoints.resolve(endpoint)
    # Only a pid from a pidfile whose lock is held is signalled: that is an engine on this machine.
    # The pid in a welcome may be another machine's (an engine behind a tunnel or on tcp).
    pid = read_pid(endpoint) if engine_holds_lock(endpoint) else None
    from shared.client import ClientError, JobFailed
    client = _client(endpoint, 2.0)
    answered = False
    try:
        client.connect()
        client.shutdown()
        answered = True
    except JobFailed as error:
        raise DaemonError("the engine on %s refused to stop: %s" % (endpoint, error.message))
    except ClientError:
        pass
    finally:
        client.close()
    if pid is None:
        return None if not answered else -1
    deadline = time.monotonic() + timeout
    signals = [(deadline - timeout / 3, signal.SIGTERM), (deadline, getattr(signal, "SIGKILL", signal.SIGTERM))]
    if not answered:
        os.kill(pid, signal.SIGTERM) if _alive(pid) else None
    while engine_holds_lock(endpoint) or (fcntl is None and _alive(pid)):
        now = time.monotonic()
        if signals and now >= signals[0][0]:
            _, signum = signals.pop(0)
            log.info("engine pid %d still running: sending signal %d", pid, signum)
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                break
        if not signals and now >= deadline + 5:
            raise DaemonError("the engine (pid %d) did not stop" % pid)
        time.sleep(0.1)
    return pid


def status(endpoint: Optional[str] = None) -> tuple:
    """(exit code, one sentence): 0 when an engine answers, 1 when none does."""
    endpoint = endpoints.resolve(endpoint)
    from shared.client import ClientError
    client = _client(endpoint, 3.0)
    try:
        welcome = client.connect()
        report = client.status()
    except ClientError as error:
        held = engine_holds_lock(endpoint)
        if held:
            return 1, "the engine (pid %s) holds %s but does not answer on %s: %s" % (
                read_pid(endpoint), pidfile_path(endpoint), endpoint, error)
        return 1, "no engine answers on %s" % endpoint
    finally:
        client.close()
    return 0, ("engine %s answers on %s: pid %s, device %s, %s, %d queued, up %.0f s" % (
        welcome.get("engine_version"), endpoint, welcome.get("pid"), welcome.get("device"),
        "busy" if report.get("running") else "idle", report.get("queued", 0), report.get("uptime_s", 0)))
