#!/usr/bin/env python3
"""Set up Neural Style: the engine's Python environment, the VGG-19 weights, the GIMP 3 and Krita
plugins, the engine.json the plugins use to start the engine, and a background service.

    python3 installer.py              install or upgrade everything (run it again any time)
    python3 installer.py --check      a table of every part, with what to do about each failure
    python3 installer.py --uninstall  remove everything this installer put on the machine

Standard library only, Python 3.9+, Linux, macOS and Windows. `docs/install.md` says what goes
where on each platform. Every file and folder it creates is listed in a manifest
(`install-manifest.json` in the config folder), so `--uninstall` removes exactly those.
"""

import argparse
import datetime
import glob
import hashlib
import http.client
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_paths():
    """shared/paths.py by file, so shared/__init__.py (and whatever it may import) is not run."""
    spec = importlib.util.spec_from_file_location("neural_style_paths", os.path.join(HERE, "shared", "paths.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


paths = _load_paths()

# ---------------------------------------------------------------------------------------------
# What gets installed
# ---------------------------------------------------------------------------------------------

# From Keras' own source (keras/src/applications/vgg19.py: WEIGHTS_PATH_NO_TOP and its file_hash).
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
               "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

TENSORFLOW_VERSION = "2.21.0"
# The versions the test suite ran with (Python 3.11). pyproject.toml holds the lower bounds;
# the installer pins exactly so every machine gets the tested set. TensorFlow is added per platform.
PINNED = ["keras==3.15.1", "numpy==2.4.6", "pillow==13.0.0", "pyzmq==27.3.0", "msgpack==1.2.4",
          "h5py==3.14.0"]
TEST_PINNED = ["pytest==9.0.3", "hypothesis==6.155.2"]
EDITOR_DEPS = ["pyzmq==27.3.0", "msgpack==1.2.4"]   # what the plugins' client needs inside the editor
ENGINE_PYTHON = ((3, 11), (3, 13))                  # TensorFlow 2.21 + the pins above

PLUGIN_NAME = "neural_style"
SERVICE_NAME = "neural-style-engine"
LAUNCHD_LABEL = "org.neural-style.engine"
WINDOWS_TASK = "NeuralStyleEngine"
MANIFEST_NAME = "install-manifest.json"


def project_version():
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        match = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.MULTILINE)
    return match.group(1) if match else "unknown"


VERSION = project_version()

# ---------------------------------------------------------------------------------------------
# Output: every step is printed; the details go to the log file as well
# ---------------------------------------------------------------------------------------------


class InstallError(Exception):
    """A problem the user can act on; main() prints it as one message, never a traceback."""


class Output:
    def __init__(self):
        self.log_file = None
        self.step_number = 0
        self.summary = []          # (what, where) lines for the final summary
        self.actions = []          # things the user still has to do

    def open_log(self, path):
        self.log_file = open(path, "a", encoding="utf-8")
        self.log("==== installer %s, %s, %s" % (VERSION, datetime.datetime.now().isoformat(timespec="seconds"),
                                                 " ".join(sys.argv[1:])))

    def log(self, text):
        if self.log_file:
            self.log_file.write(text.rstrip("\n") + "\n")
            self.log_file.flush()

    def step(self, title):
        self.step_number += 1
        self.say("\n[%d] %s" % (self.step_number, title))

    def say(self, text=""):
        print(text, flush=True)
        self.log(text)

    def detail(self, text):
        self.say("    " + text)

    def warn(self, text):
        self.say("    WARNING: " + text)

    def loud(self, lines):
        bar = "!" * 78
        self.say(bar)
        for line in lines:
            self.say("!!  " + line)
        self.say(bar)

    def remember(self, what, where):
        self.summary.append((what, where))

    def todo(self, text):
        self.actions.append(text)


out = Output()


def run(command, check=True, capture=False, env=None, timeout=None, echo=True):
    """Run a command; its output goes to the log (and, with echo, to the console, indented)."""
    out.log("$ " + " ".join(shlex.quote(str(c)) for c in command))
    try:
        process = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env, universal_newlines=True, errors="replace")
    except OSError as error:
        raise InstallError("could not run %s: %s" % (command[0], error.strerror or error))
    lines = []
    started = time.monotonic()
    for line in process.stdout:
        lines.append(line)
        out.log("  | " + line)
        if echo and not capture:
            print("      | " + line.rstrip("\n"), flush=True)
        if timeout and time.monotonic() - started > timeout:
            process.kill()
            break
    process.wait()
    text = "".join(lines)
    if check and process.returncode != 0:
        tail = "".join(lines[-15:]).rstrip()
        raise InstallError("%s failed (exit %s):\n%s" % (" ".join(str(c) for c in command[:4]),
                                                          process.returncode, tail))
    return process.returncode, text


