"""Helpers (no tests) for the installer tests: a throwaway user (HOME/XDG folders), a copy of the checkout,
running `installer.py` as a subprocess, and snapshots of a folder tree."""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKOUT_PARTS = ("installer.py", "installing", "pyproject.toml", "README.md", "LICENSE", "samples", "shared",
                  "engine_server", "plugin_krita", "plugin_gimp", "docs")
TIMEOUT = 300


def copy_checkout(target):
    """What a user unpacks: the installer and everything it installs, without caches.

    A copy keeps the tests independent of edits made in the working tree meanwhile, and keeps
    pip's build litter (build/, *.egg-info) out of it."""
    os.makedirs(target, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in CHECKOUT_PARTS:
        source = os.path.join(REPO, part)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, part), ignore=ignore)
        elif os.path.exists(source):
            shutil.copy2(source, os.path.join(target, part))
    return target


class User:
    """A temporary user: HOME and XDG folders under `root`, an environment to run the installer in."""

    def __init__(self, root, checkout):
        self.root = str(root)
        self.checkout = checkout
        self.home = os.path.join(self.root, "home")
        self.config = os.path.join(self.home, ".config")
        self.data = os.path.join(self.home, ".local", "share")
        self.state = os.path.join(self.home, ".local", "state")
        runtime = os.path.join(self.root, "runtime")
        os.makedirs(self.home)
        os.makedirs(runtime, mode=0o700)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("NEURAL_STYLE_", "XDG_", "PYTHON", "VIRTUAL_ENV"))}
        self.env.update(HOME=self.home, XDG_CONFIG_HOME=self.config, XDG_DATA_HOME=self.data,
                        XDG_STATE_HOME=self.state, XDG_CACHE_HOME=os.path.join(self.home, ".cache"),
                        XDG_RUNTIME_DIR=runtime, PYTHONDONTWRITEBYTECODE="1", TF_CPP_MIN_LOG_LEVEL="3",
                        # --reuse-env runs the engine with this Python: make the checkout importable,
                        # as `installer.py --dev` (an editable install) does on a developer's machine.
                        PYTHONPATH=checkout)

    # where things go (Linux layout, docs/install.md)
    @property
    def pykrita(self):
        return os.path.join(self.data, "krita", "pykrita")

    @property
    def gimp_plugins(self):
        return os.path.join(self.config, "GIMP", "3.0", "plug-ins")

    @property
    def kritarc(self):
        return os.path.join(self.config, "kritarc")

    @property
    def weights(self):
        return os.path.join(self.data, "neural-style", "weights", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")

    @property
    def engine_json(self):
        return os.path.join(self.config, "neural-style", "engine.json")

    @property
    def unit(self):
        return os.path.join(self.config, "systemd", "user", "neural-style-engine.service")

    def fake_editors(self):
        """The folders GIMP 3 and Krita create on their first start."""
        os.makedirs(os.path.join(self.config, "GIMP", "3.0"))
        os.makedirs(os.path.join(self.data, "krita"))

    def run(self, *args, python=sys.executable, timeout=TIMEOUT):
        done = subprocess.run([python, os.path.join(self.checkout, "installer.py")] + list(args),
                              env=self.env, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout)
        done.output = done.stdout
        return done

    def install(self, weights, *extra):
        done = self.run("--reuse-env", "--weights", weights, "--no-verify", "--no-start", *extra)
        assert done.returncode == 0, done.output
        assert "Traceback" not in done.output, done.output
        return done


def snapshot(root):
    """{relative path: (kind, mode, sha256 or link target)} of everything under root."""
    result = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if os.path.islink(path):
                content = os.readlink(path)
            elif os.path.isdir(path):
                content = None
            else:
                with open(path, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
            result[os.path.relpath(path, root)] = (info.st_mode, content)
    return result


def files_under(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _dirs, names in os.walk(root) for name in names)


# Fixtures for the test_installer_*.py modules (they import them by name).


@pytest.fixture(scope="session")
def checkout(tmp_path_factory):
    return copy_checkout(str(tmp_path_factory.mktemp("checkout")))


@pytest.fixture
def user(tmp_path, checkout):
    return User(tmp_path, checkout)
