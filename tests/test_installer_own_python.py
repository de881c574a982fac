"""Editors whose own Python lacks pyzmq and msgpack, for real: Debian 13's Krita 5.2 and GIMP 3 in the
Debian 13 root with python3-zmq/python3-msgpack purged (an overlay layer made by
.ci/install_own_python_editors.sh; the root itself stays unchanged). The installer, run on the host,
reads the editors' Python version from their files (--krita-app/--gimp-app), places pyzmq and
msgpack wheels for it in each plugin's vendor/ folder, and each editor then runs a real job against
an engine on the host (through an ipc socket in a folder bind-mounted at the same path)."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from tests.support import animation as frames
from tests.support import gimp_harness
from tests.support.skips import skip_or_fail

pytestmark = [pytest.mark.editor, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.environ.get("NEURAL_STYLE_GIMP_ROOT", "/opt/neural-style-ci/trixie-root")
LAYER = os.environ.get("NEURAL_STYLE_NODEPS_LAYER", "/opt/neural-style-ci/trixie-nodeps-layer")
RUN_SCRIPT = os.path.join(REPO, "tests", "support", "gimp_run.sh")
KRITA_DRIVER = os.path.join(REPO, "tests", "support", "krita_driver.py")
GIMP_DRIVER = os.path.join(REPO, "tests", "support", "gimp_driver.py")
EDITOR_TIMEOUT_S = 240
# In a private mount namespace: the overlay (LAYER on ROOT, changes in the workspace) at MERGED, then
# the command, e.g. gimp_run.sh already inside this namespace (so it chroots into MERGED).
IN_OVERLAY = ('set -e; mount -t overlay overlay -o "lowerdir=$1:$2,upperdir=$3/upper,workdir=$3/work" "$3/merged"; '
              'shift 3; exec "$@"')


def ready_or_skip():
    problem = None
    if os.geteuid() != 0:
        problem = "the editors in the Debian 13 root need root (chroot, mounts)"
    elif not os.path.exists(LAYER + ".ready") or not os.path.exists(os.path.join(ROOT, ".neural-style-gimp-ready")):
        problem = "no editors without pyzmq/msgpack: run bash .ci/install_gimp.sh, then .ci/install_own_python_editors.sh"
    if problem:
        skip_or_fail("the own-Python editor test cannot run: " + problem)


class Overlay:
    """A workspace under /tmp (bind-mounted at the same path into the root) and the overlay's folders."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="ns-ownpy-", dir="/tmp")
        os.chmod(self.path, 0o755)
        for name in ("upper", "work", "merged", "out"):
            os.makedirs(os.path.join(self.path, name))
        self.merged = os.path.join(self.path, "merged")
        self.home = os.path.join(self.path, "home")
        self.runtime = os.path.join(self.path, "run")
        os.makedirs(self.runtime, mode=0o700)
        self.env = {"HOME": self.home, "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
                    "XDG_DATA_HOME": os.path.join(self.home, ".local", "share"),
                    "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
                    "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"), "XDG_RUNTIME_DIR": self.runtime}
        for folder in self.env.values():
            os.makedirs(folder, exist_ok=True)

    def command(self, *command):
        return ["unshare", "--mount", "--propagation", "private", "bash", "-c", IN_OVERLAY, "_",
                LAYER, ROOT, self.path] + list(command)

    def in_root(self, env, *command):
        """`command` chrooted into the overlay with a clean environment plus `env`."""
        wrapper = ["env", "GIMP_RUN_IN_NAMESPACE=1", "NEURAL_STYLE_GIMP_FORCE_ROOT=1", "bash", RUN_SCRIPT,
                   "--root", self.merged, "--bind", "%s:%s" % (self.path, self.path)]
        for name, value in env.items():
            wrapper += ["--env", "%s=%s" % (name, value)]
        return self.command(*(wrapper + ["--"] + list(command)))

    def run(self, command, timeout, log_name):
        log_path = os.path.join(self.path, log_name)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
        with open(log_path, "rb") as f:
            return code, f.read().decode("utf-8", "replace")

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def krita_profile(space, endpoint, style):
    """kritarc (the root's bundled plugins off: faster), the harness Extension and its scenario."""
    pykrita = os.path.join(space.env["XDG_DATA_HOME"], "krita", "pykrita")
    os.makedirs(os.path.join(pykrita, "ns_test_driver"))
    shutil.copy(KRITA_DRIVER, os.path.join(pykrita, "ns_test_driver", "__init__.py"))
    with open(os.path.join(pykrita, "ns_test_driver.desktop"), "w") as f:
        f.write("[Desktop Entry]\nType=Service\nServiceTypes=Krita/PythonPlugin\nX-KDE-Library=ns_test_driver\n"
                "X-Python-2-Compatible=false\nName=ns_test_driver\n")
    bundled = set()
    for base in (LAYER, ROOT):
        folder = os.path.join(base, "usr", "share", "krita", "pykrita")
        if os.path.isdir(folder):
            bundled |= {n[len("kritapykrita_"):-len(".desktop")] for n in os.listdir(folder)
                        if n.startswith("kritapykrita_") and n.endswith(".desktop")}
    with open(os.path.join(space.env["XDG_CONFIG_HOME"], "kritarc"), "w") as f:
        f.write("[python]\n" + "".join("enable_%s=false\n" % n for n in sorted(bundled)) +
                "enable_ns_test_driver=true\n")
    # An animated layer too: Krita 5.2's animation API works as 5.1's (issue 18, tests/test_krita_frames.py)
    animation = {"kra": frames.animation_kra(space.path), "time": 3, "iterations": 4, "max_size": 64}
    scenario = {"endpoint": endpoint, "style_image": style, "results": os.path.join(space.path, "krita.json"),
                "cases": [{"name": "job", "kind": "depth", "depth": "U8", "iterations": 4, "max_size": 64},
                          dict(animation, name="frames", kind="frames")]}
    with open(os.path.join(space.path, "scenario.json"), "w") as f:
        json.dump(scenario, f)
    return pykrita, scenario["results"]


