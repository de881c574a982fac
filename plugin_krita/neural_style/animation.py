"""Animated layers (Krita API, UI thread only): their keyframe times, reading a keyframe's pixels,
and the result layer that gets one stylized frame per source keyframe.

Krita 5.1 and 5.2 have no Python call that adds a keyframe, so the result layer is a copy of the
source (Node.duplicate() keeps every keyframe time), emptied before the job starts by cropping it
to one pixel outside the canvas (cropNode crops every frame: 0.27 s for 24 frames of 1280x720,
where emptying frame by frame at its time took 1.1 s): it never shows the source's pixels, and a
frame whose result never came stays empty.
Writing a frame's pixels needs the document at that time (setPixelData writes into the keyframe
shown at the current time); the artist's current time is restored after every write.
"""

import logging

from .layers import ApplyError
from .payloads import LayerBytes
from .pixels import pixel_bytes, transfer_of, wire_format
from .region import Rect

log = logging.getLogger("neural_style")

SWITCH_TRIES = 3   # a time switch that did not happen is asked again, then the frame is reported


def keyframe_times(document, node):
    """The times of `node`'s pixel keyframes, 0 .. the end of the animation's range; [] when the
    layer is not an animated paint layer."""
    if node.type() != "paintlayer" or not node.animated() or not hasattr(node, "hasKeyframeAtTime"):
        return []
    end = max(document.fullClipRangeEndTime(), document.currentTime(), 0)
    return [time for time in range(0, end + 1) if node.hasKeyframeAtTime(time)]


def frames_region(document, selection):
    """Every frame's job rectangle: the canvas cut to the selection's bounding box (the frames of
    one layer have other bounds each, and a frame sequence has one size)."""
    rect = Rect(0, 0, document.width(), document.height())
    if selection is not None:
        left, top = max(0, selection.x()), max(0, selection.y())
        right = min(rect.width, selection.x() + selection.width())
        bottom = min(rect.height, selection.y() + selection.height())
        if right <= left or bottom <= top:
            raise ApplyError("The selection is outside the canvas.")
        rect = Rect(left, top, right - left, bottom - top)
    return rect


def read_frame(node, rect, time):
    """The keyframe at `time` as LayerBytes (Node.pixelDataAtTime does not move the current time)."""
    wire_format(node.name(), node.colorModel(), node.colorDepth())
    data = bytes(node.pixelDataAtTime(rect.x, rect.y, rect.width, rect.height, time))
    expected = rect.width * rect.height * pixel_bytes(node.colorModel(), node.colorDepth())
    if len(data) != expected:
        raise ApplyError("Layer \"%s\" has no keyframe at frame %d any more." % (node.name(), time))
    return LayerBytes(data, rect.width, rect.height, node.colorModel(), node.colorDepth(),
                      transfer_of(node.colorProfile()))


def at_time(document, time):
    """Move the document to `time` and wait until it is there; False if it did not get there."""
    for _ in range(SWITCH_TRIES):
        document.setCurrentTime(time)
        document.waitForDone()
        if document.currentTime() == time:
            return True
    return False


def write_frame(document, node, time, rect, data, wanted=lambda: True):
    """Put `data` (Krita bytes of `rect`) into `node`'s keyframe at `time`, and move the document
    back to the artist's time. False when the document could not be moved to `time`, or when
    `wanted()` turned false meanwhile (moving in time runs Qt's event loop: the document's window
    may be closing by then, and nothing may be painted into it any more)."""
    was = document.currentTime()
    try:
        if not at_time(document, time) or not wanted():
            log.warning("frame %d not written (the document did not move there, or was let go)", time)
            return False
        node.setPixelData(data, rect.x, rect.y, rect.width, rect.height)
        document.refreshProjection()   # at this time: the animation cache drops the old frame
        return True
    finally:
        if wanted() and document.currentTime() != was:
            at_time(document, was)


def empty_copy(document, source, name):
    """A new animated paint layer with keyframes at the times of `source`'s, all empty, placed above
    `source`: a copy of it, cropped (every frame at once) to one pixel outside the canvas."""
    result = source.duplicate()
    result.setName(name)
    source.parentNode().addChildNode(result, source)
    for child in result.childNodes():   # the source's masks stay the source's
        child.remove()
    result.setOpacity(255)
    result.setBlendingMode("normal")
    result.setVisible(True)
    result.setLocked(False)
    result.setAlphaLocked(False)
    result.setInheritAlpha(False)
    result.cropNode(document.width() + 1, document.height() + 1, 1, 1)
    document.waitForDone()
    return result
