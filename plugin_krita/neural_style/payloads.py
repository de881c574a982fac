"""What the UI thread hands the engine worker (plain bytes, no Krita objects), and the conversions
the worker does with them (no Krita, no Qt)."""

import logging

from .pixels import krita_to_wire, pixel_bytes, wire_format, wire_to_krita
from .preview import display_rgba8, pick_columns
from .shared.protocol import Pixels, StyleRef

log = logging.getLogger("neural_style")


class Task:
    """One layer to stylize: its Krita bytes, mask and style refs (read on the UI thread)."""

    def __init__(self, key, layer, mask, styles):
        self.key = key          # the controller's handle for the result layer
        self.layer = layer      # LayerBytes
        self.mask = mask        # Pixels (1 channel u8) or None
        self.styles = styles    # [StyleRef]


class FrameTask:
    """The keyframes of an animated layer, stylized as one frame sequence (shared/frames.py); the
    worker asks the UI thread for frame k's bytes (`frame_wanted`) when it is about to be submitted."""

    def __init__(self, key, layer, count, mask, styles):
        self.key = key          # the controller's handle for the result layer
        self.layer = layer      # LayerBytes without data: the frames' rectangle and format
        self.count = count      # how many keyframes
        self.mask = mask
        self.styles = styles


class PreviewTask:
    """The preview's request: every `step`-th row of the region (full rows, read on the UI thread)."""

    def __init__(self, token, layer, mask_rows, styles, options, step):
        self.token, self.layer, self.mask_rows = token, layer, mask_rows
        self.styles, self.options, self.step = styles, options, step


class LayerBytes:
    """A rectangle of a layer as Krita stores it; the worker converts it to and from the protocol."""

    def __init__(self, data, width, height, color_model, color_depth, transfer):
        self.data, self.width, self.height = data, width, height
        self.color_model, self.color_depth, self.transfer = color_model, color_depth, transfer

    def to_pixels(self):
        channels, dtype = wire_format("", self.color_model, self.color_depth)
        return Pixels(self.width, self.height, channels, dtype,
                      krita_to_wire(self.data, self.color_model, self.color_depth), self.transfer)

    def from_pixels(self, pixels):
        """Krita bytes of an engine image of this rectangle, or None if its size is wrong."""
        if (pixels.width, pixels.height) != (self.width, self.height):
            log.warning("the engine sent %dx%d for a %dx%d region; ignored",
                        pixels.width, pixels.height, self.width, self.height)
            return None
        return wire_to_krita(pixels.data, self.color_model, self.color_depth)

    def columns(self, step):
        """These rows with every `step`-th pixel kept (the preview's small image)."""
        size = pixel_bytes(self.color_model, self.color_depth)
        data = pick_columns(self.data, self.width, self.height, size, step)
        return LayerBytes(data, (self.width + step - 1) // step, self.height, self.color_model,
                          self.color_depth, self.transfer)


class LayerStyle:
    """A layer used as the style: read on the UI thread, converted by the worker."""

    def __init__(self, layer, name):
        self.layer, self.name = layer, name

    def resolve(self):
        return StyleRef.pixels(self.layer.to_pixels(), name=self.name)


def resolve_styles(styles):
    return [style.resolve() if isinstance(style, LayerStyle) else style for style in styles]


def display_picture(pixels):
    """(RGBA 8-bit bytes, width, height) of engine pixels, for the docker's preview."""
    return (display_rgba8(pixels.data, pixels.width, pixels.height, pixels.channels, pixels.dtype,
                          getattr(pixels, "transfer", "srgb")), pixels.width, pixels.height)
