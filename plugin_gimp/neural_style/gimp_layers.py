"""Layer pixels in and out through GEGL, at the image's bit depth (and scaled down for the preview)."""

import gi
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

import gimp_pixels as pixels        # noqa: E402
from gimp_arguments import UserError  # noqa: E402


def read_pixels(drawable, fmt):
    width, height = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, width, height), 1.0, fmt.babl,
                                     Gegl.AbyssPolicy.CLAMP)
    data = bytes(data)
    pixels.check_frame(width, height, fmt, data, "layer '%s'" % drawable.get_name())
    return data


def read_mask(image, layer):
    """The selection over the layer's area as one u8 channel (0 = outside), or None without a selection."""
    _, offset_x, offset_y = layer.get_offsets()
    width, height = layer.get_width(), layer.get_height()
    bounds = pixels.selection_bounds_from_gimp(*Gimp.Selection.bounds(image)[1:])
    plan = pixels.selection_plan((offset_x, offset_y, width, height), bounds)
    if plan == "none":
        return None
    if plan == "outside":
        raise UserError("the selection does not overlap layer '%s': select part of it, or select none"
                        % layer.get_name())
    buffer = image.get_selection().get_buffer()
    data = bytes(buffer.get(Gegl.Rectangle.new(offset_x, offset_y, width, height), 1.0, pixels.MASK_FORMAT,
                            Gegl.AbyssPolicy.NONE))
    if len(data) != width * height:
        raise UserError("the selection of layer '%s' could not be read (%d bytes for %dx%d)"
                        % (layer.get_name(), len(data), width, height))
    return data


def paint(layer, result):
    """Write a Pixels (preview or result, at the layer's size) into the layer and show it."""
    width, height = layer.get_width(), layer.get_height()
    if (result.width, result.height) != (width, height):
        raise UserError("the engine returned %dx%d pixels for the %dx%d layer '%s'"
                        % (result.width, result.height, width, height, layer.get_name()))
    fmt = pixels.pixel_format(result.dtype, result.channels)
    data = bytes(result.data)
    pixels.check_frame(width, height, fmt, data, "the engine's image")
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), fmt.babl, data)
    buffer.flush()
    layer.update(0, 0, width, height)
    Gimp.displays_flush()


def read_scaled(drawable, babl, longest):
    """(width, height, scale, bytes): the drawable scaled down (by GEGL) to at most `longest` pixels a side."""
    width, height = drawable.get_width(), drawable.get_height()
    scale = min(1.0, float(longest) / max(width, height))
    scaled_w, scaled_h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    data = bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, scaled_w, scaled_h), scale, babl,
                                           Gegl.AbyssPolicy.CLAMP))
    return scaled_w, scaled_h, scale, data


def read_scaled_mask(image, layer, scale, width, height):
    """The selection over the layer's area at `scale` (as read_scaled gave), or None without a selection."""
    _, offset_x, offset_y = layer.get_offsets()
    bounds = pixels.selection_bounds_from_gimp(*Gimp.Selection.bounds(image)[1:])
    plan = pixels.selection_plan((offset_x, offset_y, layer.get_width(), layer.get_height()), bounds)
    if plan == "none":
        return None
    if plan == "outside":
        raise UserError("the selection does not overlap layer '%s': select part of it, or select none"
                        % layer.get_name())
    rect = Gegl.Rectangle.new(int(round(offset_x * scale)), int(round(offset_y * scale)), width, height)
    data = bytes(image.get_selection().get_buffer().get(rect, scale, pixels.MASK_FORMAT, Gegl.AbyssPolicy.NONE))
    return data if len(data) == width * height else None


class UndoGroup:
    """One undo step for the whole run, opened only when the first result layer is made: a run that
    changes nothing leaves no empty "Neural Style" step and does not mark the image dirty."""

    def __init__(self, image):
        self.image, self.started = image, False

    def start(self):
        if not self.started:
            self.image.undo_group_start()
            self.started = True

    def end(self):
        if self.started:
            self.image.undo_group_end()


RESULT_PARASITE = "neural-style-result"


def new_result_layer(image, layer, name, undo):
    """A transparent layer named `name` directly above `layer`, same size and offsets, marked as a result
    (so that "Layers as frames" never takes it for a frame)."""
    undo.start()
    layer_type = getattr(Gimp.ImageType, pixels.layer_image_type(image.get_base_type().value_name))
    result_layer = Gimp.Layer.new(image, name, layer.get_width(), layer.get_height(), layer_type, 100.0,
                                  Gimp.LayerMode.NORMAL)
    _, offset_x, offset_y = layer.get_offsets()
    image.insert_layer(result_layer, layer.get_parent(), image.get_item_position(layer))
    result_layer.set_offsets(offset_x, offset_y)
    result_layer.fill(Gimp.FillType.TRANSPARENT)
    result_layer.attach_parasite(Gimp.Parasite.new(RESULT_PARASITE, Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE,
                                                   list(b"1")))
    return result_layer


def is_result(layer):
    return layer.get_parasite(RESULT_PARASITE) is not None
