"""Run the real GIMP 3 headless with the real plug-in in a throwaway profile (host pytest side).

GIMP runs on the host when it has gimp-console-3.0 (Debian 13), else inside the Debian 13 root
made by .ci/install_gimp.sh, through tests/support/gimp_run.sh. The workspace folder is bind-mounted
into the root at the same path, so files the plug-in reads (style images) and the engine reads
(style paths in jobs) are the same files on both sides.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUPPORT = os.path.join(REPO, "tests", "support")
RUN_SCRIPT = os.path.join(SUPPORT, "gimp_run.sh")
DRIVER = os.path.join(SUPPORT, "gimp_driver.py")
UI_HOOK = os.path.join(SUPPORT, "gimp_ui_hook.py")
PLUGIN_NAME = "neural_style"


def gimp_root() -> str:
    return os.environ.get("NEURAL_STYLE_GIMP_ROOT", "/opt/neural-style-ci/trixie-root")


def gimp_location():
    """"host", "root", or None when GIMP 3 is not installed (with the reason)."""
    if shutil.which("gimp-console-3.0"):
        return "host", None
    root = gimp_root()
    if os.path.exists(os.path.join(root, ".neural-style-gimp-ready")) and \
            os.access(os.path.join(root, "usr", "bin", "gimp-console-3.0"), os.X_OK):
        if os.geteuid() != 0:
            return None, "GIMP 3 is in the Debian 13 root %s, but running it there needs root" % root
        return "root", None
    return None, "GIMP 3 is not installed (no gimp-console-3.0 and no complete root at %s): " \
                 "run bash .ci/install_gimp.sh" % root


def install_plugin(plug_ins_dir: str) -> str:
    """Copy plugin_gimp/neural_style and shared/ the way the installer lays them out."""
    target = os.path.join(plug_ins_dir, PLUGIN_NAME)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(os.path.join(REPO, "plugin_gimp", PLUGIN_NAME), target, ignore=ignore)
    shutil.copytree(os.path.join(REPO, "shared"), os.path.join(target, "shared"), ignore=ignore)
    os.chmod(os.path.join(target, PLUGIN_NAME + ".py"), 0o755)
    return target


class GimpWorkspace:
    """A temp folder with a throwaway GIMP profile, the plug-in installed, and room for test files."""

    def __init__(self):
        # Under /tmp with a short name: it is bind-mounted at the same path inside the root.
        self.path = tempfile.mkdtemp(prefix="ns-gimp-", dir="/tmp")
        os.chmod(self.path, 0o755)
        self.home = self._dir("home")
        self.config = self._dir("config")
        self.out = self._dir("out")
        self.runtime = self._dir("run")
        os.chmod(self.runtime, 0o700)
        self.plugin = install_plugin(self._dir(os.path.join("config", "GIMP", "3.0", "plug-ins")))

    def _dir(self, name):
        path = os.path.join(self.path, name)
        os.makedirs(path, exist_ok=True)
        return path

    def environment(self, extra=None):
        env = {"HOME": self.home, "XDG_CONFIG_HOME": self.config,
               "XDG_DATA_HOME": self._dir("data"), "XDG_CACHE_HOME": self._dir("cache"),
               "XDG_STATE_HOME": self._dir("state"), "XDG_RUNTIME_DIR": self.runtime}
        env.update(extra or {})
        return env

    def run_driver(self, cases, env_extra=None, timeout=300.0, display=None):
        """Start GIMP once, run every case through tests/support/gimp_driver.py; returns
        (results dict or None, completed process info)."""
        plan_path = os.path.join(self.path, "cases.json")
        results_path = os.path.join(self.path, "results.json")
        driver = shutil.copy(DRIVER, os.path.join(self.path, "gimp_driver.py"))
        # The UI hook loads into GIMP's Python processes as sitecustomize; it acts only in the plug-in and
        # only on a plan the driver writes for a case.
        shutil.copy(UI_HOOK, os.path.join(self._dir("uihook"), "sitecustomize.py"))
        env_extra = dict(env_extra or {}, PYTHONPATH=os.path.join(self.path, "uihook"),
                         NEURAL_STYLE_UI_PLAN=os.path.join(self.path, "ui-plan.json"))
        with open(plan_path, "w") as f:
            json.dump({"out_dir": self.out, "results": results_path, "cases": cases}, f, indent=1)
        batch = ("import sys; sys.argv = ['gimp_driver', %r]; exec(open(%r).read())" % (plan_path, driver))
        command = ["timeout", "-s", "TERM", "-k", "10", str(int(timeout)), "bash", RUN_SCRIPT]
        for name, value in self.environment(env_extra).items():
            command += ["--env", "%s=%s" % (name, value)]
        if display:   # for interactive cases: plug-ins open their dialogs on this X server
            command += ["--env", "DISPLAY=" + display, "--bind", "/tmp/.X11-unix:/tmp/.X11-unix"]
        command += ["--bind", "%s:%s" % (self.path, self.path), "--",
                    "gimp-console-3.0", "-i", "-n", "-c", "--batch-interpreter=python-fu-eval",
                    "-b", batch, "--quit"]
        started = time.monotonic()
        log_path = os.path.join(self.path, "gimp.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = process.wait(timeout=timeout + 30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)   # the whole session: GIMP, its plug-ins, the wrapper
                code = process.wait()
        elapsed = time.monotonic() - started
        with open(log_path, "rb") as f:
            output = f.read().decode("utf-8", "replace")
        results = None
        if os.path.exists(results_path):
            with open(results_path) as f:
                results = json.load(f)
        return results, {"exit_code": code, "seconds": elapsed, "output": output, "command": command}

    def cleanup(self):
        # gimp_run.sh mounts only in a private namespace, so nothing is mounted here any more; the
        # mount point it created inside the root is an empty folder.
        shutil.rmtree(self.path, ignore_errors=True)
        mount_point = os.path.join(gimp_root(), self.path.lstrip("/"))
        if os.path.isdir(mount_point) and not os.listdir(mount_point):
            os.rmdir(mount_point)


def _accepts_clients(display, deadline):
    """Whether the display's socket takes a connection before `deadline` (an X client started as soon as
    Xvfb names its display once failed with "could not connect to display :0" in the full suite)."""
    import socket
    path = "/tmp/.X11-unix/X" + display.lstrip(":")
    while time.monotonic() < deadline:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            return True
        except OSError:
            time.sleep(0.1)
        finally:
            probe.close()
    return False


@contextlib.contextmanager
def xvfb(timeout=20.0):
    """A private Xvfb (":N") for the plug-in's dialogs, or None when Xvfb is not installed."""
    if not shutil.which("Xvfb"):
        yield None
        return
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24",
                               "-nolisten", "tcp"], pass_fds=(write_end,), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + timeout
        while not number.endswith(b"\n") and time.monotonic() < deadline and server.poll() is None:
            import select
            ready, _, _ = select.select([read_end], [], [], 0.5)
            if ready:
                chunk = os.read(read_end, 16)
                if not chunk:
                    break
                number += chunk
        display = ":" + number.decode().strip() if number.strip() else None
        if display and not _accepts_clients(display, deadline):
            raise RuntimeError("Xvfb said %s but accepts no client there" % display)
        yield display
    finally:
        os.close(read_end)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
