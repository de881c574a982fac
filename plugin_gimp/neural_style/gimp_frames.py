"""Layers as frames, GIMP's animation convention: every top-level layer is a frame, the bottom layer the
first. Frame k > 0 goes to the engine with frame k-1's content and result (shared/frames.py), so the
results stay coherent in time (docs/frames.md); each frame gets its result layer directly above it,
painted the moment it arrives, so Cancel or an error keeps every frame done.
"""

import time

import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

import gimp_arguments as arguments  # noqa: E402
import gimp_layers as layers_io     # noqa: E402
import gimp_pixels as pixels        # noqa: E402
import gimp_progress as progress    # noqa: E402
from gimp_arguments import UserError  # noqa: E402
from gimp_feedback import RunFeedback  # noqa: E402


def frame_layers(image, values=None):
    """The frames, first (bottom) to last: the top-level layers, except results of earlier runs and the
    layer the style is taken from."""
    style_layer = None
    if values and values.get("style-source") == "layer":
        style_layer = values.get("style-layer")
    return [layer for layer in reversed(image.get_layers())
            if not layers_io.is_result(layer) and not (style_layer is not None and layer == style_layer)]


def wanted(values, image):
    """True when this run stylizes the layers as frames: the setting is on and there are two frames or more."""
    return bool(values.get("layers-as-frames")) and len(frame_layers(image, values)) > 1


def kept_text(done):
    if done == 0:
        return "no frame was finished"
    return "frame 1 is stylized and kept" if done == 1 else "frames 1-%d are stylized and kept" % done


class _FrameSizeError(Exception):
    """Raised by read_frame when the sequence reaches a frame of another size."""


def stylize_frames(client, protocol, image, values, style, style_name, options, cancel_window, undo, log):
    """Stylize every frame in order, each with the one before it; False when the artist cancelled."""
    from shared.client import ClientError
    from shared.frames import FrameSequence
    frames = frame_layers(image, values)
    count = len(frames)
    for layer in frames:
        if layer.is_group():
            raise UserError("'%s' is a layer group: with Layers as frames every top-level layer is a frame; "
                            "merge the group or turn Layers as frames off" % layer.get_name())
    dtype = pixels.dtype_for_precision(image.get_precision().value_name)
    fmt = pixels.pixel_format(dtype, 4)
    first = frames[0]
    width, height = first.get_width(), first.get_height()
    mask = layers_io.read_mask(image, first)
    results = {}                     # frame index -> its result layer

    def read_frame(index):
        layer = frames[index]
        if (layer.get_width(), layer.get_height()) != (width, height):
            raise _FrameSizeError(
                "layer '%s' (frame %d/%d) is %dx%d, but frame 1 '%s' is %dx%d: Layers as frames needs layers of "
                "one size; %s" % (layer.get_name(), index + 1, count, layer.get_width(), layer.get_height(),
                                  first.get_name(), width, height, kept_text(index)))
        return protocol.Pixels(width, height, 4, dtype, layers_io.read_pixels(layer, fmt))

    def show(index, result):
        if index not in results:
            layer = frames[index]
            name = arguments.result_layer_name(layer.get_name(), style_name)
            results[index] = layers_io.new_result_layer(image, layer, name, undo)
        layers_io.paint(results[index], result)

    def keep_unfinished(index):
        """The frame at work keeps its last preview, named so that nobody takes it for a result."""
        if index in results and index >= sequence.finished:
            kept = arguments.incomplete_layer_name(results[index].get_name())
            results[index].set_name(kept)
            return kept
        return None

    def stopped(index, reason, **why):
        kept = keep_unfinished(index)
        message = "layer '%s' (frame %d/%d) could not be stylized: %s; %s" % (
            frames[index].get_name(), index + 1, count, reason.rstrip("."), kept_text(sequence.finished))
        if kept:
            message += ", its last preview is kept as layer '%s'" % kept
        return UserError(message, kept=kept, **why)

    Gimp.progress_set_text(progress.titled("frame 1/%d %s waiting for the engine" % (count, progress.DASH)))
    sequence = FrameSequence(client, count, read_frame, [style], options,
                             protocol.Pixels(width, height, 1, "u8", mask) if mask is not None else None)
    started = time.monotonic()
    feedback = RunFeedback(cancel_window)
    try:
        while True:
            try:
                item = sequence.poll(0.05)
            except _FrameSizeError as error:
                raise UserError(str(error)) from None
            if feedback.cancel_now():
                sequence.cancel()
            if item is None:
                if sequence.done:
                    if feedback.cancel_sent:          # cancelled between two frames
                        return False
                    raise stopped(sequence.finished, "the engine ended the job without a result")
                continue
            index, event = item.index, item.event
            if event.type == "progress":
                text = progress.titled(sequence.progress_text(event.header))
                feedback.show(text, progress.fraction(event.header, index, count))
                if event.pixels is not None:
                    show(index, event.pixels)
            elif event.type == "result":
                show(index, event.pixels)
                log.info("stylized frame %d/%d '%s' (%dx%d %s), %.1f s into the run", index + 1, count,
                         frames[index].get_name(), width, height, dtype, time.monotonic() - started)
                if index == count - 1:
                    return True
            elif event.type == "error":
                message = event.header.get("message") or "the engine reported an error"
                raise stopped(index, message, code=event.header.get("code"), engine_message=message)
            elif event.type == "cancelled":
                keep_unfinished(index)
                log.info("cancelled at frame %d/%d; %s", index + 1, count, kept_text(sequence.finished))
                return False
    except ClientError as error:       # the engine refused a frame, died or stopped answering
        raise stopped(min(sequence.finished, count - 1), str(error), cause=error) from error
    except UserError:
        raise
    except BaseException:
        unfinished = results.get(sequence.finished)
        if unfinished is not None and unfinished.is_valid():
            image.remove_layer(unfinished)          # a bug: no half-made layer stays behind
        raise