def quiet(command, timeout=60, env=None, cwd=None):
    """(exit code, output) of a short probe; (None, reason) when it cannot run or times out."""
    try:
        done = subprocess.run([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, errors="replace", timeout=timeout, env=env, cwd=cwd)
        return done.returncode, done.stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, str(error)


# ---------------------------------------------------------------------------------------------
# Manifest: everything the installer created, so --uninstall removes exactly that
# ---------------------------------------------------------------------------------------------


class Manifest:
    """Items, in creation order: {"kind": "dir"|"file"|"tree"|"kritarc"|"service", "path": ..., ...}."""

    def __init__(self, path):
        self.path = path
        self.items = []
        self.data = {}
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    self.data = json.load(f)
            except (OSError, ValueError) as error:
                raise InstallError("the install manifest %s is unreadable (%s); remove it by hand to start over"
                                   % (path, error))
            self.items = self.data.get("items", [])

    def find(self, kind, path):
        for item in self.items:
            if item["kind"] == kind and item["path"] == path:
                return item
        return None

    def add(self, kind, path, **extra):
        item = self.find(kind, path)
        if item is None:
            item = {"kind": kind, "path": path}
            self.items.append(item)
        item.update(extra)
        return item

    def remove(self, kind, path):
        self.items = [i for i in self.items if not (i["kind"] == kind and i["path"] == path)]

    def owns(self, path):
        return any(i["path"] == path for i in self.items)

    def save(self):
        self.data["items"] = self.items
        self.data["version"] = VERSION
        self.data["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
        write_text_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def make_dirs(path, manifest):
    """Create `path` and record every folder this call creates (so uninstall can remove them if empty)."""
    missing = []
    probe = os.path.abspath(path)
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for folder in reversed(missing):
        os.makedirs(folder, exist_ok=True)
        manifest.add("dir", folder)
    return path


def write_text_atomic(path, text, mode=None):
    """Write via a temporary file and rename; keeps an existing file's permissions."""
    if mode is None:
        if os.path.exists(path):
            mode = stat.S_IMODE(os.stat(path).st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        f.write(text)
    os.chmod(temp, mode)
    os.replace(temp, path)


def remove_path(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


# ---------------------------------------------------------------------------------------------
# The engine's Python environment
# ---------------------------------------------------------------------------------------------


def venv_python(prefix):
    if sys.platform == "win32":
        return os.path.join(prefix, "Scripts", "python.exe")
    return os.path.join(prefix, "bin", "python")


def nvidia_driver(proc_path="/proc/driver/nvidia/version"):
    """A sentence naming the NVIDIA driver that was found, or None."""
    if os.path.exists(proc_path):
        with open(proc_path, encoding="utf-8", errors="replace") as f:
            first = f.readline().strip()
        return "an NVIDIA driver is loaded (%s: %s)" % (proc_path, first[:80])
    smi = shutil.which("nvidia-smi")
    if smi:
        code, text = quiet([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"], timeout=20)
        if code == 0 and text.strip():
            return "nvidia-smi reports %s" % text.strip().splitlines()[0]
    return None


def choose_tensorflow(choice, system=None, driver_probe=nvidia_driver, machine=None):
    """(requirement, reason) for the TensorFlow build to install."""
    system, machine = system or platform.system(), (machine or platform.machine()).lower()
    cpu = "tensorflow-cpu==%s" % TENSORFLOW_VERSION
    if system == "Linux" and machine not in ("x86_64", "amd64"):
        # PyPI has tensorflow-cpu only for x86_64; the plain build for ARM Linux runs on the CPU
        return "tensorflow==%s" % TENSORFLOW_VERSION, "Linux on %s: TensorFlow's build for it (CPU)" % machine
    if system == "Darwin":
        return "tensorflow==%s" % TENSORFLOW_VERSION, "macOS: TensorFlow's macOS build (it runs on the CPU)"
    if system == "Windows":
        if choice == "gpu":
            raise InstallError("--tensorflow gpu: TensorFlow has no native Windows GPU build since 2.10; "
                               "use WSL2 (run this installer inside it) or --tensorflow cpu")
        return cpu, "Windows: TensorFlow has no native GPU build, so the CPU build"
    if choice == "cpu":
        return cpu, "--tensorflow cpu was given"
    if choice == "gpu":
        return "tensorflow[and-cuda]==%s" % TENSORFLOW_VERSION, "--tensorflow gpu was given"
    driver = driver_probe()
    if driver:
        return ("tensorflow[and-cuda]==%s" % TENSORFLOW_VERSION,
                "%s, so the GPU build with its CUDA libraries" % driver)
    return cpu, "no NVIDIA driver found (no /proc/driver/nvidia, no nvidia-smi), so the CPU build"


def python_version_of(python):
    code, text = quiet([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=30)
    if code != 0:
        raise InstallError("%s does not run (%s); pass --python PATH to a working Python 3.11-3.13"
                           % (python, text.strip()[:200]))
    major, minor = text.strip().split(".")
    return int(major), int(minor)


def require_engine_python(python):
    version = python_version_of(python)
    low, high = ENGINE_PYTHON
    if not low <= version <= high:
        raise InstallError("%s is Python %d.%d, but TensorFlow %s and the pinned packages need Python %d.%d to %d.%d: "
                           "install one and pass it with --python PATH"
                           % (python, version[0], version[1], TENSORFLOW_VERSION, low[0], low[1], high[0], high[1]))
    return version


def require_pip(python):
    if quiet([python, "-m", "pip", "--version"], timeout=60)[0] != 0:
        raise InstallError("%s has no pip; on Debian/Ubuntu: sudo apt-get install python3-pip python3-venv, "
                           "elsewhere: %s -m ensurepip --upgrade" % (python, python))


def pip_install(python, requirements, extra=(), externally_managed_ok=False):
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if externally_managed_ok:
        command.append("--break-system-packages")
    code, text = run(command + list(extra) + list(requirements), check=False)
    if code != 0:
        if "externally-managed-environment" in text:
            raise InstallError("%s is managed by your distribution and refuses pip installs: drop --dev to get "
                               "a venv, activate a virtual environment first, or add --break-system-packages"
                               % python)
        if re.search(r"Could not find a version|No matching distribution|Failed to establish|"
                     r"Temporary failure in name resolution|Network is unreachable", text):
            raise InstallError("pip could not download the packages (offline, or PyPI unreachable). Connect to "
                               "the internet (or set PIP_INDEX_URL to a mirror) and run the installer again; "
                               "details in %s" % paths_log())
        raise InstallError("pip install failed (exit %d); the last lines are above, everything is in %s"
                           % (code, paths_log()))


def paths_log():
    return os.path.join(paths.state_dir(), "installer.log")


def install_engine(args, manifest):
    """Returns the Python that runs the engine."""
    if args.reuse_env:
        out.step("Engine environment: reusing this Python (%s), installing nothing" % sys.executable)
        missing = [m for m in ("tensorflow", "numpy", "PIL", "zmq", "msgpack", "h5py")
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise InstallError("--reuse-env: %s cannot import %s; run with --dev to install them"
                               % (sys.executable, ", ".join(missing)))
        out.detail("TensorFlow, NumPy, Pillow, pyzmq, msgpack and h5py are importable")
        # from a neutral folder: the plugins start the engine from anywhere, not from this checkout
        if quiet([sys.executable, "-c", "import engine_server"], timeout=60, cwd=tempfile.gettempdir())[0] != 0:
            out.warn("this Python imports engine_server only from inside the checkout; the plugins could not "
                     "start it: use --dev (an editable install) instead")
            out.todo("make the engine importable for %s: python3 installer.py --dev" % sys.executable)
        out.remember("engine Python (reused)", sys.executable)
        return sys.executable

    requirement, reason = choose_tensorflow(args.tensorflow)
    if args.dev:
        python = sys.executable
        out.step("Engine environment: installing into this Python (%s), for development" % python)
        require_engine_python(python)
        require_pip(python)
        out.detail("TensorFlow: %s, because %s" % (requirement, reason))
        pip_install(python, [requirement] + PINNED + TEST_PINNED, externally_managed_ok=args.break_system_packages)
        out.detail("the engine itself, editable (your checkout stays the code that runs)")
        pip_install(python, ["-e", HERE], extra=["--no-deps"], externally_managed_ok=args.break_system_packages)
        out.remember("engine Python (--dev)", python)
        out.todo("--dev installed packages into %s; --uninstall leaves them (pip uninstall neural-style-engine)"
                 % python)
        return python

    prefix = os.path.abspath(args.prefix or os.path.join(paths.data_dir(), "venv"))
    python = venv_python(prefix)
    base = args.python or sys.executable
    out.step("Engine environment: virtual environment in %s" % prefix)
    version = require_engine_python(base)
    reusable = os.path.exists(python) and quiet([python, "-c", "import sys"], timeout=30)[0] == 0
    if reusable and python_version_of(python) != version:
        if not manifest.owns(prefix):
            raise InstallError("%s was made with another Python than %s and not by this installer; remove it or "
                               "choose another --prefix" % (prefix, base))
        out.detail("it was made with another Python version: building it again")
        reusable = False
    if reusable:
        out.detail("already there: upgrading it in place")
    else:
        if os.path.exists(prefix) and not manifest.owns(prefix) and os.listdir(prefix):
            raise InstallError("%s exists and is not a working virtual environment made by this installer; "
                               "remove it or choose another --prefix" % prefix)
        remove_path(prefix)
        make_dirs(os.path.dirname(prefix), manifest)
        out.detail("creating it with Python %d.%d (%s)%s" % (version[0], version[1], base,
                   ", seeing that Python's packages (--system-site-packages)" if args.system_site_packages else ""))
        command = [base, "-m", "venv", prefix]
        if args.system_site_packages:
            command.insert(3, "--system-site-packages")
        code, text = run(command, check=False, echo=False)
        if code != 0:
            hint = ""
            if "ensurepip" in text:
                hint = ": this Python lacks venv support; on Debian/Ubuntu: sudo apt-get install python3-venv"
            raise InstallError("could not create the virtual environment in %s%s (details in %s)"
                               % (prefix, hint, paths_log()))
    manifest.add("tree", prefix, what="engine virtual environment")
    manifest.save()
    out.detail("TensorFlow: %s, because %s" % (requirement, reason))
    out.detail("installing the pinned packages (TensorFlow is large: this can take several minutes)")
    pip_install(python, [requirement] + PINNED)
    out.detail("installing the engine from %s" % HERE)
    extra = ["--no-deps", "--force-reinstall"]
    if args.system_site_packages:
        extra.append("--no-build-isolation")   # build with the base Python's setuptools, no download
    pip_install(python, [HERE], extra=extra)
    code, text = quiet([python, "-c", "import engine_server, shared; print(list(engine_server.__path__)[0])"],
                       timeout=120)
    if code != 0:
        raise InstallError("the engine does not import in %s after installing: %s" % (prefix, text.strip()[-300:]))
    out.detail("the engine imports from %s" % text.strip())
    out.remember("engine virtual environment", prefix)
    return python


# ---------------------------------------------------------------------------------------------
# VGG-19 weights: download (progress, resume, retry) or a local copy, always verified
# ---------------------------------------------------------------------------------------------


def md5_of(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == HDF5_MAGIC


class Progress:
    def __init__(self, total, start=0):
        self.total, self.done, self.started = total, start, time.monotonic()
        self.first, self.shown, self.tty = start, -1, sys.stdout.isatty()

    def advance(self, count):
        self.done += count
        percent = int(self.done * 100 / self.total) if self.total else 0
        if self.tty:
            if percent != self.shown:
                speed = (self.done - self.first) / max(time.monotonic() - self.started, 1e-3) / 1e6
                bar = "#" * (percent // 4) + "." * (25 - percent // 4)
                sys.stdout.write("\r    [%s] %3d%%  %5.1f / %5.1f MB  %4.1f MB/s"
                                 % (bar, percent, self.done / 1e6, self.total / 1e6, speed))
                sys.stdout.flush()
        elif percent // 10 != self.shown // 10:
            print("    %3d%%  %5.1f / %5.1f MB" % (percent, self.done / 1e6, self.total / 1e6), flush=True)
        self.shown = percent

    def finish(self):
        if self.tty:
            sys.stdout.write("\n")


def download(url, destination, md5, attempts=4, backoff=2.0, timeout=30):
    """Download to `destination` + '.part' (resuming it with an HTTP Range request), verify, rename."""
    part = destination + ".part"
    last_error = None
    for attempt in range(1, attempts + 1):
        have = os.path.getsize(part) if os.path.exists(part) else 0
        request = urllib.request.Request(url, headers={"User-Agent": "neural-style-installer/%s" % VERSION})
        if have:
            request.add_header("Range", "bytes=%d-" % have)
            out.detail("resuming at %.1f MB" % (have / 1e6))
        try:
            try:
                response = urllib.request.urlopen(request, timeout=timeout)
            except urllib.error.HTTPError as error:
                if error.code != 416 or not have:
                    raise
                response = None    # 416: nothing left to fetch, the part file is complete
            if response is not None:
                with response:
                    resumed = have and response.status == 206
                    if have and not resumed:
                        out.detail("the server ignored the resume request: starting over")
                    length = int(response.headers.get("Content-Length") or 0)
                    progress = Progress((have if resumed else 0) + length, have if resumed else 0)
                    with open(part, "ab" if resumed else "wb") as f:
                        for block in iter(lambda: response.read(1 << 16), b""):
                            f.write(block)
                            progress.advance(len(block))
                    progress.finish()
                    if length and progress.done < progress.total:
                        raise OSError("connection closed after %.1f of %.1f MB" % (progress.done / 1e6,
                                                                                 progress.total / 1e6))
            actual = md5_of(part)
            if actual == md5:
                os.replace(part, destination)
                return
            os.remove(part)
            last_error = "the downloaded file has md5 %s, expected %s" % (actual, md5)
        except (urllib.error.URLError, http.client.HTTPException, OSError, socket.timeout, ValueError) as error:
            last_error = getattr(error, "reason", None) or error
        out.warn("attempt %d of %d failed: %s" % (attempt, attempts, last_error))
        if attempt < attempts:
            time.sleep(backoff * attempt)
    raise InstallError(
        "could not download the VGG-19 weights (%s). Do it by hand: open %s in a browser (on any machine), "
        "check that its md5 is %s, then run: python3 installer.py --weights PATH_TO_THE_FILE"
        % (last_error, url, md5))


def install_weights(args, manifest):
    destination = paths.default_weights_path()
    out.step("VGG-19 weights -> %s" % destination)
    make_dirs(os.path.dirname(destination), manifest)
    record = manifest.find("file", destination)
    if args.weights:
        source = os.path.abspath(args.weights)
        if not os.path.isfile(source):
            raise InstallError("--weights %s: no such file" % args.weights)
        actual = md5_of(source)
        if args.no_verify:
            out.loud(["--no-verify: installing %s WITHOUT checking it is the Keras VGG-19 file." % source,
                      "This is meant for test files only. Its md5 is %s (Keras' file: %s)." % (actual, WEIGHTS_MD5),
                      "Results will be meaningless unless this really is the VGG-19 notop weights file."])
        elif actual != WEIGHTS_MD5:
            raise InstallError("--weights %s: md5 is %s, but Keras' VGG-19 notop file has %s: it is a different or "
                               "damaged file (use --no-verify only for test files)" % (source, actual, WEIGHTS_MD5))
        if not is_hdf5(source):
            raise InstallError("--weights %s is not an HDF5 file (the Keras .h5 weights format)" % source)
        if os.path.abspath(destination) != source:
            temp = destination + ".copy"
            shutil.copyfile(source, temp)
            os.replace(temp, destination)
        manifest.add("file", destination, what="weights", md5=actual, verified=actual == WEIGHTS_MD5)
        out.detail("installed from %s (md5 %s, %s)" % (source, actual,
                   "verified" if actual == WEIGHTS_MD5 else "NOT verified"))
    elif os.path.exists(destination) and md5_of(destination) == WEIGHTS_MD5:
        out.detail("already there and verified (md5 %s)" % WEIGHTS_MD5)
        if record:
            record.update(md5=WEIGHTS_MD5, verified=True)
    else:
        if os.path.exists(destination):
            out.detail("the file there is not the Keras file (md5 differs): downloading it again")
        out.detail("downloading %s" % args.weights_url)
        manifest.add("file", destination + ".part", what="partial download")
        manifest.save()
        download(args.weights_url, destination, WEIGHTS_MD5)
        manifest.remove("file", destination + ".part")
        manifest.add("file", destination, what="weights", md5=WEIGHTS_MD5, verified=True)
        out.detail("downloaded and verified (md5 %s)" % WEIGHTS_MD5)
    manifest.save()
    out.remember("VGG-19 weights", destination)
    return destination


# ---------------------------------------------------------------------------------------------
# Editors: where GIMP 3 and Krita look for plugins, and which Python they run them with
# ---------------------------------------------------------------------------------------------


class Editor:
    def __init__(self, name, variant, folder, kritarc=None, python_version=None, python_probe=None,
                 python_note=None):
        self.name = name                      # "krita" or "gimp"
        self.variant = variant                # "native", "flatpak", "snap", "appimage", "bundled", "--krita-dir"
        self.folder = folder                  # pykrita folder or GIMP plug-ins folder
        self.kritarc = kritarc
        self.python_version = python_version  # "3.10": the editor's own Python, wheels are placed for it
        self.python_probe = python_probe      # a command that runs the editor's Python, if there is one
        self.python_note = python_note        # how this editor gets pyzmq/msgpack, for the summary

    @property
    def plugin_dir(self):
        return os.path.join(self.folder, PLUGIN_NAME)

    @property
    def label(self):
        return "%s (%s)" % ("Krita" if self.name == "krita" else "GIMP 3", self.variant)

    def vendor_dir(self):
        """Where wheels for the editor's Python are unpacked: a folder already on its sys.path."""
        # Krita puts pykrita/ on sys.path; GIMP runs the plug-in script with its own folder as sys.path[0].
        return self.folder if self.name == "krita" else self.plugin_dir


def _home(*parts):
    return os.path.join(os.path.expanduser("~"), *parts)


def _xdg(variable, *fallback):
    value = os.environ.get(variable)
    return value if value and os.path.isabs(value) else _home(*fallback)


def _appdata():
    return os.environ.get("APPDATA") or _home("AppData", "Roaming")


def _program_folders():
    """Where Windows programs get installed (per machine, and per user for GIMP's user installer)."""
    return [os.environ[v] for v in ("ProgramFiles", "ProgramW6432", "LOCALAPPDATA") if os.environ.get(v)]


def _bundled_python_version(patterns):
    """'3.10' from the first file matching one of the glob patterns (python3.10, python310.dll, ...)."""
    for pattern in patterns:
        for found in sorted(glob.glob(pattern)):
            match = re.search(r"python(3)\.?(\d{1,2})", os.path.basename(found.rstrip("/\\")))
            if match:
                return "%s.%s" % match.groups()
    return None


def find_kritas():
    system = platform.system()
    found = []
    if system == "Windows":
        pykrita = os.path.join(_appdata(), "krita", "pykrita")
        installs = [p for base in _program_folders() for p in glob.glob(os.path.join(base, "Krita*"))]
        if installs or os.path.isdir(os.path.dirname(pykrita)):
            version = _bundled_python_version([os.path.join(i, "bin", "python3*.dll") for i in installs])
            local = os.environ.get("LOCALAPPDATA") or _home("AppData", "Local")
            found.append(Editor("krita", "bundled", pykrita, kritarc=os.path.join(local, "kritarc"),
                                python_version=version, python_note="Krita bundles its own Python"))
    elif system == "Darwin":
        pykrita = _home("Library", "Application Support", "krita", "pykrita")
        apps = glob.glob("/Applications/krita*.app") + glob.glob(_home("Applications", "krita*.app"))
        if apps or os.path.isdir(os.path.dirname(pykrita)):
            version = _bundled_python_version(
                [os.path.join(a, "Contents", "Frameworks", "Python.framework", "Versions", "*", "lib", "python3*")
                 for a in apps])
            found.append(Editor("krita", "bundled", pykrita, kritarc=_home("Library", "Preferences", "kritarc"),
                                python_version=version, python_note="Krita bundles its own Python"))
    else:
        data, config = _xdg("XDG_DATA_HOME", ".local", "share"), _xdg("XDG_CONFIG_HOME", ".config")
        appimages = [p for d in (_home("Applications"), _home("Downloads"), _home("bin"), _home())
                     for p in glob.glob(os.path.join(d, "[Kk]rita*.[Aa]pp[Ii]mage"))]
        if shutil.which("krita") or appimages or os.path.isdir(os.path.join(data, "krita")):
            if appimages and not shutil.which("krita"):
                found.append(Editor("krita", "appimage", os.path.join(data, "krita", "pykrita"),
                                    kritarc=os.path.join(config, "kritarc"),
                                    python_note="the AppImage bundles its own Python (Krita 5.2: 3.10); "
                                                "give its version with --krita-python to place pyzmq/msgpack for it"))
            else:
                found.append(Editor("krita", "native", os.path.join(data, "krita", "pykrita"),
                                    kritarc=os.path.join(config, "kritarc"), python_probe=["/usr/bin/python3"],
                                    python_note="Krita uses the system Python"))
        flatpak = _home(".var", "app", "org.kde.krita")
        if os.path.isdir(flatpak):
            found.append(Editor("krita", "flatpak", os.path.join(flatpak, "data", "krita", "pykrita"),
                                kritarc=os.path.join(flatpak, "config", "kritarc"),
                                python_probe=["flatpak", "run", "--command=python3", "org.kde.krita"],
                                python_note="the Flatpak bundles its own Python"))
    return found


def find_gimps():
    system = platform.system()
    found = []
    if system == "Windows":
        config = os.path.join(_appdata(), "GIMP", "3.0")
        installs = [p for base in _program_folders()
                    for p in glob.glob(os.path.join(base, "GIMP 3*")) + glob.glob(os.path.join(base, "Programs", "GIMP 3*"))]
        if installs or os.path.isdir(config):
            version = _bundled_python_version([os.path.join(i, "bin", "python3*.dll") for i in installs] +
                                              [os.path.join(i, "lib", "python3*") for i in installs])
            found.append(Editor("gimp", "bundled", os.path.join(config, "plug-ins"), python_version=version,
                                python_note="GIMP bundles its own Python"))
    elif system == "Darwin":
        config = _home("Library", "Application Support", "GIMP", "3.0")
        apps = glob.glob("/Applications/GIMP*.app") + glob.glob(_home("Applications", "GIMP*.app"))
        if os.path.isdir(config) or any("GIMP-2" not in a for a in apps):
            version = _bundled_python_version(
                [os.path.join(a, "Contents", "Resources", "lib", "python3*") for a in apps])
            found.append(Editor("gimp", "bundled", os.path.join(config, "plug-ins"), python_version=version,
                                python_note="GIMP bundles its own Python"))
    else:
        config = os.path.join(_xdg("XDG_CONFIG_HOME", ".config"), "GIMP", "3.0")
        if os.path.isdir(config) or shutil.which("gimp-3.0") or shutil.which("gimp-console-3.0"):
            found.append(Editor("gimp", "native", os.path.join(config, "plug-ins"),
                                python_probe=["/usr/bin/env", "python3"],
                                python_note="GIMP runs plug-ins with the system's python3"))
        flatpak = _home(".var", "app", "org.gimp.GIMP", "config", "GIMP", "3.0")
        if os.path.isdir(flatpak):
            found.append(Editor("gimp", "flatpak", os.path.join(flatpak, "plug-ins"),
                                python_probe=["flatpak", "run", "--command=python3", "org.gimp.GIMP"],
                                python_note="the Flatpak bundles its own Python"))
        snap = _home("snap", "gimp", "current", ".config", "GIMP", "3.0")
        if os.path.isdir(snap):
            found.append(Editor("gimp", "snap", os.path.join(snap, "plug-ins"),
                                python_note="the Snap bundles its own Python; give its version with --gimp-python "
                                            "to place pyzmq/msgpack for it"))
    return found


def find_editors(args):
    """The editors to install into: --krita-dir/--gimp-dir when given, else every one found."""
    editors = []
    if not args.no_krita:
        if args.krita_dir:
            kritarc = args.kritarc or next((e.kritarc for e in find_kritas() if e.variant in ("native", "bundled")),
                                           os.path.join(_xdg("XDG_CONFIG_HOME", ".config"), "kritarc"))
            editors += [Editor("krita", "--krita-dir", os.path.abspath(d), kritarc=kritarc) for d in args.krita_dir]
        else:
            editors += find_kritas()
            if args.kritarc:
                for editor in editors:
                    editor.kritarc = args.kritarc
    if not args.no_gimp:
        if args.gimp_dir:
            editors += [Editor("gimp", "--gimp-dir", os.path.abspath(d)) for d in args.gimp_dir]
        else:
            editors += find_gimps()
    for editor in editors:
        override = args.krita_python if editor.name == "krita" else args.gimp_python
        if override:
            editor.python_version, editor.python_probe = override, None
            editor.python_note = "--%s-python %s" % (editor.name, override)
    return editors


# ---------------------------------------------------------------------------------------------
# Plugins: copy, enable, make pyzmq/msgpack importable for the editor's Python
# ---------------------------------------------------------------------------------------------

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "tests")


def plugin_sources(name):
    """(plugin package folder, Krita's .desktop file or None) in this checkout, for one editor."""
    if name == "krita":
        package = os.path.join(HERE, "plugin_krita", PLUGIN_NAME)
        extra = os.path.join(HERE, "plugin_krita", PLUGIN_NAME + ".desktop")
        missing = [p for p in (package, extra) if not os.path.exists(p)]
    else:
        package, extra = os.path.join(HERE, "plugin_gimp", PLUGIN_NAME), None
        script = os.path.join(package, PLUGIN_NAME + ".py")
        missing = [] if os.path.isfile(script) else [script]
    if missing:
        raise InstallError("this checkout has no %s: the %s plugin cannot be installed from it"
                           % (", ".join(os.path.relpath(m, HERE) for m in missing), name))
    return package, extra


def install_plugin(editor, manifest):
    package, desktop = plugin_sources(editor.name)
    make_dirs(editor.folder, manifest)
    target = editor.plugin_dir
    if os.path.lexists(target):
        remove_path(target)            # upgrade in place: nothing stale survives
    shutil.copytree(package, target, ignore=IGNORE)
    shutil.copytree(os.path.join(HERE, "shared"), os.path.join(target, "shared"), ignore=IGNORE)
    manifest.add("tree", target, what="%s plugin" % editor.name)
    if desktop:
        destination = os.path.join(editor.folder, os.path.basename(desktop))
        shutil.copyfile(desktop, destination)
        manifest.add("file", destination, what="krita plugin")
    if editor.name == "gimp":
        script = os.path.join(target, PLUGIN_NAME + ".py")
        os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    info = {"version": VERSION, "installed": datetime.datetime.now().isoformat(timespec="seconds"),
            "source": HERE, "editor": editor.label}
    write_text_atomic(os.path.join(target, "install_info.json"), json.dumps(info, indent=2) + "\n")
    out.detail("%s plugin %s -> %s" % (editor.label, VERSION, target))


def _python_section(lines):
    """(start, end) line indexes of kritarc's [python] section (start None when there is none)."""
    start = next((i for i, line in enumerate(lines) if line.strip() == "[python]"), None)
    if start is None:
        return None, None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    return start, end


def _read_lines(path):
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return f.read().splitlines(True)


def set_kritarc(path, manifest, key="enable_%s" % PLUGIN_NAME):
    """Set `[python] key=true` in kritarc, keeping every other line exactly as it is."""
    existed = os.path.exists(path)
    lines = _read_lines(path) if existed else []
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    state = {"file_existed": existed, "previous": None, "section_created": False,
             "final_newline_added": False, "blank_added": False}
    start, end = _python_section(lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
        state["final_newline_added"] = True
    if start is None:
        if lines and lines[-1].strip():
            lines.append(newline)
            state["blank_added"] = True
        lines += ["[python]" + newline, "%s=true%s" % (key, newline)]
        state["section_created"] = True
    else:
        existing = next((i for i in range(start + 1, end) if lines[i].split("=", 1)[0].strip() == key), None)
        if existing is not None:
            state["previous"] = lines[existing].split("=", 1)[1].strip() if "=" in lines[existing] else ""
            lines[existing] = "%s=true%s" % (key, lines[existing][len(lines[existing].rstrip("\r\n")):])
        else:
            insert = end
            while insert > start + 1 and not lines[insert - 1].strip():
                insert -= 1
            lines.insert(insert, "%s=true%s" % (key, newline))
    if manifest.find("kritarc", path) is None:   # the state before the first edit, so uninstall restores that
        manifest.add("kritarc", path, key=key, **state)
    make_dirs(os.path.dirname(path), manifest)
    write_text_atomic(path, "".join(lines))


def unset_kritarc(item):
    """Undo set_kritarc: the old value back, or our line (and the section we added) removed."""
    path, key = item["path"], item["key"]
    if not os.path.exists(path):
        return
    lines = _read_lines(path)
    start, end = _python_section(lines)
    index = None if start is None else next(
        (i for i in range(start + 1, end) if lines[i].split("=", 1)[0].strip() == key), None)
    if index is None:
        return
    if item.get("previous") is not None:
        lines[index] = "%s=%s%s" % (key, item["previous"], lines[index][len(lines[index].rstrip("\r\n")):])
    else:
        del lines[index]
        end -= 1
        if item.get("section_created") and not any(line.strip() for line in lines[start + 1:end]):
            del lines[start:end]
            if item.get("blank_added") and start == len(lines) and start > 0 and not lines[start - 1].strip():
                del lines[start - 1]
    if item.get("final_newline_added") and lines:
        lines[-1] = lines[-1].rstrip("\r\n")
    text = "".join(lines)
    if not item.get("file_existed") and not text.strip():
        os.remove(path)
    else:
        write_text_atomic(path, text)


def probe_editor_python(editor):
    """(has_deps, version) of the editor's Python when it can be run; (None, None) otherwise."""
    if not editor.python_probe:
        return None, None
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    code, text = quiet(editor.python_probe + ["-c", "import sys; print('%d.%d' % sys.version_info[:2]);"
                                                    "import zmq, msgpack; print('deps-ok')"], timeout=60, env=env)
    if code is None or not text.strip():
        return None, None
    lines = text.strip().splitlines()
    version = lines[0] if re.match(r"^3\.\d+$", lines[0]) else None
    return "deps-ok" in lines, version


def wheel_platforms(system=None, machine=None, os_version=None):
    """pip's --platform tags for this machine, most specific first. pip widens a macOS tag to every
    older compatible one by itself; manylinux_2_X tags it takes literally, so they are all listed."""
    system, machine = system or platform.system(), (machine or platform.machine()).lower()
    if system == "Windows":
        return ["win_amd64"] if machine in ("amd64", "x86_64") else ["win_arm64"]
    if system == "Darwin":
        parts = [int(p) for p in (os_version or platform.mac_ver()[0] or "11.0").split(".")[:2]] + [0]
        version = "10_%d" % parts[1] if parts[0] == 10 else "%d_0" % parts[0]
        return ["macosx_%s_%s" % (version, "arm64" if machine == "arm64" else "x86_64")]
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    libc, version = platform.libc_ver() if os_version is None else ("glibc", os_version)
    newest = int(version.split(".")[1]) if libc == "glibc" and "." in version else 17
    return ["manylinux_2_%d_%s" % (minor, arch) for minor in range(max(newest, 17), 16, -1)] + [
        "manylinux2014_%s" % arch]


def place_editor_deps(editor, pip_python, manifest):
    """Download pyzmq/msgpack wheels for the editor's Python and unpack them where it imports from."""
    version = editor.python_version
    target = editor.vendor_dir()
    cache_root = os.path.join(paths.data_dir(), "editor-wheels")
    cache = os.path.join(cache_root, "py%s-%s" % (version, wheel_platforms()[0]))
    make_dirs(cache, manifest)
    manifest.add("tree", cache_root, what="downloaded wheels for the editors' Pythons")
    command = [pip_python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
               "--only-binary=:all:", "--implementation", "cp", "--python-version", version, "-d", cache]
    for tag in wheel_platforms():
        command += ["--platform", tag]
    code, text = run(command + EDITOR_DEPS, check=False, echo=False)
    if code != 0:
        raise InstallError("could not download pyzmq and msgpack wheels for %s's Python %s (details in %s)"
                           % (editor.label, version, paths_log()))
    wanted = tuple(requirement.replace("==", "-") + "-" for requirement in EDITOR_DEPS)
    wheels = [os.path.join(cache, w) for w in sorted(os.listdir(cache)) if w.endswith(".whl") and w.startswith(wanted)]
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            tops = sorted({name.split("/")[0] for name in archive.namelist()})
            for top in tops:
                destination = os.path.join(target, top)
                if os.path.exists(destination) and not manifest.owns(destination):
                    out.detail("%s is already there (not ours): left as it is" % destination)
                    continue
                remove_path(destination)
                for member in archive.namelist():
                    if member.split("/")[0] == top:
                        archive.extract(member, target)
                manifest.add("tree", destination, what="%s dependency" % editor.name)
                # zipfile drops permissions: keep shared libraries loadable
                for root, _dirs, files in os.walk(destination):
                    for name in files:
                        if ".so" in name or name.endswith(".dylib"):
                            os.chmod(os.path.join(root, name), 0o755)
    out.detail("pyzmq and msgpack for Python %s unpacked into %s" % (version, target))


def system_dep_hint():
    """The package-manager line that gives the system Python pyzmq and msgpack."""
    if shutil.which("apt-get"):
        return "sudo apt-get install python3-zmq python3-msgpack"
    if shutil.which("dnf"):
        return "sudo dnf install python3-zmq python3-msgpack"
    if shutil.which("pacman"):
        return "sudo pacman -S python-pyzmq python-msgpack"
    if shutil.which("zypper"):
        return "sudo zypper install python3-pyzmq python3-msgpack"
    return "install pyzmq and msgpack for the system's python3 with your package manager"


def editor_deps(editor, pip_python, manifest):
    if editor.python_version and not editor.python_probe:
        place_editor_deps(editor, pip_python, manifest)
        return
    has_deps, version = probe_editor_python(editor)
    if has_deps:
        out.detail("%s: its Python %s already imports pyzmq and msgpack" % (editor.label, version))
    elif editor.variant == "native" and version:
        out.warn("%s: the system Python %s cannot import pyzmq/msgpack: %s" % (editor.label, version, system_dep_hint()))
        out.todo("for %s run: %s" % (editor.label, system_dep_hint()))
    elif version:
        editor.python_version = version
        place_editor_deps(editor, pip_python, manifest)
    elif editor.python_version:
        place_editor_deps(editor, pip_python, manifest)
    else:
        note = editor.python_note or "its Python could not be run"
        out.warn("%s: could not tell which Python it runs plugins with (%s)" % (editor.label, note))
        out.todo("%s needs pyzmq and msgpack in its own Python: re-run with --%s-python X.Y (see docs/install.md)"
                 % (editor.label, editor.name))


def install_plugins(args, editors, engine_python, manifest):
    out.step("Plugins")
    if not editors:
        out.detail("no GIMP 3 and no Krita found (use --gimp-dir / --krita-dir to name their plugin folders)")
        out.todo("no editor was found: install GIMP 3 or Krita, start it once, then run the installer again")
        return
    for editor in editors:
        install_plugin(editor, manifest)
        if editor.name == "krita" and editor.kritarc:
            set_kritarc(editor.kritarc, manifest)
            out.detail("enabled in %s ([python] enable_neural_style=true)" % editor.kritarc)
        if not args.no_editor_deps:
            editor_deps(editor, engine_python, manifest)
        out.remember("%s plugin" % editor.label, editor.plugin_dir)
        manifest.data.setdefault("editors", {})[editor.plugin_dir] = {
            "name": editor.name, "variant": editor.variant, "folder": editor.folder, "kritarc": editor.kritarc}
        manifest.save()


# ---------------------------------------------------------------------------------------------
# engine.json and the background service
# ---------------------------------------------------------------------------------------------


def write_engine_config(engine_python, weights, manifest):
    path = paths.engine_config_path()
    out.step("Engine start command -> %s" % path)
    make_dirs(os.path.dirname(path), manifest)
    config = {"command": [engine_python, "-m", "engine_server"], "weights": weights, "version": VERSION}
    write_text_atomic(path, json.dumps(config, indent=2) + "\n")
    manifest.add("file", path, what="engine.json")
    manifest.save()
    out.detail("the plugins start the engine with: %s -m engine_server" % engine_python)
    out.remember("engine start command", path)


def read_engine_config():
    """engine.json as a dict with a "command" list, or None when it is missing or damaged."""
    try:
        with open(paths.engine_config_path(), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    command = config.get("command") if isinstance(config, dict) else None
    return config if isinstance(command, list) and command and isinstance(command[0], str) else None


def systemd_user_available():
    if not shutil.which("systemctl"):
        return False
    code, _ = quiet(["systemctl", "--user", "show-environment"], timeout=10)
    return code == 0


def systemd_unit(engine_python, weights):
    def quote(word):
        return '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return ("[Unit]\n"
            "Description=Neural Style engine (VGG-19 style transfer for GIMP and Krita)\n"
            "Documentation=file://%s\n\n"
            "[Service]\n"
            "Type=simple\n"
            "ExecStart=%s -m engine_server run\n"
            "Environment=%s\n"
            "Restart=on-failure\n"
            "RestartSec=5\n\n"
            "[Install]\n"
            "WantedBy=default.target\n"
            % (os.path.join(HERE, "docs", "install.md"), quote(engine_python),
               quote("%s=%s" % (paths.WEIGHTS_ENV, weights))))


def launchd_plist(engine_python, weights):
    from xml.sax.saxutils import escape
    log = os.path.join(paths.state_dir(), "engine-launchd.log")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
            '<plist version="1.0"><dict>\n'
            '  <key>Label</key><string>%s</string>\n'
            '  <key>ProgramArguments</key><array><string>%s</string><string>-m</string>'
            '<string>engine_server</string><string>run</string></array>\n'
            '  <key>EnvironmentVariables</key><dict><key>%s</key><string>%s</string></dict>\n'
            '  <key>RunAtLoad</key><true/>\n'
            '  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n'
            '  <key>StandardErrorPath</key><string>%s</string>\n'
            '</dict></plist>\n'
            % (LAUNCHD_LABEL, escape(engine_python), paths.WEIGHTS_ENV, escape(weights), escape(log)))


def windows_task(engine_python):
    """The schtasks command that registers the engine to start (windowless, via pythonw) at logon."""
    pythonw = os.path.join(os.path.dirname(engine_python), "pythonw.exe")
    runner = pythonw if os.path.exists(pythonw) else engine_python
    return ["schtasks", "/Create", "/F", "/TN", WINDOWS_TASK, "/SC", "ONLOGON", "/RL", "LIMITED",
            "/TR", '"%s" -m engine_server run' % runner]


def service_file():
    system = platform.system()
    if system == "Darwin":
        return _home("Library", "LaunchAgents", LAUNCHD_LABEL + ".plist")
    if system == "Windows":
        return None
    return os.path.join(_xdg("XDG_CONFIG_HOME", ".config"), "systemd", "user", SERVICE_NAME + ".service")


def install_service(args, engine_python, weights, manifest):
    out.step("Background service")
    if args.no_service:
        out.detail("--no-service: none registered; the plugins start the engine when they need it")
        return
    system = platform.system()
    start = not args.no_start
    if system == "Windows":
        create = windows_task(engine_python)
        manifest.add("service", WINDOWS_TASK, platform="windows")
        run(create)
        out.detail("logon task %s: %s" % (WINDOWS_TASK, create[-1]))
        if start and run(["schtasks", "/Run", "/TN", WINDOWS_TASK], check=False)[0] == 0:
            manifest.add("service", WINDOWS_TASK, started=True)
        out.remember("logon task", WINDOWS_TASK)
        manifest.save()
        return
    path = service_file()
    make_dirs(os.path.dirname(path), manifest)
    if system == "Darwin":
        make_dirs(paths.state_dir(), manifest)
        write_text_atomic(path, launchd_plist(engine_python, weights))
        manifest.add("service", path, platform="launchd")
        manifest.save()
        out.detail("launchd agent %s" % path)
        if start:
            domain = "gui/%d" % os.getuid()
            quiet(["launchctl", "bootout", "%s/%s" % (domain, LAUNCHD_LABEL)], timeout=30)
            if run(["launchctl", "bootstrap", domain, path], check=False)[0] == 0:
                manifest.add("service", path, started=True)
            out.detail("loaded: it starts at login and now")
        out.remember("launchd agent", path)
        return
    write_text_atomic(path, systemd_unit(engine_python, weights))
    manifest.add("service", path, platform="systemd")
    manifest.save()
    out.detail("systemd user unit %s" % path)
    if not start:
        out.detail("--no-start: written, not enabled (systemctl --user enable --now %s)" % SERVICE_NAME)
    elif systemd_user_available():
        run(["systemctl", "--user", "daemon-reload"], check=False)
        code, _ = run(["systemctl", "--user", "enable", "--now", SERVICE_NAME], check=False)
        if code == 0:
            run(["systemctl", "--user", "restart", SERVICE_NAME], check=False)   # picks up an upgrade
            manifest.add("service", path, started=True)
            out.detail("enabled and started")
        else:
            out.warn("systemctl could not enable it; the plugins will start the engine on demand")
    else:
        out.detail("no systemd user session here: written, not enabled; the plugins start the engine on demand")
    out.remember("systemd user unit", path)


# ---------------------------------------------------------------------------------------------
# --check
# ---------------------------------------------------------------------------------------------

OK, WARN, FAIL = "ok", "WARN", "FAIL"
DEVICE_PROBE = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print("TF TensorFlow", tf.__version__ + ",", ", ".join(g.name for g in gpus) or "CPU only")
"""


def last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def check(args):
    manifest = Manifest(os.path.join(paths.config_dir(), MANIFEST_NAME))
    rows = []   # (part, status, detail, what to do)

    def row(part, status, detail, todo=""):
        rows.append((part, status, detail, todo))

    # Editors and plugins: the ones found now and the ones installed before.
    editors = {e.plugin_dir: e for e in find_editors(args)}
    for plugin_dir, info in manifest.data.get("editors", {}).items():
        if plugin_dir not in editors:
            editors[plugin_dir] = Editor(info["name"], info["variant"], info["folder"], kritarc=info.get("kritarc"))
    if not editors and not (args.no_plugins or (args.no_krita and args.no_gimp)):
        row("editors", FAIL, "neither GIMP 3 nor Krita found", "install one, start it once, re-run the installer")
    for editor in editors.values():
        info_path = os.path.join(editor.plugin_dir, "install_info.json")
        entry = os.path.join(editor.plugin_dir, PLUGIN_NAME + ".py") if editor.name == "gimp" else os.path.join(
            editor.folder, PLUGIN_NAME + ".desktop")
        if not os.path.exists(info_path) or not os.path.exists(entry):
            row(editor.label, FAIL, "plugin missing in %s" % editor.folder, "run: python3 installer.py")
            continue
        with open(info_path, encoding="utf-8") as f:
            installed = json.load(f).get("version")
        if not os.path.isdir(os.path.join(editor.plugin_dir, "shared")):
            row(editor.label, FAIL, "plugin %s lacks its shared/ folder" % installed, "run: python3 installer.py")
        elif editor.name == "gimp" and os.name != "nt" and not os.access(entry, os.X_OK):
            row(editor.label, FAIL, "%s is not executable" % entry, "run: python3 installer.py")
        elif installed != VERSION:
            row(editor.label, FAIL, "plugin %s installed, this checkout is %s" % (installed, VERSION),
                "run: python3 installer.py (upgrades in place)")
        else:
            row(editor.label, OK, "plugin %s in %s" % (installed, editor.folder))
        if editor.name == "krita" and editor.kritarc:
            enabled = False
            if os.path.exists(editor.kritarc):
                with open(editor.kritarc, encoding="utf-8", errors="replace") as f:
                    in_python = False
                    for line in f:
                        if line.strip().startswith("["):
                            in_python = line.strip() == "[python]"
                        elif in_python and line.replace(" ", "").strip() == "enable_%s=true" % PLUGIN_NAME:
                            enabled = True
            row("  enabled in kritarc", OK if enabled else FAIL, editor.kritarc,
                "" if enabled else "run: python3 installer.py (or Krita: Settings > Python Plugin Manager)")
        deps = "  pyzmq/msgpack for it"
        vendored = all(os.path.isdir(os.path.join(editor.vendor_dir(), m)) for m in ("zmq", "msgpack"))
        if vendored:
            row(deps, OK, "unpacked in %s" % editor.vendor_dir())
        elif editor.python_probe:
            has_deps, version = probe_editor_python(editor)
            if has_deps:
                row(deps, OK, "its Python %s imports them" % version)
            elif version:
                row(deps, FAIL, "its Python %s cannot import them" % version,
                    system_dep_hint() if editor.variant == "native" else "run: python3 installer.py")
            else:
                row(deps, WARN, "could not run %s" % " ".join(editor.python_probe),
                    "make sure the editor's Python can import zmq and msgpack (docs/install.md)")
        else:
            row(deps, WARN, "not placed for the editor's own Python",
                "re-run with --%s-python X.Y (docs/install.md)" % editor.name)

    # The engine's Python, TensorFlow's device, engine.json
    config_path = paths.engine_config_path()
    config = read_engine_config()
    engine_python = None
    if not os.path.exists(config_path):
        row("engine.json", FAIL, "%s is missing" % config_path, "run: python3 installer.py")
    elif config is None:
        row("engine.json", FAIL, "%s is not the installer's JSON" % config_path, "run: python3 installer.py")
    else:
        engine_python = config["command"][0]
        row("engine.json", OK, "%s (version %s)" % (config_path, config.get("version")))
    if engine_python:
        code, text = quiet([engine_python, "-c", "import engine_server, shared, os; "
                                                  "print(list(engine_server.__path__)[0])"], timeout=60,
                           cwd=tempfile.gettempdir())
        if code != 0:
            row("engine Python", FAIL, "%s cannot import the engine: %s" % (engine_python, last_line(text)),
                "run: python3 installer.py (it repairs the environment)")
            engine_python = None
        else:
            row("engine Python", OK, "%s (engine in %s)" % (engine_python, text.strip().splitlines()[-1]))
    if engine_python:
        code, text = quiet([engine_python, "-c", DEVICE_PROBE], timeout=180)
        lines = [line for line in (text or "").splitlines() if line.startswith("TF ")]
        if code == 0 and lines:
            device = lines[-1][3:]
            driver = nvidia_driver() if platform.system() == "Linux" else None
            if driver and "CPU only" in device:
                row("TensorFlow device", FAIL, "%s, though %s" % (device, driver),
                    "run: python3 installer.py --tensorflow gpu")
            else:
                row("TensorFlow device", OK, device)
        else:
            row("TensorFlow device", FAIL, "TensorFlow does not import: %s" % last_line(text),
                "run: python3 installer.py")

    # Weights
    weights = paths.default_weights_path()
    record = manifest.find("file", weights) or {}
    if not os.path.exists(weights):
        row("VGG-19 weights", FAIL, "%s is missing" % weights, "run: python3 installer.py (or --weights FILE)")
    else:
        actual = md5_of(weights)
        if actual == WEIGHTS_MD5:
            row("VGG-19 weights", OK, "%s, md5 verified" % weights)
        elif record.get("verified") is False and record.get("md5") == actual:
            row("VGG-19 weights", WARN,
                "%s is an UNVERIFIED file installed with --no-verify (md5 %s)" % (weights, actual),
                "fine for tests; for real use run: python3 installer.py (downloads the Keras file)")
        else:
            row("VGG-19 weights", FAIL, "%s is damaged or not the Keras VGG-19 file (md5 %s)" % (weights, actual),
                "run: python3 installer.py (downloads it again) or --weights FILE")

    # Service and reachability
    service = next((i for i in manifest.items if i["kind"] == "service"), None)
    if service and service.get("platform") in ("systemd", "launchd"):
        present = os.path.exists(service["path"])
        row("service", OK if present else FAIL, service["path"] if present else "%s is missing" % service["path"],
            "" if present else "run: python3 installer.py")
    elif service:
        row("service", OK, "logon task %s" % service["path"])
    else:
        row("service", OK, "none (the plugins start the engine on demand)")
    if engine_python:
        code, text = quiet([engine_python, "-m", "engine_server", "status"], timeout=30)
        message = last_line(text)
        if code == 0:
            row("engine reachable", OK, message or "answers")
        elif "No module named" in (text or "") or (code == 2 and "invalid choice" in (text or "")):
            row("engine reachable", FAIL, "the engine has no `status` command (%s)" % message,
                "this checkout or environment is incomplete: update it, then run: python3 installer.py")
        elif service and service.get("started"):
            row("engine reachable", FAIL, message or "does not answer",
                "see %s; start it: %s -m engine_server start" % (paths.log_path(), engine_python))
        else:
            row("engine reachable", WARN,
                "not running (%s); the plugins start it on demand" % (message or "no answer"),
                "to try now: %s -m engine_server start" % engine_python)

    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    print("\nNeural Style installation check (installer %s)\n" % VERSION)
    for part, status, detail, todo in rows:
        print("  %-*s  %-4s  %s" % (widths[0], part, status, detail))
        if todo and status != OK:
            print("  %-*s        -> %s" % (widths[0], "", todo))
    failures = sum(1 for r in rows if r[1] == FAIL)
    print("\n%s" % ("all is well" if not failures else "%d problem(s): see the -> lines above" % failures))
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------
# --uninstall
# ---------------------------------------------------------------------------------------------


def stop_service(item):
    kind = item.get("platform")
    if kind == "systemd" and systemd_user_available():
        quiet(["systemctl", "--user", "disable", "--now", SERVICE_NAME], timeout=60)
        quiet(["systemctl", "--user", "daemon-reload"], timeout=30)
    elif kind == "launchd" and hasattr(os, "getuid"):
        quiet(["launchctl", "bootout", "gui/%d/%s" % (os.getuid(), LAUNCHD_LABEL)], timeout=30)
    elif kind == "windows":
        quiet(["schtasks", "/End", "/TN", WINDOWS_TASK], timeout=30)
        quiet(["schtasks", "/Delete", "/F", "/TN", WINDOWS_TASK], timeout=30)


def engine_may_be_running():
    """A pidfile or a socket of the engine exists. Asked without running the engine's CLI, which would
    write its log into the state folder (and so leave a file behind that the installer did not make)."""
    return bool(glob.glob(os.path.join(paths.state_dir(), "engine-*.pid")) or
                glob.glob(os.path.join(paths.runtime_dir(), "*")))


def uninstall():
    manifest_path = os.path.join(paths.config_dir(), MANIFEST_NAME)
    if not os.path.exists(manifest_path):
        print("Nothing to uninstall: no install manifest at %s" % manifest_path)
        return 0
    manifest = Manifest(manifest_path)
    print("Uninstalling what installer.py installed (manifest %s)" % manifest_path)
    python = (read_engine_config() or {}).get("command", [None])[0]
    if python and os.path.exists(python) and engine_may_be_running():
        quiet([python, "-m", "engine_server", "stop"], timeout=60)
    problems = 0
    for item in reversed(manifest.items):
        kind, path = item["kind"], item["path"]
        try:
            if kind == "service":
                stop_service(item)
                if item.get("platform") != "windows" and os.path.exists(path):
                    os.remove(path)
            elif kind == "kritarc":
                unset_kritarc(item)
            elif kind == "dir":
                if os.path.isdir(path) and not os.listdir(path):
                    os.rmdir(path)
                else:
                    continue   # still holds something: looked at again after the manifest is gone
            elif os.path.lexists(path):
                remove_path(path)
            else:
                continue
            print("  removed %s %s" % (kind, path))
        except OSError as error:
            problems += 1
            print("  could not remove %s: %s" % (path, error))
    if problems:
        print("%d item(s) could not be removed; the manifest is kept: %s" % (problems, manifest_path))
        return 1
    os.remove(manifest_path)
    for item in reversed(manifest.items):   # folders that held only the manifest
        if item["kind"] == "dir" and os.path.isdir(item["path"]) and not os.listdir(item["path"]):
            os.rmdir(item["path"])
        elif item["kind"] == "dir" and os.path.isdir(item["path"]):
            print("  kept %s: it holds files the installer did not put there" % item["path"])
    print("Done. Your style library (%s) and engine logs, if any, were not installed by the installer and are kept."
          % paths.library_dir())
    return 0


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="installer.py",
        description="Install (or upgrade) the Neural Style engine, VGG-19 weights, GIMP 3 and Krita plugins, "
                    "and a background service. See docs/install.md.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="print a table of every part and exit 0 only when all is well")
    mode.add_argument("--uninstall", action="store_true", help="remove everything this installer installed")
    env = parser.add_argument_group("engine environment")
    env.add_argument("--prefix", help="the engine's virtual environment (default: DATA_DIR/venv)")
    env.add_argument("--python", help="the Python 3.11-3.13 that creates the venv (default: the one running this)")
    env.add_argument("--system-site-packages", action="store_true",
                     help="let the venv see that Python's packages (offline machines, CI: nothing is downloaded "
                          "that is already installed there)")
    env.add_argument("--dev", action="store_true",
                     help="no venv: pip-install the engine (editable) and test dependencies into this Python")
    env.add_argument("--reuse-env", action="store_true",
                     help="no venv, no pip: run the engine with this Python as it is (its packages must be there)")
    env.add_argument("--break-system-packages", action="store_true",
                     help="with --dev: allow pip to install into a distribution-managed Python")
    env.add_argument("--tensorflow", choices=("auto", "cpu", "gpu"), default="auto",
                     help="TensorFlow build: auto = GPU on Linux when an NVIDIA driver is present (default)")
    weights = parser.add_argument_group("weights")
    weights.add_argument("--weights", metavar="FILE", help="install this local copy of the VGG-19 notop .h5 file")
    weights.add_argument("--no-verify", action="store_true", help="with --weights: skip the md5 check (test files only)")
    weights.add_argument("--weights-url", default=WEIGHTS_URL, help="download from this mirror (same file, same md5)")
    weights.add_argument("--no-weights", action="store_true", help="skip the weights")
    plugins = parser.add_argument_group("plugins")
    plugins.add_argument("--krita-dir", action="append", metavar="PYKRITA", help="Krita's pykrita folder (repeatable)")
    plugins.add_argument("--gimp-dir", action="append", metavar="PLUG_INS", help="GIMP 3's plug-ins folder (repeatable)")
    plugins.add_argument("--kritarc", metavar="FILE", help="the kritarc to enable the plugin in")
    plugins.add_argument("--krita-python", metavar="X.Y", help="Krita's own Python version: place pyzmq/msgpack for it")
    plugins.add_argument("--gimp-python", metavar="X.Y", help="GIMP's own Python version: place pyzmq/msgpack for it")
    plugins.add_argument("--no-editor-deps", action="store_true",
                         help="do not check or place pyzmq/msgpack for the editors")
    plugins.add_argument("--no-krita", action="store_true", help="skip Krita")
    plugins.add_argument("--no-gimp", action="store_true", help="skip GIMP")
    plugins.add_argument("--no-plugins", action="store_true", help="skip both plugins")
    service = parser.add_argument_group("service")
    service.add_argument("--no-service", action="store_true",
                         help="register no service (the plugins start the engine on demand)")
    service.add_argument("--no-start", action="store_true", help="register the service but do not enable/start it")
    args = parser.parse_args(argv)
    if args.dev and args.reuse_env:
        parser.error("--dev and --reuse-env exclude each other: --dev installs into this Python, "
                     "--reuse-env installs nothing")
    if (args.dev or args.reuse_env) and (args.prefix or args.system_site_packages or args.python):
        parser.error("--prefix, --python and --system-site-packages are for the venv; --dev/--reuse-env use no venv")
    if args.no_verify and not args.weights:
        parser.error("--no-verify only applies to --weights FILE")
    for version in (args.krita_python, args.gimp_python):
        if version and not re.match(r"^3\.\d{1,2}$", version):
            parser.error("--krita-python/--gimp-python take a version like 3.10, got %r" % version)
    return args


def install(args):
    config = paths.config_dir()
    manifest_path = os.path.join(config, MANIFEST_NAME)
    manifest = Manifest(manifest_path)
    make_dirs(config, manifest)
    if hasattr(os, "getuid"):
        os.chmod(config, 0o700)   # engine.json says what to run; CurveZMQ keys live here too
    make_dirs(paths.state_dir(), manifest)
    out.open_log(paths_log())
    manifest.add("file", paths_log(), what="installer log")
    manifest.save()
    out.say("Neural Style installer %s (Python %s on %s %s)" % (VERSION, platform.python_version(), platform.system(),
                                                               platform.machine()))
    out.say("source: %s" % HERE)
    editors = [] if args.no_plugins else find_editors(args)
    if not args.no_plugins:   # before anything slow: a checkout without plugins fails now
        for name in sorted({e.name for e in editors}):
            plugin_sources(name)
    try:
        engine_python = install_engine(args, manifest)
        if args.no_weights:
            weights = paths.default_weights_path()
            out.step("VGG-19 weights: skipped (--no-weights)")
        else:
            weights = install_weights(args, manifest)
        if args.no_plugins:
            out.step("Plugins: skipped (--no-plugins)")
        else:
            install_plugins(args, editors, engine_python, manifest)
        write_engine_config(engine_python, weights, manifest)
        install_service(args, engine_python, weights, manifest)
    finally:   # also after a failure: whatever was made so far stays listed for --uninstall
        manifest.save()
    out.say("\nSummary")
    width = max(len(what) for what, _ in out.summary) if out.summary else 0
    for what, where in out.summary:
        out.say("  %-*s  %s" % (width, what, where))
    out.say("  %-*s  %s" % (width, "installer log", paths_log()))
    out.say("  %-*s  %s" % (width, "uninstall with", "python3 installer.py --uninstall"))
    if out.actions:
        out.say("\nStill to do:")
        for action in out.actions:
            out.say("  - " + action)
    out.say("\nDone. Restart GIMP or Krita; `python3 installer.py --check` shows the state of every part.")
    return 0


def main(argv=None):
    if sys.version_info < (3, 9):
        print("installer.py needs Python 3.9 or newer (this is %s)" % platform.python_version())
        return 2
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.check:
            return check(args)
        if args.uninstall:
            return uninstall()
        return install(args)
    except InstallError as error:
        out.say("\nERROR: %s" % error)
        if out.log_file:
            out.say("(the full log is in %s)" % paths_log())
        return 1
    except KeyboardInterrupt:
        out.say("\nInterrupted. Run the installer again to finish: it picks up where it stopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
