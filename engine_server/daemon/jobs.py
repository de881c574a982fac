"""Jobs: a bounded queue (previews first, then normal jobs in order) and the one worker thread that
owns the device.

The server's I/O thread puts and cancels jobs; the worker takes them and runs each through a
`run_job(job, emit)` callable (job_runner.StylizeRunner in the engine). Everything a job sends goes
through `emit(job, header, frames)`, which must be thread-safe. A running normal job calls
`job.should_cancel()` between iterations (and between tiles): that is where a waiting preview runs,
on the same thread, while the normal job is paused; then the normal job goes on.
"""

import collections
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from shared import protocol as p

from ..core.errors import Cancelled, EngineError

log = logging.getLogger(__name__)


WARM_UP_AFTER_S = 1.0      # the warm-up starts after this long with no job and no client


class QueueFull(Exception):
    pass


class Job:
    def __init__(self, job_id: int, client: bytes, request: Any):
        self.id = job_id
        self.client = client                  # the ROUTER identity of the client that submitted it
        self.request = request                # a protocol.SubmitRequest
        self.state = "queued"                 # queued -> running (<-> paused) -> done
        self.priority = getattr(request, "priority", p.NORMAL)
        self.cancel_event = threading.Event()
        self.cancel_reason = p.CANCELLED      # or SUPERSEDED / E_CLIENT_GONE / E_SHUTTING_DOWN
        self.should_cancel: Callable[[], bool] = self.cancel_event.is_set
        self.submitted = time.monotonic()
        self.started: Optional[float] = None
        self.progress: Dict[str, Any] = {}
        self.nbytes = request_bytes(request)

    def __repr__(self) -> str:
        return "Job(%d, %s)" % (self.id, self.state)


def request_bytes(request: Any) -> int:
    """The pixel bytes a submit holds while it waits (image, mask, inline styles, previous frame)."""
    if request is None:
        return 0
    buffers = [request.image, request.mask] + [style.image for style in request.styles]
    buffers += list(getattr(request, "previous_frame", None) or ())
    return sum(len(pixels.data) for pixels in buffers if pixels is not None)


