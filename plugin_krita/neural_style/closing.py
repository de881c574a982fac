"""A Krita main window about to close, seen before Krita handles it.

Krita tears a window's views down in its close handler, and emits aboutToQuit (the Notifier's
applicationClosing) only afterwards. A job that kept painting its previews into a document during
that teardown crashed Krita: a canvas got the image's update after its OpenGL context was gone
(KisOpenGLImageTextures::recalculateCache -> QOpenGLContext::shareGroup, docs/reliability.md,
"Krita's quit"). So the controller stops painting at the window's Close event.
"""

from PyQt5.QtCore import QEvent, QObject, pyqtSignal

from krita import Krita


class CloseWatcher(QObject):
    """Emits `closing(window)` when a watched main window receives its Close event."""

    closing = pyqtSignal(object)

    def watch(self, window):
        """`window`: a QMainWindow (Krita's Window.qwindow()). Watching it twice is harmless."""
        window.installEventFilter(self)

    def eventFilter(self, watched, event):
        if event.type() == QEvent.Close:
            self.closing.emit(watched)
        return False


def window_shows(qwindow, document):
    """Does the main window `qwindow` show a view of `document`?"""
    if document is None:
        return False
    windows = [window for window in Krita.instance().windows() if window.qwindow() == qwindow]
    return any(view.document() == document for window in windows for view in window.views())
