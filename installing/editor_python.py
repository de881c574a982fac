"""Which Python an editor runs plugins with, read from its files (never by starting the editor):
Windows `pythonXY.dll`, macOS `Python.framework/Versions/3.X` (Krita) or `Resources/lib/python3.X`
(GIMP), an AppImage's `usr/lib/python3.X`, a Flatpak app's or its runtime's `lib/python3.X`."""

import glob
import os
import re
import shutil
import tempfile

from installing.output import quiet
from installing.project import home

VERSION_IN_NAME = re.compile(r"^(?:lib)?python3\.?(\d{1,2})(?:\.dll|\.so[.\d]*|\.dylib)?$", re.IGNORECASE)


def _versions(pattern):
    """{'3.X': path} for the files or folders matching a glob pattern whose name carries a version."""
    found = {}
    for path in glob.glob(pattern):
        match = VERSION_IN_NAME.match(os.path.basename(path.rstrip("/\\")))
        if match:
            found.setdefault("3.%s" % match.group(1), path)
    return found


def _newest(versions):
    return max(versions, key=lambda v: int(v.split(".")[1])) if versions else None


def _linux_tree(tree):
    """An AppImage's (extracted) tree, a system root or a Flatpak `files/` folder: its lib/python3.X.
    When several are there, the one whose libpython3.X is there too (what the editor links)."""
    for lib in (os.path.join(tree, "usr", "lib"), os.path.join(tree, "lib")):
        folders = _versions(os.path.join(lib, "python3.*"))
        if folders:
            linked = {}
            for libdir in (lib, os.path.join(lib, "*-linux-gnu"), os.path.join(lib, "x86_64*"),
                           os.path.join(os.path.dirname(lib), "lib64")):
                linked.update(_versions(os.path.join(libdir, "libpython3.*.so*")))
            both = set(folders) & set(linked)
            return _newest(both or folders)
    return None


def _windows_tree(tree):
    dlls = {}
    for folder in (tree, os.path.join(tree, "bin")):
        dlls.update(_versions(os.path.join(folder, "python3*.dll")))
    return _newest(dlls)


def _macos_app(app):
    framework = os.path.join(app, "Contents", "Frameworks", "Python.framework", "Versions")
    versions = {v: p for v, p in ((os.path.basename(p), p) for p in glob.glob(os.path.join(framework, "3.*")))
                if re.match(r"^3\.\d{1,2}$", v)}
    versions.update(_versions(os.path.join(app, "Contents", "Resources", "lib", "python3.*")))
    return _newest(versions)


def _appimage(path):
    """Let the AppImage's own runtime extract just usr/lib/python3* (it does not start the editor)."""
    if not os.access(path, os.X_OK):
        return None, "%s is not executable (chmod +x it, as for starting it)" % path
    scratch = tempfile.mkdtemp(prefix="neural-style-appimage-")
    try:
        code, text = quiet([os.path.abspath(path), "--appimage-extract", "usr/lib/python3*"], timeout=180,
                           cwd=scratch, env={"PATH": os.environ.get("PATH", ""), "APPIMAGE_EXTRACT_AND_RUN": "0"})
        version = _linux_tree(os.path.join(scratch, "squashfs-root"))
        if version:
            return version, None
        return None, "its runtime did not extract usr/lib/python3* (exit %s)" % code
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def python_of_install(path):
    """(version '3.X' or None, system 'Windows'|'Darwin'|'Linux', how it was found or why not) for an
    editor's install: a Windows program folder, a macOS .app, an AppImage or its extracted folder, a
    system root or a Flatpak `files/` folder."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        return None, None, "%s does not exist" % path
    if os.path.isfile(path):
        if path.lower().endswith(".appimage"):
            version, why = _appimage(path)
            return version, "Linux", why or "usr/lib/python%s inside the AppImage" % version
        return None, None, "%s is a file, not an AppImage nor an install folder" % path
    if path.rstrip("/").endswith(".app") or os.path.isdir(os.path.join(path, "Contents")):
        version = _macos_app(path)
        return version, "Darwin", ("Python %s in the app bundle" % version if version
                                   else "no Python.framework nor Resources/lib/python3.X in %s" % path)
    version = _windows_tree(path)
    if version:
        return version, "Windows", "python%s.dll" % version.replace(".", "")
    version = _linux_tree(path)
    if version:
        return version, "Linux", "lib/python%s" % version
    return None, None, "no pythonXY.dll, Python.framework or lib/python3.X found in %s" % path


def flatpak_python(app_id, installations=None):
    """(version, how) of a Flatpak app's Python: its own files, else the runtime named in its metadata."""
    installations = installations or [home(".local", "share", "flatpak"), "/var/lib/flatpak"]
    for base in installations:
        app = os.path.join(base, "app", app_id, "current", "active")
        if not os.path.isdir(app):
            continue
        version = _linux_tree(os.path.join(app, "files"))
        if version:
            return version, "lib/python%s in the Flatpak app" % version
        runtime = None
        try:
            with open(os.path.join(app, "metadata"), encoding="utf-8") as f:
                runtime = next((line.split("=", 1)[1].strip() for line in f if line.startswith("runtime=")), None)
        except OSError:
            pass
        for runtime_base in ([base] + [b for b in installations if b != base]) if runtime else []:
            version = _linux_tree(os.path.join(runtime_base, "runtime", *runtime.split("/"), "active", "files"))
            if version:
                return version, "lib/python%s in the runtime %s" % (version, runtime)
    return None, "no Flatpak files for %s" % app_id
