"""Per-user folders and default locations, the same for the engine, the plugins and the installer.

Standard library only: the installer (`installing/project.py`) loads this by file before anything
else is installed.
Every function reads the environment when called, so tests can point HOME/XDG_* elsewhere.
"""

import os
import sys
import tempfile

APP = "neural-style"
WEIGHTS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
ENDPOINT_ENV = "NEURAL_STYLE_ENDPOINT"
WEIGHTS_ENV = "NEURAL_STYLE_WEIGHTS"
ENGINE_COMMAND_ENV = "NEURAL_STYLE_ENGINE"   # a command line that runs `-m engine_server`'s Python


def _home() -> str:
    return os.path.expanduser("~")


def _xdg(variable: str, fallback: str) -> str:
    value = os.environ.get(variable)
    return value if value and os.path.isabs(value) else os.path.join(_home(), fallback)


def data_dir() -> str:
    """Weights, style library, the engine's venv."""
    if sys.platform == "win32":
        return os.path.join(os.environ.get("LOCALAPPDATA") or os.path.join(_home(), "AppData", "Local"), APP)
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", APP)
    return os.path.join(_xdg("XDG_DATA_HOME", os.path.join(".local", "share")), APP)


def config_dir() -> str:
    """engine.json (how to start the engine), CurveZMQ keys."""
    if sys.platform in ("win32", "darwin"):
        return data_dir()
    return os.path.join(_xdg("XDG_CONFIG_HOME", ".config"), APP)


def state_dir() -> str:
    """Logs and the pidfile."""
    if sys.platform in ("win32", "darwin"):
        return os.path.join(data_dir(), "state")
    return os.path.join(_xdg("XDG_STATE_HOME", os.path.join(".local", "state")), APP)


def runtime_dir() -> str:
    """A private (0700) folder for the ipc socket: $XDG_RUNTIME_DIR/neural-style, else a per-user temp folder."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return os.path.join(base, APP)
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return os.path.join(tempfile.gettempdir(), "%s-%s" % (APP, user))


def ensure_private_dir(path: str) -> str:
    """Create `path` (and parents) with mode 0700 and return it."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if hasattr(os, "getuid"):
        os.chmod(path, 0o700)
    return path


def default_weights_path() -> str:
    return os.path.join(data_dir(), "weights", WEIGHTS_FILENAME)


def weights_path(explicit: str = None) -> str:
    """--weights, then $NEURAL_STYLE_WEIGHTS, then the installer's location."""
    return explicit or os.environ.get(WEIGHTS_ENV) or default_weights_path()


def engine_config_path() -> str:
    """Written by the installer: {"command": [python, "-m", "engine_server"], ...}."""
    return os.path.join(config_dir(), "engine.json")


def library_dir() -> str:
    return os.path.join(data_dir(), "styles")


def log_path() -> str:
    return os.path.join(state_dir(), "engine.log")