class JobQueue:
    """Waiting previews and normal jobs (each FIFO), the running job and the paused ones under it;
    all methods are thread-safe."""

    def __init__(self, max_queue: int, max_bytes: int = 1 << 62):
        self.max_queue = max_queue
        self.max_bytes = max_bytes      # pixel bytes all waiting jobs may hold together
        self._cond = threading.Condition()
        self._previews: collections.deque = collections.deque()
        self._waiting: collections.deque = collections.deque()
        self.running: Optional[Job] = None
        self.paused: List[Job] = []     # normal jobs a preview runs ahead of, innermost last
        self._stopped = False

    def _line(self, job: Job) -> collections.deque:
        return self._previews if job.priority == p.PREVIEW else self._waiting

    def put(self, job: Job) -> int:
        """Queue a job; returns how many jobs are ahead of it (0 = it starts now). QueueFull when full."""
        with self._cond:
            if self._stopped:
                raise QueueFull("the engine is shutting down")
            waiting = list(self._previews) + list(self._waiting)
            if len(waiting) >= self.max_queue:
                raise QueueFull("the queue is full (%d jobs waiting); try again when one has finished"
                                % len(waiting))
            waiting_bytes = sum(other.nbytes for other in waiting)
            if waiting and waiting_bytes + job.nbytes > self.max_bytes:
                raise QueueFull("the queue is full (the %d waiting jobs hold %d MiB of pixels, the limit is %d MiB); "
                                "try again when one has finished"
                                % (len(waiting), waiting_bytes >> 20, self.max_bytes >> 20))
            if job.priority == p.PREVIEW:    # a running normal job is paused for it, a running preview is not
                ahead = len(self._previews) + (1 if self.running is not None and self.running.priority == p.PREVIEW
                                               else 0)
            else:
                ahead = len(waiting) + (1 if self.running is not None else 0) + len(self.paused)
            self._line(job).append(job)
            self._cond.notify()
            return ahead

    def take(self) -> Optional[Job]:
        """Block until a job is waiting (-> it, now running) or the queue is stopped (-> None)."""
        with self._cond:
            while not self._previews and not self._waiting and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            return self._start((self._previews or self._waiting).popleft())

    def take_preview(self) -> Optional[Job]:
        """A waiting preview (-> it, now running; the running job is paused under it), or None."""
        with self._cond:
            if not self._previews or self._stopped or self.running is None:
                return None
            self.running.state = "paused"
            self.paused.append(self.running)
            return self._start(self._previews.popleft())

    def _start(self, job: Job) -> Job:
        job.state = "running"
        job.started = time.monotonic()
        self.running = job
        return job

    def finish(self, job: Job) -> None:
        with self._cond:
            job.state = "done"
            if self.running is job:
                self.running = self.paused.pop() if self.paused else None
                if self.running is not None:
                    self.running.state = "running"

    def idle(self) -> bool:
        with self._cond:
            return self.running is None and not self._previews and not self._waiting

    def wanted(self, timeout: float = 0.0) -> bool:
        """True once a job waits or the queue is stopped (waiting up to `timeout` s for it): what the
        warm-up gives way to."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: self._previews or self._waiting or self._stopped, timeout))

    def cancel(self, job: Job, reason: str = p.CANCELLED) -> str:
        """'queued' (removed: the caller reports it), 'running' (the worker reports it) or 'done'."""
        with self._cond:
            line = self._line(job)
            if job in line:
                line.remove(job)
                job.state = "done"
                job.cancel_reason = reason
                return "queued"
            if job.state in ("running", "paused"):
                job.cancel_reason = reason
                job.cancel_event.set()
                return "running"
            return "done"

    def stop(self) -> List[Job]:
        """Stop taking jobs; returns the waiting ones (removed) and flags the running one."""
        with self._cond:
            self._stopped = True
            waiting = list(self._previews) + list(self._waiting)
            self._previews.clear()
            self._waiting.clear()
            for job in waiting:
                job.state = "done"
            for job in self.started_jobs():
                job.cancel_reason = p.E_SHUTTING_DOWN
                job.cancel_event.set()
            self._cond.notify_all()
            return waiting

    def started_jobs(self) -> List[Job]:
        """The running job and the paused ones."""
        with self._cond:
            return self.paused + ([self.running] if self.running is not None else [])

    def snapshot(self) -> Dict[str, Any]:
        with self._cond:
            return {"running": self.running, "waiting": list(self._previews) + list(self._waiting),
                    "paused": list(self.paused)}


class Worker(threading.Thread):
    """Takes jobs in order and runs them; turns every outcome into exactly one final message.

    Before the first job it runs `run_job.warm_up(should_stop)` when there is one (a short job of
    its own, so the first preview does not pay for tracing): once the engine has had no job and no
    client (`has_clients()`) for WARM_UP_AFTER_S, and only until a job or a client comes."""

    def __init__(self, queue: JobQueue, run_job: Callable, emit: Callable, log_path: str = "",
                 has_clients: Callable[[], bool] = lambda: False):
        super().__init__(name="neural-style-worker", daemon=True)
        self.queue = queue
        self.run_job = run_job
        self._send = emit
        self.log_path = log_path
        self.warm_up = getattr(run_job, "warm_up", None)
        self.has_clients = has_clients

    def emit(self, job: Job, header: Dict[str, Any], frames: Any = ()) -> None:
        """Send a job's message; a final one only after the job is finished in the queue, so a client
        that asks for the status on its final message never finds the job still running."""
        if header.get("type") in p.JOB_END_TYPES:
            self.queue.finish(job)
        self._send(job, header, frames)

    def run(self) -> None:
        if self.warm_up is not None and self._quiet():
            try:
                self.warm_up(lambda: self.queue.wanted() or self.has_clients())
            except Exception:     # only ever costs the first job its speed
                log.exception("the warm-up failed")
        while True:
            job = self.queue.take()
            if job is None:
                return
            self._run_and_finish(job)

    def _quiet(self) -> bool:
        """Wait until the engine has had no job and no client for WARM_UP_AFTER_S (True), or until a
        job comes or the engine stops (False: the job traces for itself). On a loaded machine the
        warm-up's passes can keep the I/O loop from answering for seconds, and a client with no job
        takes that for a stopped engine; so it runs only while nobody is connected."""
        quiet_since = time.monotonic()
        while not self.queue.wanted(0.1):
            if self.has_clients():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= WARM_UP_AFTER_S:
                return True
        return False

    def _run_and_finish(self, job: Job) -> None:
        if job.priority != p.PREVIEW:
            job.should_cancel = lambda: self._checkpoint(job)
        try:
            self._run(job)
        finally:
            self.queue.finish(job)

    def _checkpoint(self, job: Job) -> bool:
        """Between a normal job's iterations (and tiles): run the waiting previews, then go on."""
        while not job.cancel_event.is_set():
            preview = self.queue.take_preview()
            if preview is None:
                break
            log.info("job %d paused for preview job %d", job.id, preview.id)
            self._run_and_finish(preview)
            log.info("job %d resumed", job.id)
        return job.cancel_event.is_set()

    def _run(self, job: Job) -> None:
        log.info("job %d started (waited %.2f s)", job.id, job.started - job.submitted)
        try:
            self.run_job(job, self.emit)
            log.info("job %d finished in %.2f s", job.id, time.monotonic() - job.started)
        except Cancelled:
            log.info("job %d cancelled (%s) after %.2f s", job.id, job.cancel_reason, time.monotonic() - job.started)
            self.emit_end(job)
        except (EngineError, p.ProtocolError) as error:
            log.info("job %d failed: %s: %s", job.id, error.code, error.message)
            self.emit(job, p.error_message(error.code, error.message, error.field, job=job.id), ())
        except MemoryError:
            log.error("job %d ran out of memory", job.id)
            self.emit(job, p.error_message("out_of_memory", "the engine ran out of memory for this job; "
                                           "try a smaller max_size or a smaller layer", job=job.id), ())
        except Exception as error:  # never let one job take the worker down
            log.exception("job %d failed unexpectedly", job.id)
            self.emit(job, p.error_message(p.E_INTERNAL, "the job failed unexpectedly (%s: %s); details are in %s"
                                           % (type(error).__name__, str(error)[:200], self.log_path or "the engine log"),
                                           job=job.id), ())

    def emit_end(self, job: Job) -> None:
        """The final message of a job that was stopped: cancelled, or an error saying why."""
        self.emit(job, end_message(job), ())


def shutdown_message(job: Job) -> Dict[str, Any]:
    """The last message of a job the engine stopped because it is shutting down."""
    return p.error_message(p.E_SHUTTING_DOWN, "the engine is shutting down; the job was stopped", job=job.id)


def end_message(job: Job) -> Dict[str, Any]:
    """The last message of a job that was stopped before its result."""
    if job.cancel_reason == p.E_SHUTTING_DOWN:
        return shutdown_message(job)
    return p.message(p.CANCELLED, job=job.id, reason=job.cancel_reason)
