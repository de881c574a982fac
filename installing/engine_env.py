"""The engine's Python environment: a venv (or --dev / --reuse-env), the TensorFlow build for this
machine, and the pinned packages installed with pip."""

import importlib.util
import os
import platform
import re
import shutil
import sys
import tempfile

from installing.manifest import make_dirs, remove_path
from installing.output import InstallError, out, quiet, run
from installing.project import ENGINE_PYTHON, HERE, PINNED, TENSORFLOW_VERSION, TEST_PINNED, paths, paths_log


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


def engine_location(package_dir):
    """Where the engine runs from, truthfully: a copy in the environment, or this checkout (editable)."""
    if os.path.realpath(package_dir).startswith(os.path.realpath(HERE) + os.sep):
        return "the engine runs from this checkout (%s): edits take effect at its next start" % package_dir
    return ("the engine runs from its installed copy %s (re-run the installer to take up changes to the checkout)"
            % package_dir)


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
        code, text = quiet([sys.executable, "-c", "import engine_server; print(list(engine_server.__path__)[0])"],
                           timeout=60, cwd=tempfile.gettempdir())
        if code == 0:
            out.detail(engine_location(text.strip().splitlines()[-1]))
        else:
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
    # from a neutral folder, as the plugins start it (in the checkout, the checkout itself would import)
    code, text = quiet([python, "-c", "import engine_server, shared; print(list(engine_server.__path__)[0])"],
                       timeout=120, cwd=tempfile.gettempdir())
    if code != 0:
        raise InstallError("the engine does not import in %s after installing: %s" % (prefix, text.strip()[-300:]))
    out.detail(engine_location(text.strip().splitlines()[-1]))
    out.remember("engine virtual environment", prefix)
    return python
