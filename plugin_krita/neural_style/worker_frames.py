"""The engine worker's part of an animated layer (no Krita API): the frames are read on the UI
thread when the frame sequence is about to submit them (the worker asks with a signal and waits),
so only one frame's bytes is held at a time."""

import threading
import time

from .shared.frames import FrameSequence

POLL_S = 0.03           # the worker loop's wait for an engine message while jobs run
READ_TIMEOUT_S = 60.0   # the UI thread answers within one turn of its event loop; this catches a lost answer


class FrameCancelled(Exception):
    """The Apply was cancelled while the worker waited for a frame."""


class FrameUnreadable(Exception):
    """The UI thread could not read a frame; str() is one sentence."""


class FrameSupply:
    """Frames handed from the UI thread to the worker thread."""

    def __init__(self, ask, cancelled):
        self._ask = ask                # ask(key, index): emits the worker's frame_wanted signal
        self._cancelled = cancelled    # () -> bool
        self._frames = {}
        self._condition = threading.Condition()

    def give(self, key, index, layer):
        """UI thread: frame `index` of task `key`, LayerBytes or an error sentence."""
        with self._condition:
            self._frames[(key, index)] = layer
            self._condition.notify_all()

    def clear(self):
        with self._condition:
            self._frames.clear()

    def read(self, key, index):
        """Worker thread: the frame's Pixels; FrameCancelled / FrameUnreadable."""
        self._ask(key, index)
        deadline = time.monotonic() + READ_TIMEOUT_S
        with self._condition:
            while (key, index) not in self._frames:
                if self._cancelled():
                    raise FrameCancelled()
                if time.monotonic() > deadline:
                    raise FrameUnreadable("Krita did not hand over frame %d within %d s." % (index + 1, READ_TIMEOUT_S))
                self._condition.wait(0.05)
            layer = self._frames.pop((key, index))
        if isinstance(layer, str):
            raise FrameUnreadable(layer)
        return layer.to_pixels()


class FrameSteps:
    """EngineWorker's steps for a FrameTask (a mixin: the signals and the batch are the worker's)."""

    def _is_cancelled(self):
        with self._lock:
            return self._cancelled

    def give_frame(self, key, index, layer):
        """UI thread: the frame the worker asked for (LayerBytes), or why it cannot be read (a sentence)."""
        self._frames.give(key, index, layer)

    def _step_frames(self, batch, task):
        """One poll of an animated layer's frame sequence: frame k's result is handed on before
        frame k+1 is read and submitted, so Cancel keeps every frame done."""
        sequence = batch.job
        try:
            got = sequence.poll(POLL_S)
        except FrameCancelled:
            got = None
            sequence.done = True
        except FrameUnreadable as error:
            sequence.done = True
            return self._end_batch("error", str(error), str(error))
        if self._is_cancelled() and not sequence.done:
            sequence.cancel()
            cancel_running_frame(sequence)
        if got is None:
            if sequence.done:
                self._end_batch("cancelled", "Cancelled.", "")
            return
        self._alive_at = time.monotonic()
        event, header = got.event, dict(got.event.header or {})
        data = None
        if event.type == "result" and event.pixels is not None:
            data = task.layer.from_pixels(event.pixels)
        text = sequence.progress_text(header) if event.type == "progress" else ""
        self.frame_event.emit(task.key, got.index, got.count, event.type, header, data, text)
        if event.type == "result" and sequence.done:
            if sequence.finished >= task.count:
                self._next_task()
            else:
                self._end_batch("cancelled", "Cancelled.", "")
        elif event.type == "cancelled":
            self._end_batch("cancelled", "Cancelled.", "")
        elif event.type == "error":
            self._end_with_error(header)


def start_sequence(client, task, supply, styles, options):
    return FrameSequence(client, task.count, lambda index: supply.read(task.key, index), styles, options,
                         mask=task.mask)


def cancel_running_frame(sequence):
    """From any thread: cancel the frame job that runs (the worker thread then ends the sequence)."""
    job = getattr(sequence, "job", None)
    if job is not None:
        job.cancel()
