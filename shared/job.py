"""A submitted job as its client sees it: its events (progress, result, error, cancelled) and cancel."""

import collections
import threading
import time
from typing import Any, Dict, List, Optional

from . import protocol as p
from .client_errors import EngineLost, ProtocolMismatch


class Event:
    """One job event: `type` ("progress" | "result" | "error" | "cancelled"), `header`, `pixels`."""

    __slots__ = ("type", "header", "pixels")

    def __init__(self, header: Dict[str, Any], pixels: Optional[p.Pixels]):
        self.type = header.get("type")
        self.header = header
        self.pixels = pixels

    @property
    def is_final(self) -> bool:
        return self.type in p.JOB_END_TYPES

    def __repr__(self) -> str:
        return "Event(%s, %r)" % (self.type, self.pixels)


def pixels_from(desc: Any, frames: List[bytes]) -> Optional[p.Pixels]:
    if not isinstance(desc, dict):
        return None
    index = desc.get("frame")
    if not isinstance(index, int) or not 0 < index < len(frames):
        raise ProtocolMismatch("the engine sent a pixel descriptor for a frame it did not send")
    pixels = p.Pixels(desc["width"], desc["height"], desc["channels"], desc["dtype"], frames[index],
                      desc.get("transfer", "srgb"), desc.get("scale", 1.0))
    if len(pixels.data) != pixels.expected_bytes:
        raise ProtocolMismatch("the engine sent %d bytes for %r" % (len(pixels.data), pixels))
    return pixels


class Job:
    """A submitted job. Iterate `events()`; `cancel()` from any thread."""

    def __init__(self, client: Any):     # the Client that submitted it
        self._client = client
        self.id: Any = None
        self.queue_position: Optional[int] = None
        self._events: collections.deque = collections.deque()
        self._cancel_wanted = threading.Event()
        self._cancel_sent = False
        self.done = False
        self.final: Optional[Event] = None
        self._lost = ""                   # why the connection ended before this job did

    def events(self):
        """Yield progress events, then the final result, error or cancelled event (and stop); EngineLost
        if the engine went away first."""
        while True:
            event = self.poll(timeout=0.25)
            if event is not None:
                yield event
                if event.is_final:
                    return
            elif self.done:
                return

    def poll(self, timeout: float = 0.0) -> Optional[Event]:
        """The next event if one arrives within `timeout` seconds, else None (keeps heartbeats going)."""
        if self._events:
            return self._take()
        if self.done:
            if self._lost and self.final is None:
                raise EngineLost(self._lost)
            return None
        with self._client._lock:
            self._client._wait(lambda: bool(self._events), timeout)
        return self._take() if self._events else None

    def wait(self, timeout: Optional[float] = None) -> Event:
        """Consume events until the final one and return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("job %s did not end within %g s" % (self.id, timeout))
            event = self.poll(0.25)
            if event is not None and event.is_final:
                return event
        if self.final is None:
            raise EngineLost(self._lost or "the connection to the engine was closed before job %s ended" % (self.id,))
        return self.final

    def cancel(self) -> None:
        """Ask the engine to cancel; `events()` then ends with "cancelled" (or the result, if it was faster)."""
        self._cancel_wanted.set()
        self._client._try_send_cancels()

    def _take(self) -> Event:
        event = self._events.popleft()
        if event.is_final:
            self.done = True
            self.final = event
        return event

    def __repr__(self) -> str:
        return "Job(%r)" % (self.id,)