def test_krita_and_gimp_with_their_own_python_get_pyzmq_and_msgpack_and_run_a_job(fake_weights):
    ready_or_skip()
    from PIL import Image

    from tests.support.engine_fixture import running_engine
    from tests.support.style_images import style_pixels
    space = Overlay()
    try:
        style = os.path.join(space.path, "style.png")
        Image.fromarray(style_pixels(7)).save(style)
        endpoint = "ipc://" + os.path.join(space.path, "engine.sock")
        pykrita, krita_results = krita_profile(space, endpoint, style)
        gimp_plugins = os.path.join(space.env["XDG_CONFIG_HOME"], "GIMP", "3.0", "plug-ins")

        # The editors' Python really lacks them (the layer purged Debian's packages).
        code, text = space.run(space.in_root({}, "python3", "-c", "import zmq"), 120, "probe.log")
        assert code != 0 and "No module named 'zmq'" in text, text

        env = dict({k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "NEURAL_STYLE_", "PYTHON"))},
                   **space.env, PYTHONPATH=REPO, PYTHONDONTWRITEBYTECODE="1")
        installer = [sys.executable, os.path.join(REPO, "installer.py"), "--reuse-env", "--weights", fake_weights,
                     "--no-verify", "--no-service", "--krita-dir", pykrita, "--gimp-dir", gimp_plugins,
                     "--kritarc", os.path.join(space.env["XDG_CONFIG_HOME"], "kritarc"),
                     "--krita-app", space.merged, "--gimp-app", space.merged]
        done = subprocess.run(space.command(*installer), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=600)
        assert done.returncode == 0, done.stdout
        assert "its Python is 3.13 (lib/python3.13)" in done.stdout, done.stdout
        for plugin in (os.path.join(pykrita, "neural_style"), os.path.join(gimp_plugins, "neural_style")):
            assert os.path.isdir(os.path.join(plugin, "vendor", "zmq")), os.listdir(plugin)
            assert os.path.isdir(os.path.join(plugin, "vendor", "msgpack")), os.listdir(plugin)

        plan = os.path.join(space.path, "cases.json")
        gimp_results = os.path.join(space.path, "gimp.json")
        with open(plan, "w") as f:
            json.dump({"out_dir": os.path.join(space.path, "out"), "results": gimp_results, "cases": [
                {"name": "job", "kind": "plain",
                 "args": {"style-file": style, "iterations": 4, "max-size": 64, "preview-interval-s": 0.5}}]}, f)
        driver = shutil.copy(GIMP_DRIVER, os.path.join(space.path, "gimp_driver.py"))
        batch = "import sys; sys.argv = ['gimp_driver', %r]; exec(open(%r).read())" % (plan, driver)
        with running_engine(weights=fake_weights, endpoint=endpoint), gimp_harness.xvfb() as display:
            assert display, "Xvfb is needed for Krita"
            started = time.monotonic()
            krita_env = dict(space.env, DISPLAY=display, NS_TEST_SCENARIO=os.path.join(space.path, "scenario.json"))
            code, krita_log = space.run(space.in_root(krita_env, "timeout", "-k", "10", str(EDITOR_TIMEOUT_S),
                                                      "krita", "--nosplash"), EDITOR_TIMEOUT_S + 30, "krita.log")
            krita_s = time.monotonic() - started
            started = time.monotonic()
            code, gimp_log = space.run(space.in_root(dict(space.env, NEURAL_STYLE_ENDPOINT=endpoint),
                                                     "timeout", "-k", "10", str(EDITOR_TIMEOUT_S), "gimp-console-3.0",
                                                     "-i", "-n", "-c", "--batch-interpreter=python-fu-eval", "-b",
                                                     batch, "--quit"), EDITOR_TIMEOUT_S + 30, "gimp.log")
            gimp_s = time.monotonic() - started
        print("Krita 5.2 run %.0f s, GIMP 3 run %.0f s (both with the vendored pyzmq/msgpack)" % (krita_s, gimp_s))

        assert os.path.exists(krita_results), krita_log[-3000:]
        with open(krita_results) as f:
            krita = json.load(f)
        job = krita["cases"].get("job", {})
        assert not krita["errors"] and "exception" not in job, (krita["errors"], job.get("exception"))
        assert job["ok"] and job["finished"]["outcome"] == "done", (job.get("finished"), krita_log[-3000:])
        assert [item["name"] for item in job["after"]["layers"]][-1] == "Paint – Starry"
        animated = krita["cases"].get("frames", {})
        assert "exception" not in animated and animated["finished"]["outcome"] == "done", animated.get("exception")
        assert animated["result"]["animated"] and animated["result"]["keyframes"] == frames.TIMES, animated["result"]
        assert animated["source_after"] == animated["before"] and animated["time_after"] == 3
        assert all(np.frombuffer(base64.b64decode(data), np.uint8).any() for data in animated["result"]["frames"].values())

        assert os.path.exists(gimp_results), gimp_log[-3000:]
        with open(gimp_results) as f:
            gimp = json.load(f)
        record = gimp["cases"][0]
        assert "driver_error" not in record, record["driver_error"]
        assert record["status"] == "success", (record["message"], gimp_log[-3000:])
        assert len(record["layers"]) == record["layer_count_before"] + 1
    finally:
        space.cleanup()
