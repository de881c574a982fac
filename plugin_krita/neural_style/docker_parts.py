"""Pieces of the docker: the Advanced option editors (with an artist's labels), the engine
settings dialog, the status line with its Details, and small picture helpers (Qt only)."""

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage, QImageReader, QPixmap
from PyQt5.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                             QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QSizePolicy, QSpinBox,
                             QVBoxLayout, QWidget)

from .settings import choice_label, layer_label
from .shared import endpoints
from .shared.options import VGG_LAYERS, lecture_layer_name

STATUS_LINES = 3          # the status line never grows past this: long texts go to Details


def option_editor(option):
    """(widget, read, write) for one advanced option, built from its row in the option table."""
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
    if option.kind == "choice" or option.name == "content_layer":
        editor = QComboBox()
        values = option.choices if option.kind == "choice" else VGG_LAYERS
        label = (lambda value: choice_label(option.name, value)) if option.kind == "choice" else layer_label
        for value in values:
            editor.addItem(label(value), value)

        def write(value):
            if option.name == "content_layer":
                try:
                    value = lecture_layer_name(str(value))
                except ValueError:
                    pass
            editor.setCurrentIndex(max(0, editor.findData(value)))
        write(option.default)
        return editor, editor.currentData, write
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
    if option.kind == "layers":
        editor.setToolTip("%s: %s" % (option.help, ", ".join(layer_label(name) for name in VGG_LAYERS[::4])))
    return editor, read, lambda value: editor.setText(as_text(value))


def changed_signal(editor):
    """The signal an editor emits when the artist changes it (to refresh the preview)."""
    for name in ("valueChanged", "toggled", "currentIndexChanged", "textChanged"):
        if hasattr(editor, name):
            return getattr(editor, name)
    return None


class StatusLine(QWidget):
    """One short sentence; a "Details…" button holds the full text (and the log's path). Never
    taller than STATUS_LINES lines, whatever it is given, so the controls above keep their room."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.label.setMaximumHeight(self.label.fontMetrics().lineSpacing() * STATUS_LINES + 4)
        self.details_button = QPushButton("Details…")
        self.details_button.setVisible(False)
        self.details_button.clicked.connect(self.show_details)
        row.addWidget(self.label, 1)
        row.addWidget(self.details_button, 0, Qt.AlignTop)
        self.details = ""

    def text(self):
        return self.label.text()

    def setText(self, text, details=""):
        # The docker's font is known only once it is shown: the limit follows it.
        self.label.setMaximumHeight(self.label.fontMetrics().lineSpacing() * STATUS_LINES + 4)
        self.label.setText(text)
        self.label.setToolTip(text if len(text) > 80 else "")
        self.details = details
        self.details_button.setVisible(bool(details))

    def show_details(self):
        box = QMessageBox(QMessageBox.Warning, "Neural Style", self.label.text(), QMessageBox.Close, self)
        box.setDetailedText(self.details)
        box.exec_()


class EngineDialog(QDialog):
    """Settings ▸ the engine's address (empty: this computer's engine, started when needed)."""

    def __init__(self, endpoint, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Neural Style settings")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.endpoint_edit = QLineEdit(endpoint or "")
        self.endpoint_edit.setPlaceholderText("this computer (%s)" % endpoints.default_endpoint())
        self.endpoint_edit.setToolTip("Where the style engine listens, e.g. tcp://192.168.1.20:5557 for one on "
                                      "another computer. Leave it empty for the engine on this computer.")
        form.addRow("Engine address", self.endpoint_edit)
        layout.addLayout(form)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        layout.addWidget(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def endpoint(self):
        return self.endpoint_edit.text().strip() or None

    def accept(self):
        text = self.endpoint()
        if text is not None:
            try:
                endpoints.parse(text)
            except endpoints.EndpointError as error:
                self.error_label.setText(str(error))
                return
        super().accept()


def picture_pixmap(picture, size):
    """(RGBA 8-bit bytes, width, height) -> a QPixmap fitting `size` x `size`."""
    data, width, height = picture
    image = QImage(data, width, height, width * 4, QImage.Format_RGBA8888).copy()
    return QPixmap.fromImage(image).scaled(size, size, Qt.KeepAspectRatio, Qt.SmoothTransformation)


def file_thumbnail(path, size):
    """A small QPixmap of an image file (read at a reduced size), or a null one."""
    reader = QImageReader(path)
    full = reader.size()
    if full.isValid() and max(full.width(), full.height()) > size:
        reader.setScaledSize(full.scaled(size, size, Qt.KeepAspectRatio))
    image = reader.read()
    return QPixmap.fromImage(image) if not image.isNull() else QPixmap()
