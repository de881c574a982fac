"""Editors: where GIMP 3 and Krita look for plugins, and which Python they run them with."""

import glob
import os
import platform
import shutil

from installing.editor_python import flatpak_python, python_of_install
from installing.project import PLUGIN_NAME, home, xdg

VENDOR = "vendor"   # in the plugin folder: pyzmq/msgpack for the editor's own Python, imported first


class Editor:
    def __init__(self, name, variant, folder, kritarc=None, python_version=None, python_probe=None,
                 python_note=None, system=None):
        self.name = name                      # "krita" or "gimp"
        self.variant = variant                # "native", "flatpak", "snap", "appimage", "bundled", "--krita-dir"
        self.folder = folder                  # pykrita folder or GIMP plug-ins folder
        self.kritarc = kritarc
        self.python_version = python_version  # "3.10": the editor's own Python, wheels are placed for it
        self.python_probe = python_probe      # a command that runs the editor's Python, if there is one
        self.python_note = python_note        # how its Python was found (or why not), for the output
        self.system = system or platform.system()   # the platform its Python's wheels are for

    @property
    def plugin_dir(self):
        return os.path.join(self.folder, PLUGIN_NAME)

    @property
    def label(self):
        return "%s (%s)" % ("Krita" if self.name == "krita" else "GIMP 3", self.variant)

    def vendor_dir(self):
        """Where wheels for the editor's Python are unpacked; the plugin puts it first on sys.path."""
        return os.path.join(self.plugin_dir, VENDOR)

    def read_python(self, install):
        """Take the Python version from the editor's install (python_of_install); True when found."""
        version, system, how = python_of_install(install)
        self.python_note = how
        if version:
            self.python_version, self.system, self.python_probe = version, system, None
        return bool(version)


def _appdata():
    return os.environ.get("APPDATA") or home("AppData", "Roaming")


def _program_folders():
    """Where Windows programs get installed (per machine, and per user for GIMP's user installer)."""
    return [os.environ[v] for v in ("ProgramFiles", "ProgramW6432", "LOCALAPPDATA") if os.environ.get(v)]


def _from_first_install(editor, installs):
    for install in installs:
        if editor.read_python(install):
            break
    if not installs:
        editor.python_note = "no installed program found to read its Python version from"
    return editor


def _flatpak(editor, app_id):
    editor.python_version, editor.python_note = flatpak_python(app_id)
    if not editor.python_version:   # not readable from the files: ask the Flatpak itself
        editor.python_probe = ["flatpak", "run", "--command=python3", app_id]
    return editor


def find_kritas():
    system = platform.system()
    found = []
    if system == "Windows":
        pykrita = os.path.join(_appdata(), "krita", "pykrita")
        installs = [p for base in _program_folders() for p in glob.glob(os.path.join(base, "Krita*"))]
        if installs or os.path.isdir(os.path.dirname(pykrita)):
            local = os.environ.get("LOCALAPPDATA") or home("AppData", "Local")
            found.append(_from_first_install(Editor("krita", "bundled", pykrita, kritarc=os.path.join(local, "kritarc")),
                                             installs))
    elif system == "Darwin":
        pykrita = home("Library", "Application Support", "krita", "pykrita")
        apps = glob.glob("/Applications/krita*.app") + glob.glob(home("Applications", "krita*.app"))
        if apps or os.path.isdir(os.path.dirname(pykrita)):
            found.append(_from_first_install(
                Editor("krita", "bundled", pykrita, kritarc=home("Library", "Preferences", "kritarc")), apps))
    else:
        data, config = xdg("XDG_DATA_HOME", ".local", "share"), xdg("XDG_CONFIG_HOME", ".config")
        appimages = [p for d in (home("Applications"), home("Downloads"), home("bin"), home())
                     for p in glob.glob(os.path.join(d, "[Kk]rita*.[Aa]pp[Ii]mage"))]
        if shutil.which("krita") or appimages or os.path.isdir(os.path.join(data, "krita")):
            if appimages and not shutil.which("krita"):
                found.append(_from_first_install(Editor("krita", "appimage", os.path.join(data, "krita", "pykrita"),
                                                        kritarc=os.path.join(config, "kritarc")), sorted(appimages)))
            else:
                found.append(Editor("krita", "native", os.path.join(data, "krita", "pykrita"),
                                    kritarc=os.path.join(config, "kritarc"), python_probe=["/usr/bin/python3"],
                                    python_note="Krita uses the system Python"))
        flatpak = home(".var", "app", "org.kde.krita")
        if os.path.isdir(flatpak):
            found.append(_flatpak(Editor("krita", "flatpak", os.path.join(flatpak, "data", "krita", "pykrita"),
                                         kritarc=os.path.join(flatpak, "config", "kritarc")), "org.kde.krita"))
    return found


def find_gimps():
    system = platform.system()
    found = []
    if system == "Windows":
        config = os.path.join(_appdata(), "GIMP", "3.0")
        installs = [p for base in _program_folders()
                    for p in glob.glob(os.path.join(base, "GIMP 3*")) + glob.glob(os.path.join(base, "Programs", "GIMP 3*"))]
        if installs or os.path.isdir(config):
            found.append(_from_first_install(Editor("gimp", "bundled", os.path.join(config, "plug-ins")), installs))
    elif system == "Darwin":
        config = home("Library", "Application Support", "GIMP", "3.0")
        apps = glob.glob("/Applications/GIMP*.app") + glob.glob(home("Applications", "GIMP*.app"))
        if os.path.isdir(config) or any("GIMP-2" not in a for a in apps):
            found.append(_from_first_install(Editor("gimp", "bundled", os.path.join(config, "plug-ins")),
                                             [a for a in apps if "GIMP-2" not in a]))
    else:
        config = os.path.join(xdg("XDG_CONFIG_HOME", ".config"), "GIMP", "3.0")
        if os.path.isdir(config) or shutil.which("gimp-3.0") or shutil.which("gimp-console-3.0"):
            found.append(Editor("gimp", "native", os.path.join(config, "plug-ins"),
                                python_probe=["/usr/bin/env", "python3"],
                                python_note="GIMP runs plug-ins with the system's python3"))
        flatpak = home(".var", "app", "org.gimp.GIMP", "config", "GIMP", "3.0")
        if os.path.isdir(flatpak):
            found.append(_flatpak(Editor("gimp", "flatpak", os.path.join(flatpak, "plug-ins")), "org.gimp.GIMP"))
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
        install = args.krita_app if editor.name == "krita" else args.gimp_app
        if install:
            editor.read_python(install)
        override = args.krita_python if editor.name == "krita" else args.gimp_python
        if override:
            editor.python_version, editor.python_probe = override, None
            editor.python_note = "--%s-python %s" % (editor.name, override)
    return editors


def record_editor(manifest, editor, deps=None):
    """Remember an editor installed into and what was done for its Python, for --check (also when the
    editor is no longer found)."""
    manifest.data.setdefault("editors", {})[editor.plugin_dir] = {
        "name": editor.name, "variant": editor.variant, "folder": editor.folder, "kritarc": editor.kritarc,
        "python": editor.python_version, "system": editor.system, "deps": deps}


def recorded_editors(manifest):
    """The editors record_editor remembered, each with .deps (what was done for its Python)."""
    editors = []
    for info in manifest.data.get("editors", {}).values():
        editor = Editor(info["name"], info["variant"], info["folder"], kritarc=info.get("kritarc"),
                        python_version=info.get("python"), system=info.get("system"))
        editor.deps = info.get("deps")
        editors.append(editor)
    return editors
