"""The map of the code (docs/architecture.md) holds: who may import whom, and files stay small.

editor plugin -> shared/ (protocol, client) -> engine_server.daemon -> engine_server.core
                                               engine_server.library -> engine_server.core
engine_server.cli may use every room of the engine.
Every import counts, also the ones inside functions (the engine imports TensorFlow lazily).
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 400

# room -> what of the engine it may import (module prefixes). shared/ and the plugins import nothing
# of the engine; any room may import shared/.
ENGINE_RULES = {
    "engine_server": (),                  # the package itself, and any new top-level module
    "engine_server.core": ("engine_server.core",),
    "engine_server.library": ("engine_server.core", "engine_server.library"),
    "engine_server.daemon": ("engine_server.core", "engine_server.library", "engine_server.daemon",
                             "engine_server.logs", "engine_server.__version__"),
    "engine_server.logs": (),
    "engine_server.cli": ("engine_server",),
    "engine_server.__main__": ("engine_server.cli", "engine_server.logs"),
}
NOT_ENGINE = ("shared", "plugin_krita", "plugin_gimp")
ENGINE = "engine_server"


def module_name(path, root):
    relative = os.path.relpath(path, root)[:-3].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join(relative)


def imported_modules(path, module):
    """Absolute names of everything `path` (module `module`) imports; relative imports resolved."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            for alias in node.names:      # `from . import memory` imports engine_server.core.memory
                yield prefix + "." + alias.name, node.lineno


def within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def python_files(root, folder):
    for directory, _, names in os.walk(os.path.join(root, folder)):
        for name in names:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def violations(root):
    """Every import that breaks the rules, as 'file:line imports name'."""
    found = []
    for folder in (ENGINE,) + NOT_ENGINE:
        for path in python_files(root, folder):
            module = module_name(path, root)
            room = next((r for r in sorted(ENGINE_RULES, key=len, reverse=True) if within(module, r)), None)
            for name, line in imported_modules(path, module):
                if not within(name, ENGINE):
                    continue
                where = "%s:%d imports %s" % (os.path.relpath(path, root), line, name)
                if room is None:          # shared/ or a plugin: nothing of the engine at all
                    found.append(where)
                elif not any(within(name, allowed) for allowed in ENGINE_RULES[room]):
                    found.append(where)
    return found


def test_imports_follow_the_map():
    assert violations(REPO) == []


def test_a_forbidden_import_is_caught(tmp_path):
    """The check above can fail: the core importing the daemon, the library importing the CLI and a
    plugin importing the engine are each reported, in a copy of the layout."""
    def write(relative, text):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    write("engine_server/__init__.py", "")
    write("engine_server/core/__init__.py", "")
    write("engine_server/core/stylize.py", "def f():\n    from ..daemon import server\n")
    write("engine_server/library/__init__.py", "")
    write("engine_server/library/files.py", "from ..core import images\nfrom engine_server.cli import main\n")
    write("engine_server/daemon/__init__.py", "")
    write("engine_server/daemon/server.py", "from .. import __version__\nfrom ..library import files\n")
    write("shared/__init__.py", "")
    write("plugin_krita/neural_style/docker.py", "import engine_server.core.model\n")
    found = violations(str(tmp_path))
    assert sorted(found) == sorted([
        "engine_server/core/stylize.py:2 imports engine_server.daemon.server",
        "engine_server/library/files.py:2 imports engine_server.cli.main",
        "plugin_krita/neural_style/docker.py:1 imports engine_server.core.model",
    ])


@pytest.mark.parametrize("folder", [ENGINE, "shared", "plugin_krita", "plugin_gimp", "installing"])
def test_no_source_file_is_long(folder):
    long_files = ["%s (%d lines)" % (os.path.relpath(path, REPO), count)
                  for path in python_files(REPO, folder)
                  for count in [sum(1 for _ in open(path, encoding="utf-8"))] if count > MAX_LINES]
    assert long_files == []


def test_the_installer_entry_stays_thin():
    with open(os.path.join(REPO, "installer.py"), encoding="utf-8") as handle:
        assert sum(1 for _ in handle) <= 200
