"""Editors: where GIMP 3 and Krita look for plugins, and which Python they run them with."""

import glob
import os
import platform
import re
import shutil

from installing.project import PLUGIN_NAME, home, xdg


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


def _appdata():
    return os.environ.get("APPDATA") or home("AppData", "Roaming")


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
            local = os.environ.get("LOCALAPPDATA") or home("AppData", "Local")
            found.append(Editor("krita", "bundled", pykrita, kritarc=os.path.join(local, "kritarc"),
                                python_version=version, python_note="Krita bundles its own Python"))
    elif system == "Darwin":
        pykrita = home("Library", "Application Support", "krita", "pykrita")
        apps = glob.glob("/Applications/krita*.app") + glob.glob(home("Applications", "krita*.app"))
        if apps or os.path.isdir(os.path.dirname(pykrita)):
            version = _bundled_python_version(
                [os.path.join(a, "Contents", "Frameworks", "Python.framework", "Versions", "*", "lib", "python3*")
                 for a in apps])
            found.append(Editor("krita", "bundled", pykrita, kritarc=home("Library", "Preferences", "kritarc"),
                                python_version=version, python_note="Krita bundles its own Python"))
    else:
        data, config = xdg("XDG_DATA_HOME", ".local", "share"), xdg("XDG_CONFIG_HOME", ".config")
        appimages = [p for d in (home("Applications"), home("Downloads"), home("bin"), home())
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
        flatpak = home(".var", "app", "org.kde.krita")
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
        config = home("Library", "Application Support", "GIMP", "3.0")
        apps = glob.glob("/Applications/GIMP*.app") + glob.glob(home("Applications", "GIMP*.app"))
        if os.path.isdir(config) or any("GIMP-2" not in a for a in apps):
            version = _bundled_python_version(
                [os.path.join(a, "Contents", "Resources", "lib", "python3*") for a in apps])
            found.append(Editor("gimp", "bundled", os.path.join(config, "plug-ins"), python_version=version,
                                python_note="GIMP bundles its own Python"))
    else:
        config = os.path.join(xdg("XDG_CONFIG_HOME", ".config"), "GIMP", "3.0")
        if os.path.isdir(config) or shutil.which("gimp-3.0") or shutil.which("gimp-console-3.0"):
            found.append(Editor("gimp", "native", os.path.join(config, "plug-ins"),
                                python_probe=["/usr/bin/env", "python3"],
                                python_note="GIMP runs plug-ins with the system's python3"))
        flatpak = home(".var", "app", "org.gimp.GIMP", "config", "GIMP", "3.0")
        if os.path.isdir(flatpak):
            found.append(Editor("gimp", "flatpak", os.path.join(flatpak, "plug-ins"),
                                python_probe=["flatpak", "run", "--command=python3", "org.gimp.GIMP"],
                                python_note="the Flatpak bundles its own Python"))
        snap = home("snap", "gimp", "current", ".config", "GIMP", "3.0")
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
                                           os.path.join(xdg("XDG_CONFIG_HOME", ".config"), "kritarc"))
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


def record_editor(manifest, editor):
    """Remember an editor installed into, so --check still looks at it when it is no longer found."""
    manifest.data.setdefault("editors", {})[editor.plugin_dir] = {
        "name": editor.name, "variant": editor.variant, "folder": editor.folder, "kritarc": editor.kritarc}


def recorded_editors(manifest):
    """The editors record_editor remembered."""
    return [Editor(info["name"], info["variant"], info["folder"], kritarc=info.get("kritarc"))
            for info in manifest.data.get("editors", {}).values()]
