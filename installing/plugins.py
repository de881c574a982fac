"""Plugins: copy a plugin (with shared/) into an editor's folder, enable it in kritarc, and have
editor_deps make pyzmq/msgpack importable for the editor's Python."""

import datetime
import json
import os
import shutil
import stat

from installing.editor_deps import editor_deps
from installing.editors import VENDOR, record_editor
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


def _build(editor, staging, args, pip_python, manifest):
    """The whole plugin folder, complete, at `staging` (next to where it goes)."""
    package, _desktop = plugin_sources(editor.name)
    shutil.copytree(package, staging, ignore=IGNORE)
    shutil.copytree(os.path.join(HERE, "shared"), os.path.join(staging, "shared"), ignore=IGNORE)
    if editor.name == "gimp":
        script = os.path.join(staging, PLUGIN_NAME + ".py")
        os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    deps = None if args.no_editor_deps else editor_deps(editor, pip_python, os.path.join(staging, VENDOR), manifest)
    info = {"version": VERSION, "installed": datetime.datetime.now().isoformat(timespec="seconds"),
            "source": HERE, "editor": editor.label, "python": editor.python_version, "deps": deps}
    write_text_atomic(os.path.join(staging, INFO_NAME), json.dumps(info, indent=2) + "\n")
    return deps


def install_plugin(editor, args, pip_python, manifest):
    """Build the plugin next to its place, then swap it in: a failure (read-only folder, full disk)
    leaves the plugin that was there before as it was. Returns what editor_deps did."""
    _package, desktop = plugin_sources(editor.name)
    target = editor.plugin_dir
    staging, old = target + ".installing", target + ".previous"
    try:
        make_dirs(editor.folder, manifest)
        for leftover in (staging, old):
            remove_path(leftover)
        deps = _build(editor, staging, args, pip_python, manifest)
        if desktop:
            destination = os.path.join(editor.folder, os.path.basename(desktop))
            with open(desktop, encoding="utf-8") as f:
                write_text_atomic(destination, f.read())
        if os.path.lexists(target):
            os.rename(target, old)     # upgrade in place: nothing stale survives
        os.rename(staging, target)
    except OSError as error:
        if os.path.lexists(old) and not os.path.lexists(target):
            os.rename(old, target)
        remove_path(staging)
        raise InstallError("could not write the %s plugin into %s (%s); the plugin that was there is unchanged"
                           % (editor.label, editor.folder, error.strerror or error))
    remove_path(old)
    manifest.add("tree", target, what="%s plugin" % editor.name)
    if desktop:
        manifest.add("file", os.path.join(editor.folder, os.path.basename(desktop)), what="krita plugin")
    out.detail("%s plugin %s -> %s" % (editor.label, VERSION, target))
    return deps


def install_plugins(args, editors, pip_python, manifest):
    """Install into every editor; one editor's failure does not stop the others. Returns the
    [(what is missing, how to finish)] of the editors that failed."""
    out.step("Plugins")
    if not editors:
        out.detail("no GIMP 3 and no Krita found (use --gimp-dir / --krita-dir to name their plugin folders)")
        out.todo("no editor was found: install GIMP 3 or Krita, start it once, then run the installer again")
        return []
    missing = []
    for editor in editors:
        try:
            deps = install_plugin(editor, args, pip_python, manifest)
            if editor.name == "krita" and editor.kritarc:
                try:
                    set_kritarc(editor.kritarc, manifest)
                except OSError as error:
                    raise InstallError("could not enable the plugin in %s (%s)" % (editor.kritarc, error.strerror))
                out.detail("enabled in %s ([python] %s=true)" % (editor.kritarc, ENABLE_KEY))
        except InstallError as error:
            out.say("    ERROR: %s" % error)
            missing.append(("the %s plugin" % editor.label, "fix that, then run: python3 installer.py"))
            continue
        finally:
            manifest.save()
        if deps and deps.startswith("MISSING"):
            missing.append(("pyzmq/msgpack for %s" % editor.label, deps.split(": ", 1)[1]))
        out.remember("%s plugin" % editor.label, editor.plugin_dir)
        record_editor(manifest, editor, deps)
        manifest.save()
    return missing


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
