"""The Neural Style docker: engine state, style chooser, live preview, settings, Apply / Cancel,
progress, the result history."""

from PyQt5.QtCore import QSize, Qt, QTimer
from PyQt5.QtGui import QIcon, QPixmap
from PyQt5.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
                             QListWidget, QListWidgetItem, QProgressBar, QPushButton, QScrollArea, QSlider, QSpinBox,
                             QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from krita import DockWidget, Krita

from .controller import controller
from .docker_parts import EngineDialog, StatusLine, changed_signal, option_editor
from .docker_preview import PREVIEW_DEBOUNCE_MS, LivePreview, active_target
from .docker_styles import THUMB_PX, StyleSources
from .settings import ADVANCED_OPTIONS, Settings, advanced_label, from_json, to_json
from .shared.options import OPTIONS_BY_NAME

DOCKER_ID = "neural_style_docker"
SETTINGS_GROUP = "neural_style"
STYLE_SOURCES = ("Library", "Image file", "Layer")


class NeuralStyleDocker(StyleSources, LivePreview, DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Neural Style")
        self.controller = controller()
        self._layers = []
        self._advanced = {}
        self._shown_once = False
        self._preview_target = None
        root = QWidget()
        layout = QVBoxLayout(root)

        state_row = QHBoxLayout()
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.controller.connect_engine)
        self.settings_button = QToolButton()
        self.settings_button.setText("Settings…")
        self.settings_button.setToolTip("Where the style engine runs")
        self.settings_button.clicked.connect(self.open_engine_settings)
        state_row.addWidget(self.state_label, 1)
        state_row.addWidget(self.connect_button)
        state_row.addWidget(self.settings_button)
        layout.addLayout(state_row)

        source_row = QHBoxLayout()
        self.source_combo = QComboBox()
        self.source_combo.addItems(STYLE_SOURCES)
        self.style_thumb = QLabel()
        self.style_thumb.setFixedSize(THUMB_PX, THUMB_PX)
        self.style_thumb.setAlignment(Qt.AlignCenter)
        self.style_thumb.setFrameShape(QFrame.StyledPanel)
        self.style_thumb.setToolTip("The chosen style")
        source_row.addWidget(self.source_combo, 1)
        source_row.addWidget(self.style_thumb)
        layout.addLayout(source_row)
        self.source_stack = QStackedWidget()
        self.source_stack.addWidget(self._library_page())
        self.source_stack.addWidget(self._file_page())
        self.source_stack.addWidget(self._layer_page())
        self.source_combo.currentIndexChanged.connect(self._source_changed)
        layout.addWidget(self.source_stack)

        layout.addLayout(self._preview_box())
        layout.addLayout(self._main_form())

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

        self.all_frames = QCheckBox("All frames")
        self.all_frames.setChecked(True)
        self.all_frames.setToolTip("Stylize every keyframe of the animated layer into a new animated layer "
                                   "(off: only the current frame, into a plain layer)")
        self.all_frames.setVisible(False)
        layout.addWidget(self.all_frames)
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
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("%p%")
        layout.addWidget(self.progress_bar)
        self.status = StatusLine()
        layout.addWidget(self.status)

        layout.addWidget(QLabel("Results of this image (click to use their settings again):"))
        self.history_list = QListWidget()
        self.history_list.setViewMode(QListWidget.IconMode)
        self.history_list.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.history_list.setResizeMode(QListWidget.Adjust)
        self.history_list.setMaximumHeight(THUMB_PX * 2 + 24)
        self.history_list.itemClicked.connect(self.restore_history_item)
        layout.addWidget(self.history_list)
        layout.addStretch(1)
        scroll = QScrollArea()           # a small docker scrolls; its controls are never squashed
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(root)
        self.setWidget(scroll)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DEBOUNCE_MS)
        self._preview_timer.timeout.connect(self.run_preview)
        self._target_timer = QTimer(self)       # Krita has no "active layer changed" signal
        self._target_timer.setInterval(700)
        self._target_timer.timeout.connect(self._check_target)
        self._frames_timer = QTimer(self)       # "All frames" shows for an animated active layer
        self._frames_timer.setInterval(700)
        self._frames_timer.timeout.connect(self.update_all_frames)

        self.controller.state_changed.connect(self._show_state)
        self.controller.styles_changed.connect(self._show_styles)
        self.controller.progress.connect(self._show_progress)
        self.controller.finished.connect(self._finished)
        self.controller.message.connect(self.status.setText)
        self.controller.failure.connect(self._show_failure)
        self.controller.preview_changed.connect(self._show_preview)
        self.controller.history_changed.connect(self.show_history)
        self.set_settings(from_json(Krita.instance().readSetting(SETTINGS_GROUP, "settings", "{}")))
        self._connect_changes()
        saved = Krita.instance().readSetting(SETTINGS_GROUP, "endpoint", "")
        if saved and saved != self.controller.endpoint:
            self.controller.configure(endpoint=saved)
        self._show_state(*self.controller.state)
        self._update_library_hint()

    # ---- settings ------------------------------------------------------------------------
    def _main_form(self):
        form = QFormLayout()
        strength_row = QHBoxLayout()
        self.strength = QSlider(Qt.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setToolTip("How much style versus how much of the layer's content")
        self.strength_value = QLabel()
        self.strength_value.setMinimumWidth(self.strength_value.fontMetrics().width("100") + 4)
        self.strength.valueChanged.connect(lambda value: self.strength_value.setText(str(value)))
        self.strength_ends = (QLabel("content"), QLabel("style"))
        strength_row.addWidget(self.strength_ends[0])
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.strength_ends[1])
        strength_row.addWidget(self.strength_value)
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
        form.addRow("Strength", strength_row)
        form.addRow("Detail (iterations)", self.detail)
        form.addRow("Resolution cap", self.resolution)
        form.addRow("Preserve colors", self.preserve_colors)
        form.addRow("Style scale", self.style_scale)
        return form

    def _advanced_box(self):
        box = QWidget()
        form = QFormLayout(box)
        self._advanced_editors = []
        for name in ADVANCED_OPTIONS:
            option = OPTIONS_BY_NAME[name]
            editor, read, write = option_editor(option)
            editor.setToolTip("%s (engine option: %s)" % (option.help, name))
            self._advanced[name] = (read, write, option.default)
            self._advanced_editors.append(editor)
            form.addRow(advanced_label(name), editor)
        self.preview_interval = QDoubleSpinBox()
        self.preview_interval.setRange(0.1, 60.0)
        self.preview_interval.setSuffix(" s")
        self.feather = QSpinBox()
        self.feather.setRange(0, 256)
        self.feather.setSuffix(" px")
        form.addRow("Show progress every", self.preview_interval)
        form.addRow("Selection soft edge", self.feather)
        return box

    def advanced_labels(self):
        """{option name: the label the artist reads} (for tests and scripts)."""
        form = self.advanced_box.layout()
        labels = {}
        for row, name in enumerate(ADVANCED_OPTIONS):
            labels[name] = form.itemAt(row, QFormLayout.LabelRole).widget().text()
        return labels

    def _connect_changes(self):
        editors = [self.strength, self.detail, self.resolution, self.preserve_colors, self.style_scale,
                   self.feather] + self._advanced_editors
        for editor in editors:
            signal = changed_signal(editor)
            if signal is not None:
                signal.connect(self.schedule_preview)
        self.library_list.currentItemChanged.connect(self._style_changed)
        self.file_edit.editingFinished.connect(self._style_changed)
        self.layer_combo.currentIndexChanged.connect(self._style_changed)

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
        self.strength_value.setText(str(self.strength.value()))
        self.detail.setValue(settings.detail)
        self.resolution.setValue(settings.resolution_cap)
        self.preserve_colors.setChecked(settings.preserve_colors)
        self.style_scale.setValue(settings.style_scale)
        for name, (_, write, default) in self._advanced.items():
            write(settings.advanced.get(name, default))
        self.preview_interval.setValue(settings.preview_interval_s)
        self.feather.setValue(settings.feather)

    def open_engine_settings(self, dialog=None):
        """The settings dialog; `dialog` lets a script or test fill and accept it without exec_()."""
        dialog = dialog or EngineDialog(self.controller.endpoint, self)
        if dialog.result() == dialog.Accepted or dialog.exec_() == dialog.Accepted:
            endpoint = dialog.endpoint()
            Krita.instance().writeSetting(SETTINGS_GROUP, "endpoint", endpoint or "")
            self.controller.configure(endpoint=endpoint)

    # ---- Apply / progress / history ----------------------------------------------------------
    def apply(self):
        document, nodes = active_target()
        settings = self.settings()
        Krita.instance().writeSetting(SETTINGS_GROUP, "settings", to_json(settings))
        self.controller.apply(document, nodes, self.style_choice(), settings,
                              all_frames=self.all_frames.isChecked())
        self._sync_buttons()

    def update_all_frames(self):
        _, nodes = active_target()
        self.all_frames.setVisible(any(node.animated() and node.type() == "paintlayer" for node in nodes))

    def _sync_buttons(self):
        busy = self.controller.is_busy()
        self.apply_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _show_state(self, state, detail):
        self.state_label.setText("Engine: " + state + (" (%s)" % detail if detail else ""))
        self.connect_button.setText("Retry" if state == "not running" else "Connect")
        if state == "connected" and self.source_combo.currentIndex() == 0 and not self.library_list.count():
            self.controller.refresh_styles()
        self._update_library_hint()

    def _show_progress(self, fraction, text):
        if fraction >= 0:
            self.progress_bar.setValue(int(fraction * 1000))
        self.status.setText(text)
        self._sync_buttons()

    def _show_failure(self, summary, details):
        self.status.setText(summary, details)

    def _finished(self, outcome, message):
        self._sync_buttons()
        self.status.setText(message, self.controller.details if outcome == "error" else "")

    def show_history(self):
        document = Krita.instance().activeDocument()
        self.history_list.clear()
        for entry in self.controller.history.entries(document):
            item = QListWidgetItem(QIcon(QPixmap.fromImage(entry.thumbnail)), entry.label)
            item.setToolTip("%s — strength %d, detail %d, resolution cap %d px" % (
                entry.label, entry.settings.strength, entry.settings.detail, entry.settings.resolution_cap))
            item.setData(Qt.UserRole, entry)
            self.history_list.addItem(item)

    def restore_history_item(self, item):
        """Use the settings (and style) of an earlier result again."""
        entry = item.data(Qt.UserRole)
        self.set_settings(entry.settings)
        self.set_style(entry.style)
        self.status.setText("Settings of \"%s\" restored." % entry.label)

    def hideEvent(self, event):
        super().hideEvent(event)
        self._frames_timer.stop()

    def showEvent(self, event):
        super().showEvent(event)
        self._frames_timer.start()
        self.update_all_frames()
        if not self._shown_once:   # the docker opening lists the library only if an engine runs already
            self._shown_once = True
            if self.source_combo.currentIndex() == 0:
                self.controller.refresh_styles(start=False)

    def canvasChanged(self, canvas):
        self.show_history()
        self.schedule_preview()
