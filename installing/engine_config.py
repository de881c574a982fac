"""engine.json: the command the plugins run to start the engine. Written and read only here."""

import json
import os

from installing.manifest import make_dirs, write_text_atomic
from installing.output import out
from installing.project import VERSION, paths


def write_engine_config(engine_python, weights, manifest):
    path = paths.engine_config_path()
    out.step("Engine start command -> %s" % path)
    make_dirs(os.path.dirname(path), manifest)
    config = {"command": [engine_python, "-m", "engine_server"], "weights": weights, "version": VERSION}
    write_text_atomic(path, json.dumps(config, indent=2) + "\n")
    manifest.add("file", path, what="engine.json")
    manifest.save()
    out.detail("the plugins start the engine with: %s -m engine_server" % engine_python)
    out.remember("engine start command", path)


def read_engine_config():
    """engine.json as a dict with a "command" list, or None when it is missing or damaged."""
    try:
        with open(paths.engine_config_path(), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    command = config.get("command") if isinstance(config, dict) else None
    return config if isinstance(command, list) and command and isinstance(command[0], str) else None
