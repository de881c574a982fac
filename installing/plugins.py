"""Plugins: copy a plugin (with shared/) into an editor's folder, enable it in kritarc, and have
editor_deps make pyzmq/msgpack importable for the editor's Python."""

import datetime
import json
import os
import shutil
import stat

from installing.editor_deps import editor_deps
from installing.editors import record_editor
from installing.kritarc import ENABLE_KEY, set_kritarc
from installing.manifest import make_dirs, remove_path, write_text_atomic
from installing.output import InstallError, out
from installing.project import HERE, PLUGIN_NAME, VERSION

INFO_NAME = "install_info.json"      # in the installed plugin: its version, source and editor
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
    write_text_atomic(os.path.join(target, INFO_NAME), json.dumps(info, indent=2) + "\n")
    out.detail("%s plugin %s -> %s" % (editor.label, VERSION, target))


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
            out.detail("enabled in %s ([python] %s=true)" % (editor.kritarc, ENABLE_KEY))
        if not args.no_editor_deps:
            editor_deps(editor, engine_python, manifest)
        out.remember("%s plugin" % editor.label, editor.plugin_dir)
        record_editor(manifest, editor)
        manifest.save()


def plugin_entry(editor):
    """The file the editor loads the plugin by: GIMP's script, Krita's .desktop file."""
    if editor.name == "gimp":
        return os.path.join(editor.plugin_dir, PLUGIN_NAME + ".py")
    return os.path.join(editor.folder, PLUGIN_NAME + ".desktop")


def installed_info(editor):
    """The installed plugin's install_info.json (written by install_plugin), or None when there is none."""
    path = os.path.join(editor.plugin_dir, INFO_NAME)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
