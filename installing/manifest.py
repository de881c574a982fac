"""The manifest: everything the installer created, so --uninstall removes exactly that; and the file
helpers that record what they make (make_dirs) or replace files safely (write_text_atomic)."""

import datetime
import json
import os
import shutil
import stat
import tempfile

from installing.output import InstallError
from installing.project import MANIFEST_NAME, VERSION, paths


def manifest_path():
    return os.path.join(paths.config_dir(), MANIFEST_NAME)


class Manifest:
    """Items, in creation order: {"kind": "dir"|"file"|"tree"|"kritarc"|"service", "path": ..., ...}."""

    def __init__(self, path):
        self.path = path
        self.items = []
        self.data = {}
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    self.data = json.load(f)
            except (OSError, ValueError) as error:
                raise InstallError("the install manifest %s is unreadable (%s); remove it by hand to start over"
                                   % (path, error))
            self.items = self.data.get("items", [])

    def find(self, kind, path):
        for item in self.items:
            if item["kind"] == kind and item["path"] == path:
                return item
        return None

    def add(self, kind, path, **extra):
        item = self.find(kind, path)
        if item is None:
            item = {"kind": kind, "path": path}
            self.items.append(item)
        item.update(extra)
        return item

    def remove(self, kind, path):
        self.items = [i for i in self.items if not (i["kind"] == kind and i["path"] == path)]

    def owns(self, path):
        return any(i["path"] == path for i in self.items)

    def save(self):
        self.data["items"] = self.items
        self.data["version"] = VERSION
        self.data["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
        write_text_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def make_dirs(path, manifest):
    """Create `path` and record every folder this call creates (so uninstall can remove them if empty)."""
    missing = []
    probe = os.path.abspath(path)
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for folder in reversed(missing):
        os.makedirs(folder, exist_ok=True)
        manifest.add("dir", folder)
    return path


def write_text_atomic(path, text, mode=None):
    """Write via a temporary file and rename; keeps an existing file's permissions."""
    if mode is None:
        if os.path.exists(path):
            mode = stat.S_IMODE(os.stat(path).st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        f.write(text)
    os.chmod(temp, mode)
    os.replace(temp, path)


def remove_path(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
