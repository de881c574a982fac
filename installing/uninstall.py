"""--uninstall: remove what the manifest lists, newest first, and nothing else."""

import glob
import os

from installing.engine_config import read_engine_config
from installing.kritarc import unset_kritarc
from installing.manifest import Manifest, manifest_path, remove_path
from installing.output import quiet
from installing.project import paths
from installing.service import stop_service


def engine_may_be_running():
    """A pidfile or a socket of the engine exists. Asked without running the engine's CLI, which would
    write its log into the state folder (and so leave a file behind that the installer did not make)."""
    return bool(glob.glob(os.path.join(paths.state_dir(), "engine-*.pid")) or
                glob.glob(os.path.join(paths.runtime_dir(), "*")))


def uninstall():
    listing = manifest_path()
    if not os.path.exists(listing):
        print("Nothing to uninstall: no install manifest at %s" % listing)
        return 0
    manifest = Manifest(listing)
    print("Uninstalling what installer.py installed (manifest %s)" % listing)
    python = (read_engine_config() or {}).get("command", [None])[0]
    if python and os.path.exists(python) and engine_may_be_running():
        quiet([python, "-m", "engine_server", "stop"], timeout=60)
    problems = 0
    for item in reversed(manifest.items):
        kind, path = item["kind"], item["path"]
        try:
            if kind == "service":
                stop_service(item)
                if item.get("platform") != "windows" and os.path.exists(path):
                    os.remove(path)
            elif kind == "kritarc":
                unset_kritarc(item)
            elif kind == "dir":
                if os.path.isdir(path) and not os.listdir(path):
                    os.rmdir(path)
                else:
                    continue   # still holds something: looked at again after the manifest is gone
            elif os.path.lexists(path):
                remove_path(path)
            else:
                continue
            print("  removed %s %s" % (kind, path))
        except OSError as error:
            problems += 1
            print("  could not remove %s: %s" % (path, error))
    if problems:
        print("%d item(s) could not be removed; the manifest is kept: %s" % (problems, listing))
        return 1
    os.remove(listing)
    for item in reversed(manifest.items):   # folders that held only the manifest
        if item["kind"] == "dir" and os.path.isdir(item["path"]) and not os.listdir(item["path"]):
            os.rmdir(item["path"])
        elif item["kind"] == "dir" and os.path.isdir(item["path"]):
            print("  kept %s: it holds files the installer did not put there" % item["path"])
    print("Done. Your style library (%s) and engine logs, if any, were not installed by the installer and are kept."
          % paths.library_dir())
    return 0
