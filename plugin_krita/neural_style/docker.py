"""The Neural Style docker: engine state, style chooser, settings, Apply / Cancel, progress."""

from PyQt5.QtCore import Qt, QSize
from PyQt5.QtGui import QIcon, QPixmap
from PyQt5.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                             QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QProgressBar,
                             QPushButton, QSlider, QSpinBox, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from krita import DockWidget, Krita

from .controller import MASK_TYPES, StyleChoice, controller
from .settings import ADVANCED_OPTIONS, Settings, from_json, to_json
from .shared.options import OPTIONS_BY_NAME

DOCKER_ID = "neural_style_docker"
SETTINGS_GROUP = "neural_style"
STYLE_SOURCES = ("Library", "Image file", "Layer")


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


def _option_editor(option):
    """A control for one advanced option, built from its row in the option table."""
    if option.kind == "int":
        editor = QSpinBox()
        editor.setRange(int(option.minimum), int(min(option.maximum, 2**31 - 1)))
        editor.setValue(option.default)
        return editor, editor.value, editor.setValue
    if option.kind == "float":
        editor = QDoubleSpinBox()
        editor.setDecimals(6)
        editor.setRange(option.minimum, option.maximum)
        editor.setValue(option.default)
        return editor, editor.value, editor.setValue
    if option.kind == "bool":
        editor = QCheckBox()
        editor.setChecked(option.default)
        return editor, editor.isChecked, editor.setChecked
    if option.kind == "choice":
        editor = QComboBox()
        editor.addItems(option.choices)
        editor.setCurrentText(option.default)
        return editor, editor.currentText, editor.setCurrentText
    editor = QLineEdit()   # str, layers, floats: comma-separated text
    as_text = (lambda value: ", ".join(str(item) for item in value)) if option.kind != "str" else str
    editor.setText(as_text(option.default))
    if option.kind == "str":
        return editor, editor.text, lambda value: editor.setText(str(value))
    convert = str if option.kind == "layers" else float

    def read():
        try:
            return [convert(part.strip()) for part in editor.text().split(",") if part.strip()]
        except ValueError:
            return editor.text()   # the option table's validation names the field
    return editor, read, lambda value: editor.setText(as_text(value))


class NeuralStyleDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Neural Style")
        self.controller = controller()
        self._layers = []
        self._advanced = {}
        self._shown_once = False
        root = QWidget(self)
        layout = QVBoxLayout(root)

        state_row = QHBoxLayout()
        self.state_label = QLabel("Engine: not connected")
        self.state_label.setWordWrap(True)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.controller.connect_engine)
        state_row.addWidget(self.state_label, 1)
        state_row.addWidget(self.connect_button)
        layout.addLayout(state_row)

        self.source_combo = QComboBox()
        self.source_combo.addItems(STYLE_SOURCES)
        layout.addWidget(self.source_combo)
        self.source_stack = QStackedWidget()
        self.source_stack.addWidget(self._library_page())
        self.source_stack.addWidget(self._file_page())
        self.source_stack.addWidget(self._layer_page())
        self.source_combo.currentIndexChanged.connect(self._source_changed)
        layout.addWidget(self.source_stack)

        form = QFormLayout()
        self.strength = QSlider(Qt.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setToolTip("How much style versus how much of the layer's content")
        self.detail = QSpinBox()
        self.detail.setRange(1, int(OPTIONS_BY_NAME["iterations"].maximum))
        self.detail.setToolTip(OPTIONS_BY_NAME["iterations"].help)
        self.resolution = QSpinBox()
        self.resolution.setRange(int(OPTIONS_BY_NAME["max_size"].minimum), int(OPTIONS_BY_NAME["max_size"].maximum))
        self.resolution.setSuffix(" px")
        self.resolution.setToolTip(OPTIONS_BY_NAME["max_size"].help)
        self.preserve_colors = QCheckBox()
        self.style_scale = QDoubleSpinBox()
        self.style_scale.setRange(OPTIONS_BY_NAME["style_scale"].minimum, OPTIONS_BY_NAME["style_scale"].maximum)
        self.style_scale.setSingleStep(0.1)
        form.addRow("Strength", self.strength)
        form.addRow("Detail (iterations)", self.detail)
        form.addRow("Resolution cap", self.resolution)
        form.addRow("Preserve colors", self.preserve_colors)
        form.addRow("Style scale", self.style_scale)
        layout.addLayout(form)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setArrowType(Qt.RightArrow)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.advanced_box = self._advanced_box()
        self.advanced_box.setVisible(False)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.advanced_box)

        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.controller.cancel)
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        layout.addWidget(self.progress_bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.setWidget(root)

        self.controller.state_changed.connect(self._show_state)
        self.controller.styles_changed.connect(self._show_styles)
        self.controller.progress.connect(self._show_progress)
        self.controller.finished.connect(self._finished)
        self.controller.message.connect(self.status.setText)
        self.set_settings(from_json(Krita.instance().readSetting(SETTINGS_GROUP, "settings", "{}")))
        self._show_state(*self.controller.state)

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
        row = QHBoxLayout()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.controller.refresh_styles)
        save = QPushButton("Save this layer as a style…")
        save.clicked.connect(self.save_active_layer)
        row.addWidget(refresh)
        row.addWidget(save)
        layout.addWidget(self.library_list)
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
        if index == 0:
            self.controller.refresh_styles()
        elif index == 2:
            self._refresh_layers()

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "Style image", self.file_edit.text(),
                                              "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)")
        if path:
            self.file_edit.setText(path)

    def _refresh_layers(self):
        self._layers = all_layers()
        self.layer_combo.clear()
        self.layer_combo.addItems([label for label, _ in self._layers])

    def _show_styles(self, styles):
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

    def save_active_layer(self):
        document = Krita.instance().activeDocument()
        node = document.activeNode() if document else None
        if node is None:
            self.status.setText("Open an image and select the layer to save as a style.")
            return
        name, ok = QInputDialog.getText(self, "Save as style", "Style name:", text=node.name())
        if ok and name.strip():
            self.controller.save_layer_as_style(node, name.strip())

    # ---- settings ------------------------------------------------------------------------
    def _advanced_box(self):
        box = QWidget()
        form = QFormLayout(box)
        for name in ADVANCED_OPTIONS:
            option = OPTIONS_BY_NAME[name]
            editor, read, write = _option_editor(option)
            editor.setToolTip(option.help)
            self._advanced[name] = (read, write, option.default)
            form.addRow(name.replace("_", " "), editor)
        self.preview_interval = QDoubleSpinBox()
        self.preview_interval.setRange(0.1, 60.0)
        self.preview_interval.setSuffix(" s")
        self.feather = QSpinBox()
        self.feather.setRange(0, 256)
        self.feather.setSuffix(" px")
        form.addRow("preview every", self.preview_interval)
        form.addRow("selection soft edge", self.feather)
        return box

    def _toggle_advanced(self, shown):
        self.advanced_box.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)

    def settings(self):
        advanced = {}
        for name, (read, _, default) in self._advanced.items():
            value = read()
            if (tuple(value) if isinstance(value, list) else value) != default:
                advanced[name] = value
        return Settings(strength=self.strength.value(), detail=self.detail.value(),
                        resolution_cap=self.resolution.value(), preserve_colors=self.preserve_colors.isChecked(),
                        style_scale=self.style_scale.value(), advanced=advanced,
                        preview_interval_s=self.preview_interval.value(), feather=self.feather.value())

    def set_settings(self, settings):
        self.strength.setValue(int(round(settings.strength)))
        self.detail.setValue(settings.detail)
        self.resolution.setValue(settings.resolution_cap)
        self.preserve_colors.setChecked(settings.preserve_colors)
        self.style_scale.setValue(settings.style_scale)
        for name, (_, write, default) in self._advanced.items():
            write(settings.advanced.get(name, default))
        self.preview_interval.setValue(settings.preview_interval_s)
        self.feather.setValue(settings.feather)

    # ---- Apply / progress ----------------------------------------------------------------
    def apply(self):
        window = Krita.instance().activeWindow()
        view = window.activeView() if window else None
        document = view.document() if view else None
        nodes = view.selectedNodes() if view else []
        if document is not None and not nodes and document.activeNode() is not None:
            nodes = [document.activeNode()]
        settings = self.settings()
        Krita.instance().writeSetting(SETTINGS_GROUP, "settings", to_json(settings))
        if self.controller.apply(document, nodes, self.style_choice(), settings):
            self.apply_button.setEnabled(False)
            self.cancel_button.setEnabled(True)

    def _show_state(self, state, detail):
        text = "Engine: " + state + (" (%s)" % detail if detail else "")
        self.state_label.setText(text)
        self.connect_button.setText("Retry" if state == "not running" else "Connect")
        if state == "connected" and self.source_combo.currentIndex() == 0 and not self.library_list.count():
            self.controller.refresh_styles()

    def _show_progress(self, fraction, text):
        if fraction >= 0:
            self.progress_bar.setValue(int(fraction * 1000))
        self.status.setText(text)

    def _finished(self, outcome, message):
        self.apply_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status.setText(message)

    def showEvent(self, event):
        super().showEvent(event)
        if not self._shown_once:   # the first time the artist opens the docker: fill the library
            self._shown_once = True
            if self.source_combo.currentIndex() == 0:
                self.controller.refresh_styles()

    def canvasChanged(self, canvas):
        pass
