"""Reading Krita layers for a job, and what a style choice is (Krita API, UI thread only)."""

import os

from krita import Krita

from .pixels import transfer_of, wire_format
from .region import Rect, job_region, style_name_from_path
from .payloads import LayerBytes, LayerStyle
from .shared.protocol import StyleRef

MASK_TYPES = ("selectionmask", "transparencymask", "filtermask", "colorizemask", "transformmask")


class ApplyError(ValueError):
    """Apply cannot start; str() is one sentence for the artist."""


class StyleChoice:
    """What to stylize with: a library style, an image file, or a layer of an open document."""

    def __init__(self, kind, name, path=None, style_id=None, node=None):
        self.kind, self.name, self.path, self.style_id, self.node = kind, name, path, style_id, node

    def same_as(self, other):
        return other is not None and (self.kind, self.name, self.path, self.style_id) == (
            other.kind, other.name, other.path, other.style_id) and (
            self.node is None or (other.node is not None and self.node.uniqueId() == other.node.uniqueId()))

    @classmethod
    def file(cls, path, name=None):
        return cls("file", name or style_name_from_path(path), path=path)

    @classmethod
    def library(cls, style_id, name):
        return cls("library", name, style_id=style_id)

    @classmethod
    def layer(cls, node):
        return cls("layer", node.name(), node=node)


def node_rect(node) -> Rect:
    bounds = node.bounds()
    return Rect(bounds.x(), bounds.y(), bounds.width(), bounds.height())


def read_layer(node, rect: Rect, rows=None) -> LayerBytes:
    """The layer's bytes in `rect` (converted later, by the worker); raises UnsupportedLayer.
    With `rows` (row offsets within rect) only those rows are read, one after another."""
    wire_format(node.name(), node.colorModel(), node.colorDepth())
    if rows is None:
        data, height = bytes(node.pixelData(rect.x, rect.y, rect.width, rect.height)), rect.height
    else:
        data = b"".join(bytes(node.pixelData(rect.x, rect.y + row, rect.width, 1)) for row in rows)
        height = len(rows)
    return LayerBytes(data, rect.width, height, node.colorModel(), node.colorDepth(),
                      transfer_of(node.colorProfile()))


def is_open(document) -> bool:
    return document is not None and any(document == other for other in Krita.instance().documents())


def layer_region(document, node):
    """(the rectangle a job on `node` covers, the selection or None); raises ApplyError."""
    canvas = Rect(0, 0, document.width(), document.height())
    selection = document.selection()
    selection_rect = None
    if selection is not None and selection.width() > 0 and selection.height() > 0:
        selection_rect = Rect(selection.x(), selection.y(), selection.width(), selection.height())
    else:
        selection = None
    rect = job_region(node_rect(node), canvas, selection_rect)   # the soft edge lies inside
    if rect is None:
        raise ApplyError("Layer \"%s\" has no pixels %s." % (
            node.name(), "inside the selection" if selection_rect else "on the canvas"))
    return rect, selection


def style_ref(style):
    """What to send for a StyleChoice (a layer is read now); raises ApplyError."""
    if style is None:
        raise ApplyError("Choose a style first: a library style, an image file or a layer.")
    if style.kind == "library":
        return StyleRef.library(style.style_id)
    if style.kind == "file":
        if not style.path or not os.path.isfile(style.path):
            raise ApplyError("The style image \"%s\" does not exist." % (style.path or ""))
        return StyleRef.file(os.path.abspath(style.path))
    rect = node_rect(style.node)
    if rect.width <= 0 or rect.height <= 0:
        raise ApplyError("The style layer \"%s\" is empty." % style.node.name())
    return LayerStyle(read_layer(style.node, rect), style.node.name())
