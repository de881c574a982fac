"""The install run: every step in order. A step that fails says so in one line and the steps that do
not need it still run; the run ends with one line naming what is missing and the command that
finishes it (and exit 1). A later run with --weights, when only the weights were missing, installs
just them."""

import os
import platform
import sys

from installing.editors import find_editors
from installing.engine_config import read_engine_config, write_engine_config
from installing.engine_env import install_engine
from installing.manifest import Manifest, make_dirs, manifest_path
from installing.output import InstallError, out
from installing.plugins import install_plugins, plugin_sources
from installing.project import HERE, VERSION, WEIGHTS_MD5, paths, paths_log
from installing.service import install_service, start_pending_service
from installing.weights import install_weights, md5_of

WEIGHTS_MISSING = ("the VGG-19 weights", "python3 installer.py --weights FILE")


def _open(args):
    config = paths.config_dir()
    manifest = Manifest(manifest_path())
    make_dirs(config, manifest)
    if hasattr(os, "getuid"):
        os.chmod(config, 0o700)   # engine.json says what to run; CurveZMQ keys live here too
    make_dirs(paths.state_dir(), manifest)
    out.open_log(paths_log())
    manifest.add("file", paths_log(), what="installer log")
    manifest.save()
    out.say("Neural Style installer %s (Python %s on %s %s)" % (VERSION, platform.python_version(), platform.system(),
                                                               platform.machine()))
    out.say("installing from the checkout %s" % HERE)
    return manifest


def only_weights_missing(args, manifest):
    """True when the last run of this version installed everything but the weights, and its engine is there."""
    config = read_engine_config()
    return bool(args.weights and manifest.data.get("pending") == ["weights"] and manifest.data.get("version") == VERSION
                and config and os.path.exists(config["command"][0]))


def _step(missing, what, finish, action, *arguments):
    """Run one step; on an InstallError print it, note what is missing, and return None."""
    try:
        return action(*arguments)
    except InstallError as error:
        out.say("    ERROR: %s" % error)
        missing.append((what, finish))
        return None


def _weights(args, manifest, missing):
    if args.no_weights:
        out.step("VGG-19 weights: skipped (--no-weights)")
        return False
    if _step(missing, *WEIGHTS_MISSING, install_weights, args, manifest) is not None:
        return True
    destination = paths.default_weights_path()
    record = manifest.find("file", destination) or {}
    if os.path.exists(destination) and record.get("md5") in (WEIGHTS_MD5, md5_of(destination)):
        out.detail("the weights installed before are kept: %s" % destination)
        missing[-1] = ("the weights from --weights (the ones installed before are kept and work)", WEIGHTS_MISSING[1])
        return True
    return False


def finish_weights(args, manifest):
    out.say("The last run installed everything but the weights: installing only them.")
    missing = []
    if _weights(args, manifest, missing):
        manifest.data["pending"] = []
        start_pending_service(manifest)
    manifest.save()
    return _end(missing, manifest)


def install(args):
    manifest = _open(args)
    if only_weights_missing(args, manifest):
        return finish_weights(args, manifest)
    editors = [] if args.no_plugins else find_editors(args)
    if not args.no_plugins:   # before anything slow: a checkout without plugins fails now
        for name in sorted({e.name for e in editors}):
            plugin_sources(name)
    missing = []
    try:
        engine_python = _step(missing, "the engine environment", "fix that, then run: python3 installer.py",
                              install_engine, args, manifest)
        weights_ready = _weights(args, manifest, missing)
        if args.no_plugins:
            out.step("Plugins: skipped (--no-plugins)")
        else:   # the plugins need no engine; pip for their wheels is the engine's or this Python's
            missing += install_plugins(args, editors, engine_python or sys.executable, manifest)
        weights = paths.default_weights_path()
        if engine_python:
            _step(missing, "engine.json", "fix that, then run: python3 installer.py",
                  write_engine_config, engine_python, weights, manifest)
            _step(missing, "the background service", "fix that, then run: python3 installer.py",
                  install_service, args, engine_python, weights, manifest, weights_ready or args.no_weights)
        else:
            out.step("engine.json and background service: skipped (they need the engine environment)")
            missing.append(("engine.json and the service", "fix that, then run: python3 installer.py"))
        manifest.data["pending"] = [m for m in ("weights",) if WEIGHTS_MISSING in missing]
    finally:   # also after a failure: whatever was made so far stays listed for --uninstall
        manifest.save()
    return _end(missing, manifest, editors)


def _end(missing, manifest, editors=()):
    out.say("\nSummary")
    width = max([len(what) for what, _ in out.summary] + [len("installer log")])
    for what, where in out.summary:
        out.say("  %-*s  %s" % (width, what, where))
    out.say("  %-*s  %s" % (width, "installer log", paths_log()))
    out.say("  %-*s  %s" % (width, "uninstall with", "python3 installer.py --uninstall"))
    if out.actions:
        out.say("\nStill to do:")
        for action in out.actions:
            out.say("  - " + action)
    if missing:
        what = ", ".join(w for w, _ in missing)
        finish = "; ".join(sorted({f for _, f in missing}))
        out.say("\nNOT FINISHED, missing: %s (the other parts are installed). To finish: %s" % (what, finish))
        return 1
    names = sorted({"Krita" if e.name == "krita" else "GIMP" for e in editors})
    restart = "Restart %s; " % " and ".join(names) if names else ""
    out.say("\nDone. %s`python3 installer.py --check` shows the state of every part." % restart)
    return 0
