"""Neural Style for Krita: registers the extension and the docker when loaded by Krita.

The pure modules (settings, pixels, region, progress) import without Krita, for unit tests.
"""

import os as _os
import sys as _sys

# pyzmq/msgpack the installer unpacked for Krita's own Python (docs/install.md) come first.
_VENDOR = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "vendor")
if _os.path.isdir(_VENDOR) and _VENDOR not in _sys.path:
    _sys.path.insert(0, _VENDOR)

try:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita
except ImportError:   # imported outside Krita (unit tests)
    Krita = None


def _setup_logging():
    import logging
    import os
    from .shared import paths
    log = logging.getLogger("neural_style")
    if log.handlers:
        return
    try:
        folder = paths.ensure_private_dir(paths.state_dir())
        handler = logging.FileHandler(os.path.join(folder, "krita-plugin.log"), encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


if Krita is not None:
    from .docker import DOCKER_ID, NeuralStyleDocker
    from .extension import NeuralStyleExtension

    _setup_logging()
    Krita.instance().addExtension(NeuralStyleExtension(Krita.instance()))
    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, NeuralStyleDocker))
