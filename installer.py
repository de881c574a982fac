#!/usr/bin/env python3
"""Set up Neural Style: the engine's Python environment, the VGG-19 weights, the GIMP 3 and Krita
plugins, the engine.json the plugins use to start the engine, and a background service.

    python3 installer.py              install or upgrade everything (run it again any time)
    python3 installer.py --check      a table of every part, with what to do about each failure
    python3 installer.py --uninstall  remove everything this installer put on the machine
    python3 installer.py --first-run  stylize the bundled samples with the installed engine

Standard library only, Python 3.9+, Linux, macOS and Windows. `docs/install.md` says what goes
where on each platform. Every file and folder it creates is listed in a manifest
(`install-manifest.json` in the config folder), so `--uninstall` removes exactly those.

This file parses the arguments and runs the steps; each step is a module of `installing/`
(the map is in installing/__init__.py and docs/install.md).
"""

import sys

MINIMUM_PYTHON = (3, 9)


def python_too_old():
    """The message for a Python older than MINIMUM_PYTHON, or None. Checked before anything else is
    imported, so an old Python prints this sentence instead of failing somewhere in installing/."""
    if sys.version_info >= MINIMUM_PYTHON:
        return None
    import platform
    return "installer.py needs Python %d.%d or newer (this is %s)" % (MINIMUM_PYTHON + (platform.python_version(),))


if __name__ == "__main__" and python_too_old():
    print(python_too_old())
    sys.exit(2)

import argparse  # noqa: E402 (after the version check on purpose)
import os  # noqa: E402
import re  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:   # run from any folder, also with PYTHONSAFEPATH / -P
    sys.path.insert(0, HERE)

from installing.check import check  # noqa: E402
from installing.first_run import first_run  # noqa: E402
from installing.output import InstallError, out  # noqa: E402
from installing.project import WEIGHTS_URL, paths_log  # noqa: E402
from installing.sequence import install  # noqa: E402
from installing.uninstall import uninstall  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="installer.py",
        description="Install (or upgrade) the Neural Style engine, VGG-19 weights, GIMP 3 and Krita plugins, "
                    "and a background service. See docs/install.md.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="print a table of every part and exit 0 only when all is well")
    mode.add_argument("--uninstall", action="store_true", help="remove everything this installer installed")
    mode.add_argument("--first-run", nargs="?", const="neural-style-first.png", metavar="OUT",
                      help="stylize the bundled sample photo with the bundled painting using the installed engine "
                           "(default OUT: neural-style-first.png here)")
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
    plugins.add_argument("--krita-app", metavar="PATH",
                         help="Krita's install (AppImage, its folder, Krita.app, Windows program folder): read its "
                              "Python version there and place pyzmq/msgpack for it")
    plugins.add_argument("--gimp-app", metavar="PATH", help="the same for GIMP 3")
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


def main(argv=None):
    if python_too_old():
        print(python_too_old())
        return 2
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.check:
            return check(args)
        if args.uninstall:
            return uninstall()
        if args.first_run:
            return first_run(args.first_run)
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
