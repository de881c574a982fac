"""Starting the engine on demand: which command runs it (the caller's, $NEURAL_STYLE_ENGINE or the
installer's engine.json), and launching it until it answers."""

import json
import os
import shlex
import subprocess
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

from . import endpoints, paths
from .client_errors import EngineUnavailable


def maybe_listening(endpoint: str) -> bool:
    """False when an ipc socket file is not there (no engine); EngineUnavailable when it is another user's."""
    path = endpoints.ipc_path(endpoint)
    if path is None:
        return True
    try:
        os.stat(path)
    except PermissionError:
        raise EngineUnavailable("the engine socket %s belongs to another user (permission denied); "
                                "each user runs their own engine" % path)
    except OSError:
        return False
    if not os.access(path, os.W_OK):      # libzmq would retry the refused connect silently forever
        raise EngineUnavailable("the engine socket %s belongs to another user (permission denied); "
                                "each user runs their own engine" % path)
    return True


def engine_command(explicit: Any = None, weights: Optional[str] = None) -> tuple:
    """(argv, weights or None) of the command that runs `-m engine_server`, or (None, None)."""
    if explicit:
        return (shlex.split(explicit) if isinstance(explicit, str) else list(explicit)), weights
    if os.environ.get(paths.ENGINE_COMMAND_ENV):
        return shlex.split(os.environ[paths.ENGINE_COMMAND_ENV]), weights
    config_path = paths.engine_config_path()
    if os.path.exists(config_path):
        try:
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
            command = config["command"]
            if not isinstance(command, list) or not all(isinstance(part, str) for part in command):
                raise ValueError("command is not a list of strings")
        except (OSError, ValueError, KeyError) as error:
            raise EngineUnavailable("the engine settings %s are unreadable (%s); run: python3 installer.py"
                                    % (config_path, error))
        return command, weights or config.get("weights")
    return None, None


def start(command: List[str], endpoint: str, weights: Optional[str], timeout: float,
          maybe_listening: Callable[[], bool], hello: Callable[[float], Optional[Dict[str, Any]]],
          idle_timeout: float = 0.0) -> Dict[str, Any]:
    """Run `command start --endpoint ENDPOINT --idle-timeout S` and say hello until the engine answers
    (the welcome map) or `timeout` passes; EngineUnavailable with the engine's own last line if it fails."""
    argv = list(command) + ["start", "--endpoint", endpoint, "--idle-timeout", "%g" % max(0.0, idle_timeout)]
    if weights:
        argv += ["--weights", weights]
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as output:
        try:
            launcher = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                        close_fds=True, start_new_session=True)
        except OSError as error:
            raise EngineUnavailable("the engine could not be started with %s: %s" % (argv[0], error.strerror))
        try:
            while time.monotonic() < deadline:
                code = launcher.poll()
                if code not in (None, 0):
                    output.seek(0)
                    lines = [line.strip() for line in output.read().decode("utf-8", "replace").splitlines()
                             if line.strip()]
                    reason = lines[-1] if lines else "exit code %d" % code
                    for prefix in ("error: ", "the engine did not start: "):   # the CLI's own framing
                        if reason.lower().startswith(prefix):
                            reason = reason[len(prefix):]
                    raise EngineUnavailable("the engine could not be started: %s" % reason)
                if maybe_listening():
                    welcome = hello(min(1.0, max(0.05, deadline - time.monotonic())))
                    if welcome is not None:
                        return welcome
                else:
                    time.sleep(0.1)
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait()
    raise EngineUnavailable("the engine did not answer on %s within %g s of being started"
                            % (endpoint, timeout))
