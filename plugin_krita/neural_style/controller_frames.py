"""The Controller's part of an animated layer (a mixin; Krita API, UI thread): one frame sequence per
animated layer, read keyframe by keyframe when the worker asks, each result written into the result
layer's keyframe at the same time as soon as it arrives (Cancel keeps every frame done)."""

import logging

from .animation import empty_copy, frames_region, keyframe_times, read_frame, write_frame
from .layers import ApplyError, is_open
from .painter import timed
from .payloads import FrameTask, LayerBytes
from .pixels import UnsupportedLayer, transfer_of, wire_format
from .shared.progress import DASH, fraction
from .shared.protocol import Pixels

log = logging.getLogger("neural_style")


class FrameJobs:
    _writing_frames = False

    def painting(self):
        """A picture is still being put into a result layer (the job's end waits for it)."""
        return self._painter.busy() or self._writing_frames

    def _frame_job(self, document, node, styles, key, job_class):
        """(FrameTask, job) for an animated paint layer, None for any other layer."""
        times = keyframe_times(document, node)
        if not times:
            return None
        wire_format(node.name(), node.colorModel(), node.colorDepth())
        selection = document.selection()
        if selection is not None and (selection.width() <= 0 or selection.height() <= 0):
            selection = None
        rect = frames_region(document, selection)
        mask = None
        if selection is not None:
            mask = Pixels(rect.width, rect.height, 1, "u8",
                          bytes(selection.pixelData(rect.x, rect.y, rect.width, rect.height)))
        layer = LayerBytes(b"", rect.width, rect.height, node.colorModel(), node.colorDepth(),
                           transfer_of(node.colorProfile()))
        job = job_class(node, None, rect)
        job.times, job.frames_done = times, 0
        return FrameTask(key, layer, len(times), mask, styles), job

    def _add_frame_results(self, document, jobs, name_of):
        """The empty animated result layers (once every layer could be read)."""
        self._frame_writes = []
        for job in jobs:
            if job.times is not None:
                job.result = empty_copy(document, job.source, name_of(job.source))

    def _on_frame_wanted(self, key, index):
        """The worker is about to submit frame `index` of job `key`: read that keyframe."""
        try:
            if self._closing or key >= len(self._jobs) or not is_open(self._document):
                raise ApplyError("The image was closed.")
            job = self._jobs[key]
            layer = read_frame(job.source, job.rect, job.times[index])
        except (ApplyError, UnsupportedLayer) as error:
            layer = str(error)
        self._worker.give_frame(key, index, layer)

    def _on_frame_event(self, key, index, count, kind, header, data, text):
        if self._closing or not self._jobs or key >= len(self._jobs):
            return
        job = self._jobs[key]
        job.started = True
        if kind == "progress":
            head = job.source.name()
            if len(self._jobs) > 1:
                head += " (%d/%d)" % (key + 1, len(self._jobs))
            self.progress.emit((key + fraction(header, index, count)) / len(self._jobs),
                               "%s %s %s" % (head, DASH, text))
        elif kind == "result" and data is not None:
            self._frame_writes.append((job, index, data))
            if not self._writing_frames:
                self._write_frames()

    def _write_frames(self):
        """Write the frames that arrived. Moving Krita to a frame's time runs Qt's event loop, so
        later events (another frame, the job's end) can arrive meanwhile: they wait for this loop."""
        self._writing_frames = True
        try:
            while self._frame_writes and not self._closing and is_open(self._document):
                job, index, data = self._frame_writes.pop(0)
                document = self._document
                with timed("writing frame %d" % job.times[index]):
                    written = write_frame(document, job.result, job.times[index], job.rect, data,
                                          lambda: not self._closing and self._document is document)
                if not written:
                    log.warning("frame %d of %s could not be written", job.times[index], job.source.name())
                    continue
                job.frames_done += 1
                job.painted = True
                job.final = job.frames_done == len(job.times)
                self.layer_painted.emit(job.result, job.final)
        finally:
            self._writing_frames = False
            self._frame_writes = []
        if self._finish is not None and not self._painter.busy():
            self._finish_batch(*self._finish)
