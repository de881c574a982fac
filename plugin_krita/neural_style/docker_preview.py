"""The docker's live preview: the current settings on the active layer (and selection) at ≈160 px,
refreshed by itself after a change (debounced), by the same engine (a mixin of NeuralStyleDocker)."""

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QCheckBox, QFrame, QLabel, QVBoxLayout

from krita import Krita

from .docker_parts import picture_pixmap
from .painter import timed
from .layers import ApplyError
from .pixels import UnsupportedLayer
from .settings import option_error_text
from .shared.options import OptionError

PREVIEW_DEBOUNCE_MS = 400
PREVIEW_PX = 160


def active_target():
    """(document, [selected layers]) of the active view; the active layer when none is selected."""
    window = Krita.instance().activeWindow()
    view = window.activeView() if window else None
    document = view.document() if view else None
    nodes = view.selectedNodes() if view else []
    if document is not None and not nodes and document.activeNode() is not None:
        nodes = [document.activeNode()]
    return document, nodes



class LivePreview:
    # ---- preview ---------------------------------------------------------------------------
    def _preview_box(self):
        column = QVBoxLayout()
        self.preview_check = QCheckBox("Live preview")
        self.preview_check.setToolTip("Stylize a small copy of the layer (or selection) with these settings, "
                                      "again after every change")
        self.preview_check.toggled.connect(self._preview_toggled)
        self.preview_label = QLabel()
        self.preview_label.setFixedSize(PREVIEW_PX, PREVIEW_PX)
        self.preview_label.setAlignment(Qt.AlignCenter)
        self.preview_label.setFrameShape(QFrame.StyledPanel)
        self.preview_label.setVisible(False)
        self.preview_status = QLabel("")
        self.preview_status.setWordWrap(True)
        self.preview_status.setVisible(False)
        column.addWidget(self.preview_check)
        column.addWidget(self.preview_label, 0, Qt.AlignHCenter)
        column.addWidget(self.preview_status)
        return column

    def _preview_toggled(self, on):
        self.preview_label.setVisible(on)
        self.preview_status.setVisible(on)
        if on:
            self._target_timer.start()
            self.run_preview()
        else:
            self._target_timer.stop()
            self._preview_timer.stop()
            self.controller.stop_preview()
            self.preview_label.clear()

    def schedule_preview(self, *args):
        if self.preview_check.isChecked():
            self._preview_timer.start()

    def _target_key(self):
        document, nodes = active_target()
        if document is None or not nodes:
            return None
        selection = document.selection()
        bounds = (selection.x(), selection.y(), selection.width(), selection.height()) if selection else None
        return (document.rootNode().uniqueId(), nodes[0].uniqueId(), bounds)

    def _check_target(self):
        if self._target_key() != self._preview_target:
            self.schedule_preview()

    def run_preview(self):
        """Preview the current settings on the active layer now (the debounce timer calls this)."""
        if not self.preview_check.isChecked():
            return
        self._preview_timer.stop()
        document, nodes = active_target()
        self._preview_target = self._target_key()
        try:
            with timed("starting a preview"):
                self.controller.preview(document, nodes[0] if nodes else None, self.style_choice(), self.settings())
            self.preview_status.setText("Preview: starting…")
        except OptionError as error:
            self.preview_status.setText(option_error_text(error))
        except (ApplyError, UnsupportedLayer) as error:
            self.controller.stop_preview()
            self.preview_status.setText(str(error))

    def _show_preview(self, token, kind, picture):
        if kind in ("source", "progress", "result"):
            self.preview_label.setPixmap(picture_pixmap(picture, PREVIEW_PX))
            self.preview_status.setText({"source": "Preview: starting…", "progress": "Preview: refining…",
                                         "result": "Preview: done."}[kind])
        elif kind == "error":
            self.preview_status.setText(picture[0] if picture else "The preview failed.")
            self.preview_status.setToolTip(picture[1] if picture else "")
