"""The Extension: the "Neural Style…" action (Filter menu, bindable to a shortcut)."""

from PyQt5.QtWidgets import QDockWidget

from krita import Extension, Krita

from .controller import controller
from .docker import DOCKER_ID

ACTION_ID = "neural_style"
APPLY_ACTION_ID = "neural_style_apply"


def find_docker(window):
    """The window's Neural Style docker (Krita names a docker's QDockWidget after its factory id)."""
    if window is None:
        return None
    for dock in window.qwindow().findChildren(QDockWidget):
        if dock.objectName() == DOCKER_ID:
            return dock
    return None


def show_docker():
    """Show and raise the Neural Style docker of the active window; returns it (or None)."""
    dock = find_docker(Krita.instance().activeWindow())
    if dock is not None:
        dock.show()
        dock.raise_()
        dock.source_combo.setFocus()
    return dock


def apply_with_docker_settings():
    dock = show_docker()
    if dock is not None:
        dock.apply()


class NeuralStyleExtension(Extension):
    def setup(self):
        controller()   # the worker thread starts now, not in the middle of the first Apply

    def createActions(self, window):
        controller().close_watcher.watch(window.qwindow())   # its Close event stops a job's painting first
        action = window.createAction(ACTION_ID, "Neural Style…", "filter")
        action.setToolTip("Show the Neural Style docker")
        action.triggered.connect(show_docker)
        action = window.createAction(APPLY_ACTION_ID, "Apply Neural Style", "filter")
        action.setToolTip("Stylize the selected layers with the Neural Style docker's settings")
        action.triggered.connect(apply_with_docker_settings)
