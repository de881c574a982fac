"""Run the real Krita once, headless, with the real plugin and the test driver in a throwaway profile.

Per ../shared/EDITORS.md: Xvfb (xvfb-run), HOME and XDG_* in a temp folder, PYTHONHOME/PYTHONPATH
unset, plugins enabled in kritarc, the whole launch wrapped in `timeout`. A profile Krita has
initialised once (its resource database takes ~20 s to build) is kept in the temp folder and
copied for later sessions, so a start costs ~5 s.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from tests.support.krita_install import install_plugin

DRIVER_NAME = "ns_test_driver"
DRIVER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "krita_driver.py")
PROFILE_PARTS = ("home", "config", "data", "cache")
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


def krita_tools():
    """(krita, xvfb-run, timeout) executables, or None when one of them is missing."""
    tools = tuple(shutil.which(name, path=SYSTEM_PATH) for name in ("krita", "xvfb-run", "timeout"))
    return tools if all(tools) else None


def _profile_cache_dir(krita):
    stat = os.stat(os.path.realpath(krita))
    key = "%d-%d" % (stat.st_size, int(stat.st_mtime))
    return os.path.join(tempfile.gettempdir(), "neural-style-krita-profile-%d-%s" % (os.getuid(), key))


def _desktop_file(name):
    return ("[Desktop Entry]\nType=Service\nServiceTypes=Krita/PythonPlugin\nX-KDE-Library=%s\n"
            "X-Python-2-Compatible=false\nName=%s\n" % (name, name))


def _write_kritarc(path, enabled):
    """kritarc with our plugins enabled and Krita's bundled ones disabled (starts faster)."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[python]"
        if not skipping:
            kept.append(line)
    bundled = []
    for folder in ("/usr/share/krita/pykrita", "/usr/local/share/krita/pykrita"):
        if os.path.isdir(folder):
            bundled += [name[len("kritapykrita_"):-len(".desktop")] for name in os.listdir(folder)
                        if name.startswith("kritapykrita_") and name.endswith(".desktop")]
    lines = ["[python]"] + ["enable_%s=false" % name for name in sorted(set(bundled))]
    lines += ["enable_%s=true" % name for name in enabled]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines + [""] + kept) + "\n")


def prepare_profile(root, krita):
    """A profile folder under `root` (from the initialised copy when there is one); returns env."""
    cache = _profile_cache_dir(krita)
    for part in PROFILE_PARTS:
        target = os.path.join(root, part)
        if os.path.isdir(os.path.join(cache, part)):
            shutil.copytree(os.path.join(cache, part), target, symlinks=True)
        else:
            os.makedirs(target, exist_ok=True)
    runtime = os.path.join(root, "runtime")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    os.chmod(runtime, 0o700)
    pykrita = os.path.join(root, "data", "krita", "pykrita")
    install_plugin(pykrita)
    driver = os.path.join(pykrita, DRIVER_NAME)
    if os.path.exists(driver):
        shutil.rmtree(driver)
    os.makedirs(driver)
    shutil.copy2(DRIVER_SOURCE, os.path.join(driver, "__init__.py"))
    with open(os.path.join(pykrita, DRIVER_NAME + ".desktop"), "w", encoding="utf-8") as f:
        f.write(_desktop_file(DRIVER_NAME))
    _write_kritarc(os.path.join(root, "config", "kritarc"), ["neural_style", DRIVER_NAME])
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "NEURAL_STYLE_ENGINE", "NEURAL_STYLE_ENDPOINT",
                          "NEURAL_STYLE_WEIGHTS", "DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
           and not key.startswith("PYENV")}
    # Krita's embedded Python finds its prefix through a `python3` on PATH: with pyenv's or a venv's
    # first, it loads that Python's library, which has no PyQt5, and no plugin loads.
    env["PATH"] = SYSTEM_PATH
    env.update(HOME=os.path.join(root, "home"), XDG_CONFIG_HOME=os.path.join(root, "config"),
               XDG_DATA_HOME=os.path.join(root, "data"), XDG_CACHE_HOME=os.path.join(root, "cache"),
               XDG_STATE_HOME=os.path.join(root, "home", ".local", "state"), XDG_RUNTIME_DIR=runtime)
    return env, cache


def _keep_initialised_profile(root, cache):
    if os.path.isdir(cache):
        return
    staging = tempfile.mkdtemp(prefix=os.path.basename(cache) + ".", dir=os.path.dirname(cache))
    try:
        for part in PROFILE_PARTS:
            shutil.copytree(os.path.join(root, part), os.path.join(staging, part), symlinks=True,
                            ignore=shutil.ignore_patterns(DRIVER_NAME, DRIVER_NAME + ".desktop", "neural_style",
                                                          "neural_style.desktop", "neural-style"))
        os.rename(staging, cache)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def run_krita(root, scenario, timeout_s=300, engine_config=None):
    """Start Krita once with the driver running `scenario`; returns (results or None, details).
    `engine_config` (or the scenario's "engine_config"): the installer's engine.json to put in the
    profile (a dict), as after an install."""
    krita, xvfb_run, timeout = krita_tools()
    env, cache = prepare_profile(root, krita)
    engine_config = engine_config if engine_config is not None else scenario.get("engine_config")
    if engine_config is not None:
        folder = os.path.join(env["XDG_CONFIG_HOME"], "neural-style")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "engine.json"), "w", encoding="utf-8") as f:
            json.dump(engine_config, f)
    results_path = os.path.join(root, "results.json")
    scenario = dict(scenario, results=results_path)
    scenario_path = os.path.join(root, "scenario.json")
    with open(scenario_path, "w", encoding="utf-8") as f:
        json.dump(scenario, f)
    env["NS_TEST_SCENARIO"] = scenario_path
    log_path = os.path.join(root, "krita.log")
    command = [timeout, "-k", "10", str(timeout_s), xvfb_run, "-a", "-s", "-screen 0 1280x1024x24",
               krita, "--nosplash"]
    started = time.monotonic()
    for attempt in range(3):
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
            try:
                code = process.wait(timeout_s + 30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
        # xvfb-run -a picks a free display number, but another session on this machine may take it
        # between the pick and Xvfb's start: Krita then never ran, so run it again.
        if os.path.exists(results_path) or "could not connect to display" not in _read(log_path):
            break
        time.sleep(1.0 + attempt)
    details = {"exit_code": code, "seconds": time.monotonic() - started, "log": log_path,
               "profile_cached": os.path.isdir(cache), "plugin_log": _read(os.path.join(
                   env["XDG_STATE_HOME"], "neural-style", "krita-plugin.log")),
               "python_faults": _read(os.path.join(root, "python-faults.txt"))}
    results = None
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    if results is not None and results.get("finished"):
        _keep_initialised_profile(root, cache)
    return results, details


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def log_tail(details, lines=40):
    """The end of Krita's output, plus the Python stacks if Krita crashed."""
    try:
        with open(details["log"], encoding="utf-8", errors="replace") as f:
            text = "".join(line for line in f.readlines() if "krita.lib.resources" not in line)
    except OSError:
        text = "(no log)\n"
    tail = "".join(text.splitlines(True)[-lines:])
    if details.get("python_faults"):
        tail += "\nPython stacks at the crash:\n" + details["python_faults"]
    return tail
