"""The docker's style chooser: library (with thumbnails and a hint when empty), image file, or a
layer of any open document, and the chosen style's thumbnail (a mixin of NeuralStyleDocker)."""

from PyQt5.QtCore import QSize, Qt
from PyQt5.QtGui import QIcon, QPixmap
from PyQt5.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QListWidget,
                             QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from krita import Krita

from .docker_parts import file_thumbnail
from .layers import MASK_TYPES, StyleChoice

THUMB_PX = 48
EMPTY_LIBRARY = ("Your style library is empty: choose \"Image file\" to use any picture, or save a layer "
                 "as a style.")
LIBRARY_NOT_LISTED = ("Press Refresh to list your saved styles (this starts the engine), or choose "
                      "\"Image file\" to use any picture.")


def all_layers():
    """(label, node) for every layer of every open document, for the "Layer" style source."""
    found = []

    def walk(document, nodes, prefix):
        for node in nodes:
            if node.type() in MASK_TYPES:
                continue
            found.append(("%s ▸ %s%s" % (document.name() or "Untitled", prefix, node.name()), node))
            walk(document, node.childNodes(), prefix + node.name() + " ▸ ")
    for document in Krita.instance().documents():
        walk(document, document.topLevelNodes(), "")
    return found



class StyleSources:
    # ---- style sources -------------------------------------------------------------------
    def _library_page(self):
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        self.library_list = QListWidget()
        self.library_list.setViewMode(QListWidget.IconMode)
        self.library_list.setIconSize(QSize(64, 64))
        self.library_list.setResizeMode(QListWidget.Adjust)
        self.library_list.setMinimumHeight(90)
        self.library_hint = QLabel("")
        self.library_hint.setWordWrap(True)
        row = QHBoxLayout()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.controller.refresh_styles())
        save = QPushButton("Save this layer as a style…")
        save.clicked.connect(self.save_active_layer)
        row.addWidget(refresh)
        row.addWidget(save)
        layout.addWidget(self.library_list)
        layout.addWidget(self.library_hint)
        layout.addLayout(row)
        return page

    def _file_page(self):
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(0, 0, 0, 0)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("style image (PNG, JPEG…)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.file_edit, 1)
        row.addWidget(browse)
        return page

    def _layer_page(self):
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(0, 0, 0, 0)
        self.layer_combo = QComboBox()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self._refresh_layers)
        row.addWidget(self.layer_combo, 1)
        row.addWidget(refresh)
        return page

    def _source_changed(self, index):
        self.source_stack.setCurrentIndex(index)
        if index == 0 and self.controller.state[0] == "connected":
            self.controller.refresh_styles()
        elif index == 2:
            self._refresh_layers()
        self._style_changed()

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "Style image", self.file_edit.text(),
                                              "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)")
        if path:
            self.file_edit.setText(path)

    def _refresh_layers(self):
        self._layers = all_layers()
        current = self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems([label for label, _ in self._layers])
        self.layer_combo.setCurrentIndex(max(0, self.layer_combo.findText(current)))
        self.layer_combo.blockSignals(False)

    def _show_styles(self, styles):
        chosen = self.library_list.currentItem()
        chosen = chosen.data(Qt.UserRole)[0] if chosen else None
        self.library_list.clear()
        for style in styles:
            info = style if isinstance(style, dict) else getattr(style, "__dict__", {})
            item = QListWidgetItem(str(info.get("name", "?")))
            thumbnail = info.get("thumbnail_png")
            if thumbnail:
                pixmap = QPixmap()
                pixmap.loadFromData(bytes(thumbnail), "PNG")
                item.setIcon(QIcon(pixmap))
            item.setData(Qt.UserRole, (str(info.get("id")), str(info.get("name", "?"))))
            self.library_list.addItem(item)
            if item.data(Qt.UserRole)[0] == chosen:
                self.library_list.setCurrentItem(item)
        self._update_library_hint()

    def _update_library_hint(self):
        empty = self.library_list.count() == 0
        self.library_hint.setText(EMPTY_LIBRARY if self.controller.state[0] == "connected" else LIBRARY_NOT_LISTED)
        self.library_hint.setVisible(empty)

    def style_choice(self):
        """The chosen style, or None (Apply then says what to choose)."""
        source = self.source_combo.currentIndex()
        if source == 0:
            item = self.library_list.currentItem()
            return StyleChoice.library(*item.data(Qt.UserRole)) if item else None
        if source == 1:
            return StyleChoice.file(self.file_edit.text().strip()) if self.file_edit.text().strip() else None
        index = self.layer_combo.currentIndex()
        return StyleChoice.layer(self._layers[index][1]) if 0 <= index < len(self._layers) else None

    def set_style(self, style):
        """Choose `style` (a StyleChoice) in the style source controls."""
        if style.kind == "library":
            self.source_combo.setCurrentIndex(0)
            for row in range(self.library_list.count()):
                if self.library_list.item(row).data(Qt.UserRole)[0] == style.style_id:
                    self.library_list.setCurrentRow(row)
        elif style.kind == "file":
            self.source_combo.setCurrentIndex(1)
            self.file_edit.setText(style.path)
        else:
            self.source_combo.setCurrentIndex(2)
            self._refresh_layers()
            for index, (_, node) in enumerate(self._layers):
                if node.uniqueId() == style.node.uniqueId():
                    self.layer_combo.setCurrentIndex(index)
        self._style_changed()

    def _style_changed(self, *args):
        """Show the chosen style's thumbnail; refresh the preview."""
        style = self.style_choice()
        pixmap = QPixmap()
        if style is not None and style.kind == "library":
            item = self.library_list.currentItem()
            if item is not None and not item.icon().isNull():
                pixmap = item.icon().pixmap(THUMB_PX, THUMB_PX)
        elif style is not None and style.kind == "file":
            pixmap = file_thumbnail(style.path, THUMB_PX)
        elif style is not None:
            pixmap = QPixmap.fromImage(style.node.thumbnail(THUMB_PX, THUMB_PX))
        self.style_thumb.setPixmap(pixmap)
        self.style_thumb.setToolTip(style.name if style is not None else "No style chosen")
        self.schedule_preview()

    def save_active_layer(self):
        document = Krita.instance().activeDocument()
        node = document.activeNode() if document else None
        if node is None:
            self.status.setText("Open an image and select the layer to save as a style.")
            return
        name, ok = QInputDialog.getText(self, "Save as style", "Style name:", text=node.name())
        if ok and name.strip():
            self.controller.save_layer_as_style(node, name.strip())
