"""One in-process job as the command line runs it: progress to the printer, `--save-every N`,
and Ctrl-C that stops between iterations and keeps the image so far.

The first Ctrl-C asks the core to stop (should_cancel) and the image of the last iteration is
kept (the core raises Cancelled without an image; Progress.image() of the last progress is it);
a second Ctrl-C interrupts at once.
"""

import contextlib
import signal
import threading

from .job_output import save_every_path, write_output


class Interrupted(Exception):
    """Ctrl-C stopped a job; `fields` is its last progress (or None), `saved` where its image went."""

    def __init__(self, fields=None, saved=None):
        super().__init__("interrupted")
        self.fields, self.saved = fields, saved


class StopFlag:
    def __init__(self):
        self.raised = False

    def __call__(self):
        return self.raised


@contextlib.contextmanager
def ctrl_c_stops():
    """A StopFlag that the first Ctrl-C raises (only the main thread can catch signals)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.raised = True
        signal.signal(signal.SIGINT, signal.default_int_handler)   # a second Ctrl-C interrupts at once

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class JobWatch:
    """The on_progress of one in-process job: prints, saves every N iterations, remembers the last image."""

    def __init__(self, printer, output, save_every=0, alpha=None, bits16=False, finish=None):
        self.printer, self.output, self.save_every = printer, output, int(save_every or 0)
        self.alpha, self.bits16 = alpha, bits16
        self.finish = finish or (lambda image: image)     # the working image -> the picture that is written
        self.last = None
        self.saved = []

    def __call__(self, progress):
        self.last = progress
        if self.printer is not None:
            self.printer(progress.fields())
        if self.save_every and progress.iteration % self.save_every == 0:
            path = save_every_path(self.output, progress.iteration)
            self.write(path, progress.image())
            self.saved.append(path)

    def write(self, path, image):
        from ..core.images import resize

        image = self.finish(image)
        alpha = self.alpha
        if alpha is not None and alpha.shape[:2] != image.shape[:2]:
            alpha = resize(alpha, image.shape[:2])
        write_output(path, image, alpha, self.bits16)

    def keep_so_far(self):
        """After Ctrl-C: write the last iteration's image to the output; Interrupted says where."""
        if self.last is None:
            return Interrupted(None, None)
        self.write(self.output, self.last.image())
        return Interrupted(self.last.fields(), self.output)


def interrupted_line(error):
    """'interrupted at iteration 40/200; the image so far is in out.png' (or that nothing was kept)."""
    if error.saved is None:
        return "interrupted before the first iteration; nothing was written"
    fields = error.fields or {}
    return "interrupted at iteration %s/%s; the image so far is in %s" % (
        fields.get("iteration", "?"), fields.get("iterations", "?"), error.saved)
