"""Install the Krita plugin the way docs/architecture.md lays it out (used by the Krita tests).

<pykrita>/neural_style.desktop, <pykrita>/neural_style/ and <pykrita>/neural_style/shared/.
"""

import importlib.util
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_SOURCE = os.path.join(REPO, "plugin_krita")
SHARED_SOURCE = os.path.join(REPO, "shared")
PLUGIN_NAME = "neural_style"

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def install_plugin(pykrita_dir: str) -> str:
    """Copy the plugin and shared/ into `pykrita_dir` (replacing an older copy); returns the package folder."""
    os.makedirs(pykrita_dir, exist_ok=True)
    package = os.path.join(pykrita_dir, PLUGIN_NAME)
    if os.path.exists(package):
        shutil.rmtree(package)
    shutil.copytree(os.path.join(PLUGIN_SOURCE, PLUGIN_NAME), package, ignore=_IGNORE)
    shutil.copytree(SHARED_SOURCE, os.path.join(package, "shared"), ignore=_IGNORE)
    shutil.copy2(os.path.join(PLUGIN_SOURCE, PLUGIN_NAME + ".desktop"), pykrita_dir)
    return package


def import_installed(package_dir: str, alias: str = "krita_neural_style"):
    """Import an installed copy under a unique name (outside Krita: the Krita part stays unloaded)."""
    if alias in sys.modules:
        return sys.modules[alias]
    spec = importlib.util.spec_from_file_location(alias, os.path.join(package_dir, "__init__.py"),
                                                  submodule_search_locations=[package_dir])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module
