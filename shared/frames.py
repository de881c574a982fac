"""Stylize the frames of an animation in order, each held to the previous result (docs/protocol.md,
"Frames"): what Krita's animated layers and GIMP's layers-as-frames use. Standard library only.

    sequence = FrameSequence(client, count, read_frame, styles, options)
    while not sequence.done:                      # an editor timer (Krita) or a loop (GIMP)
        got = sequence.poll(0.1)
        if got is None:
            continue
        if got.event.type == "progress": show(sequence.progress_text(got.event.header))
        elif got.event.type == "result": store(got.index, got.event.pixels)    # at once: Cancel keeps it
        else: ...                                  # error / cancelled: the sequence has ended

Frame k > 0 is submitted with previous_frame=(content k-1, result k-1) once frame k-1's result has been
returned by poll(), so the engine can start from the previous result carried along the motion.
"""

import time
from typing import Any, Callable, Dict, Optional, Sequence

from . import protocol as p
from .client_errors import JobFailed
from .job import Event
from .progress import fraction, progress_text


class FrameEvent:
    """One event of frame `index` (0-based) of `count`: `event` is a shared.job.Event."""

    __slots__ = ("index", "count", "event")

    def __init__(self, index: int, count: int, event: Event):
        self.index = index
        self.count = count
        self.event = event

    def __repr__(self) -> str:
        return "FrameEvent(%d/%d, %r)" % (self.index + 1, self.count, self.event)


class FrameSequence:
    """Stylize frames 0..n-1 in order; frame k > 0 is submitted with previous_frame=(content k-1, result k-1).
    Poll-driven like shared.job.Job: an editor timer (Krita) or a loop (GIMP plug-in) drives it.

    `done` turns true after the last frame's result, an error (a refused submit too: an "error" event
    with the engine's code, message and field), or a cancel; `finished` counts the delivered results.
    A lost engine raises the client's EngineLost from poll() (and the sequence is done)."""

    def __init__(self, client: Any, count: int, read_frame: Callable[[int], p.Pixels], styles: Sequence[p.StyleRef],
                 options: Optional[Dict[str, Any]] = None, mask: Optional[p.Pixels] = None):
        if count < 1:
            raise ValueError("a frame sequence needs at least one frame, got %r" % (count,))
        self.client = client
        self.count = count
        self.read_frame = read_frame       # read_frame(k) -> Pixels, called when frame k is about to be submitted
        self.styles = list(styles)
        self.options = options
        self.mask = mask
        self.done = False
        self.finished = 0
        self.job: Any = None               # the running frame's shared.job.Job
        self._content: Optional[p.Pixels] = None
        self._previous: Optional[tuple] = None     # (content, result) of the last finished frame
        self._cancelled = False
        self._started: Optional[float] = None
        self._index = 0                    # the frame to submit next (or running)
        self._shown = 0                    # the frame of the last event poll() returned

    def poll(self, timeout: float = 0.0) -> Optional[FrameEvent]:
        """The next event of the running frame within `timeout` seconds (submitting the next frame first
        when none runs), or None."""
        if self.done:
            return None
        index = self._index
        if self.job is None:
            refused = self._submit(index)
            if refused is not None:
                return refused
        try:
            event = self.job.poll(timeout)
        except Exception:
            self.done = True
            raise
        if event is None:
            return None
        self._shown = index
        if event.type == p.PROGRESS and self._started is None:
            self._started = time.monotonic() - _seconds(event.header.get("elapsed_s"))
        if event.is_final:
            self.job = None
            if event.type == p.RESULT:
                self.finished += 1
                self._previous = (self._content, event.pixels)
                self._index += 1
                self.done = self._cancelled or self._index >= self.count
            else:
                self.done = True
        return FrameEvent(index, self.count, event)

    def _submit(self, index: int) -> Optional[FrameEvent]:
        self._content = self.read_frame(index)
        try:
            self.job = self.client.submit(self._content, self.styles, self.options, mask=self.mask,
                                          previous_frame=self._previous)
        except JobFailed as refused:
            self.done = True
            header = p.error_message(refused.code, refused.message, refused.field)
            return FrameEvent(index, self.count, Event(header, None))
        except Exception:
            self.done = True
            raise
        return None

    def cancel(self) -> None:
        """Cancel the running frame; no later frame is submitted; delivered results stay. Keep polling
        until `done` for the running frame's last event ("cancelled", or its result if that was faster)."""
        self._cancelled = True
        if self.job is not None:
            self.job.cancel()
        else:
            self.done = True

    def progress_text(self, header: Dict[str, Any]) -> str:
        """'40% frame 3/12 – iteration 12/200, about 1 min 05 s left' (the time left for all the frames,
        at the pace so far) for the progress header poll() just returned."""
        index = self._shown
        done = fraction(header, index, self.count)
        if self._started is not None and done > 0 and self.count > 1:
            header = {**header, "eta_s": (time.monotonic() - self._started) * (1.0 - done) / done}
        text = progress_text(header, "frame %d/%d" % (index + 1, self.count))
        return "%d%% %s" % (int(done * 100), text)


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else 0.0
