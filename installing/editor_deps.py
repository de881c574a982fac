"""pyzmq and msgpack for the editors' own Pythons: probe the editor's Python, or download wheels for
its version and unpack them where it imports from (Krita's pykrita/, the GIMP plug-in's folder)."""

import os
import platform
import re
import shutil
import zipfile

from installing.manifest import make_dirs, remove_path
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


def deps_placed(editor):
    """pyzmq and msgpack are unpacked where the editor's Python imports from (by place_editor_deps)."""
    return all(os.path.isdir(os.path.join(editor.vendor_dir(), module)) for module in ("zmq", "msgpack"))
