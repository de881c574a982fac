"""pyzmq and msgpack for the editors' own Pythons: wheels for the editor's Python version and platform,
downloaded once into DATA/editor-wheels and unpacked into the plugin's vendor/ folder, which the
plugin puts first on sys.path. Skipped when a runnable editor Python imports them already."""

import os
import platform
import re
import shutil
import zipfile

from installing.manifest import make_dirs
from installing.output import InstallError, out, quiet, run
from installing.project import EDITOR_DEPS, paths, paths_log


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


def _wheels(version, system, pip_python, manifest):
    """The pyzmq and msgpack wheels for Python `version` on `system`, downloaded once into DATA."""
    tags = wheel_platforms(system, machine=None if system == platform.system() else "x86_64")
    cache_root = os.path.join(paths.data_dir(), "editor-wheels")
    cache = os.path.join(cache_root, "py%s-%s" % (version, tags[0]))
    wanted = tuple(requirement.replace("==", "-") + "-" for requirement in EDITOR_DEPS)

    def present():
        return [os.path.join(cache, w) for w in sorted(os.listdir(cache)) if w.endswith(".whl") and w.startswith(wanted)]
    make_dirs(cache, manifest)
    manifest.add("tree", cache_root, what="downloaded wheels for the editors' Pythons")
    if len(present()) < len(wanted):
        command = [pip_python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
                   "--only-binary=:all:", "--implementation", "cp", "--python-version", version, "-d", cache]
        for tag in tags:
            command += ["--platform", tag]
        code, _text = run(command + EDITOR_DEPS, check=False, echo=False)
        if code != 0 or len(present()) < len(wanted):
            raise InstallError("could not download pyzmq and msgpack for Python %s on %s (offline? details in %s)"
                               % (version, system, paths_log()))
    return present()


def unpack_wheels(wheels, vendor):
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(vendor)
    for root, _dirs, files in os.walk(vendor):   # zipfile drops permissions: keep shared libraries loadable
        for name in files:
            if ".so" in name or name.endswith(".dylib"):
                os.chmod(os.path.join(root, name), 0o755)


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


def editor_deps(editor, pip_python, vendor, manifest):
    """Make pyzmq and msgpack importable for the editor's Python: unpack wheels for its version and
    platform into `vendor` (the plugin's vendor/ folder) unless that Python has them already.
    Returns one line saying what was done, "MISSING: what to do" when it could not be done."""
    version = editor.python_version
    if editor.python_probe:
        has_deps, probed = probe_editor_python(editor)
        if has_deps:
            out.detail("%s: its Python %s imports pyzmq and msgpack already" % (editor.label, probed))
            return "its Python %s has them" % probed
        version = probed or version
    if not version:
        note = editor.python_note or "its Python could not be run"
        out.warn("%s: could not tell which Python it runs plugins with (%s)" % (editor.label, note))
        out.todo("if %s's own Python lacks pyzmq and msgpack, re-run with --%s-app PATH_OF_ITS_INSTALL or "
                 "--%s-python X.Y (docs/install.md)" % (editor.label, editor.name, editor.name))
        return "unknown Python: nothing placed"
    try:
        wheels = _wheels(version, editor.system, pip_python, manifest)
    except InstallError as error:
        out.warn("%s: %s" % (editor.label, error))
        hint = " (or: %s)" % system_dep_hint() if editor.variant == "native" else ""
        return "MISSING: when online, run: python3 installer.py%s" % hint
    unpack_wheels(wheels, vendor)
    names = ", ".join(os.path.basename(w) for w in wheels)
    out.detail("%s: its Python is %s (%s): unpacked %s into %s" % (editor.label, version, editor.python_note or "",
                                                                   names, vendor))
    return "placed for Python %s (%s)" % (version, editor.system)


def deps_placed(editor):
    """pyzmq and msgpack are unpacked in the plugin's vendor/ folder (by editor_deps)."""
    return all(os.path.isdir(os.path.join(editor.vendor_dir(), module)) for module in ("zmq", "msgpack"))
