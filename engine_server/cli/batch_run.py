"""The work of `batch` (planned in batch.py): items one after another, in this process (one model,
the style's Grams kept for the whole run) or on a running engine (`--engine`)."""

import logging
import os
import sys
import time

from shared.progress import fraction

from ..core.errors import Cancelled, EngineError, InputError
from .batch import frame_path, output_path
from .job_output import json_event, progress_printer, write_output
from .runner import Interrupted, JobWatch, ctrl_c_stops, interrupted_line

log = logging.getLogger(__name__)
EXIT_INTERRUPTED = 130


class Item:
    """One picture to make: its content (HxWx3 0..255 at the working size), alpha, where it goes."""

    def __init__(self, name, content, alpha, output):
        self.name, self.content, self.alpha, self.output = name, content, alpha, output


class Batch:
    def __init__(self, args, options, init_path, units, report):
        self.args, self.options, self.init_path, self.units, self.report = args, options, init_path, units, report
        args.styles = [args.style]
        self.total = sum(unit.count for unit in units)
        self.index = 0
        self.written = 0
        printer, self.bar = progress_printer(args, sys.stderr)
        self.task = ("", 0, 1)
        self.clock = time.monotonic
        self.started = None            # at the first iteration: the model's loading is not the batch's pace
        if printer is json_event:
            self.printer = lambda fields: json_event({**fields, "name": self.task[0], "task": self.task[1],
                                                      "tasks": self.task[2]})
        else:
            self.printer = None if printer is None else lambda fields: printer(self.batch_eta(fields))

    def batch_eta(self, fields):
        """The picture's progress, with the time left for the whole batch (at the speed so far)."""
        if self.started is None:
            self.started = self.clock() - float(fields.get("elapsed_s", 0.0))
        done = fraction(fields, self.task[1], self.task[2])
        if self.task[2] <= 1 or done <= 0:
            return fields
        elapsed = self.clock() - self.started
        return {**fields, "eta_s": elapsed * (1.0 - done) / done}

    # ---------------------------------------------------------------- inputs

    def sized(self, path, what):
        from ..core.images import fit_size, load_image, resize

        content, alpha = load_image(path, what)
        original = content.shape[:2]
        if self.args.max_size is not None:
            content = resize(content, fit_size(original, self.options["max_size"])).clip(0, 255)
        if max(content.shape[:2]) > self.options["max_size"]:
            content = resize(content, fit_size(content.shape[:2], self.options["max_size"])).clip(0, 255)
        if alpha is not None:
            alpha = resize(alpha, content.shape[:2])
        return content, alpha, original

    def items(self, unit):
        """Item after Item; a frame of another size stops the shot with an InputError naming it."""
        from ..core.images import fit_size, resize

        if unit.kind == "video":
            from ..core.video import VideoReader

            first = None
            for number, frame in enumerate(VideoReader(unit.source), 1):
                if first is None:
                    first = frame.shape[:2]
                size = fit_size(first, self.options["max_size"]) if (
                    self.args.max_size is not None or max(first) > self.options["max_size"]) else first
                yield Item("%s_%0*d" % (unit.name, 5, number),
                           resize(frame, size).clip(0, 255) if size != first else frame, None,
                           frame_path(self.args.outdir, unit.name, number))
            return
        first = None
        for path in unit.paths:
            content, alpha, original = self.sized(path, "frame" if unit.kind == "frames" else "image")
            if unit.kind == "frames":
                if first is None:
                    first = (original, path)
                elif original != first[0]:
                    raise InputError("frame %s is %dx%d, but the shot's frames are %dx%d (like %s); the shot stops "
                                     "here" % (path, original[1], original[0], first[0][1], first[0][0], first[1]))
            yield Item(os.path.splitext(os.path.basename(path))[0], content, alpha,
                       output_path(self.args.outdir, path))

    # ---------------------------------------------------------------- running

    def run(self):
        args = self.args
        started = time.monotonic()
        try:
            with ctrl_c_stops() as stop:
                self.stop = stop
                if args.engine is not None:
                    self._run_remote()
                else:
                    self._run_local()
        except Interrupted as interrupted:
            self._close_bar()
            print(interrupted_line(interrupted) + "; %d earlier output(s) are in %s" % (self.written, args.outdir),
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            self._close_bar()
        log.info("batch: %d outputs in %s in %.1fs", self.written, args.outdir, time.monotonic() - started)
        return 0

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _each_unit(self, make):
        """make(unit) for every unit; an input error ends that unit only (what it wrote is kept)."""
        for unit in self.units:
            try:
                make(unit)
            except InputError as error:
                self._close_line()
                self.report(error.message)

    def _close_line(self):
        if self.bar is not None and hasattr(self.bar, "WIDTH"):
            self.bar.stream.write("\n")

    def _begin(self, item):
        self.index += 1
        self.task = (item.name, self.index - 1, max(self.total, self.index))
        if self.bar is not None:
            self.bar.task = self.task

    def _wrote(self, item, result, writer):
        write_output(item.output, result, item.alpha, self.args.bits16)
        if writer is not None:
            writer.write(result)
        self.written += 1
        self._announce(item.output)

    def _announce(self, path):
        """A written file: its path on stdout, or with --json {"written": path, "name", "task", "tasks"}."""
        if self.args.json:
            json_event({"written": path, "name": self.task[0], "task": self.task[1], "tasks": self.task[2]})
        else:
            self._close_line()
            print(path, flush=True)

    def _video_writer(self, unit, result, writer):
        if unit.kind != "video" or writer is not None:
            return writer
        from ..core.video import VideoWriter

        return VideoWriter(os.path.join(self.args.outdir, unit.name + ".mp4"), unit.fps, result.shape[:2])

    def _finish_video(self, unit, writer):
        if writer is not None:
            writer.close()
            self._announce(writer.path)

    # ---------------------------------------------------------------- in this process

    def _run_local(self):
        from .style_args import LocalStyles
        from .stylize import _load_model

        styles = LocalStyles(self.args.styles, self.args.library)
        init_image = None
        if self.init_path is not None:
            from ..core.images import load_rgb
            init_image = load_rgb(self.init_path, "--init image")
        model = _load_model(self.args)
        try:
            self._each_unit(lambda unit: self._local_unit(model, styles, unit, init_image))
        finally:
            styles.gram_cache.flush()

    def _local_unit(self, model, styles, unit, init_image):
        from ..core.images import resize
        from ..core.stylize import stylize
        from ..core.temporal import FRAME_RUN, Sequence

        sequence = Sequence(self.options["temporal_weight"], self.options) \
            if self.args.frames and unit.kind != "image" else None
        writer = None
        try:
            for item in self.items(unit):
                self._begin(item)
                options, init, extra = self.options, init_image, None
                if sequence is not None:
                    warped, extra = sequence.prepare(item.content)
                    if warped is not None:
                        init, options = warped, {**options, **FRAME_RUN}
                        if self.args.frame_iterations is not None:
                            options["iterations"] = self.args.frame_iterations
                size = item.content.shape[:2]
                watch = JobWatch(self.printer, item.output, self.args.save_every, item.alpha, self.args.bits16,
                                 finish=lambda image, size=size: resize(image, size).clip(0, 255))
                try:
                    result = stylize(model, item.content, styles.inputs, options, on_progress=watch,
                                     should_cancel=self.stop, gram_cache=styles.gram_cache, init_image=init,
                                     extra_loss=extra)
                except Cancelled:
                    raise watch.keep_so_far()
                if sequence is not None:
                    sequence.done(result)
                writer = self._video_writer(unit, result, writer)
                self._wrote(item, result, writer)
        finally:
            self._finish_video(unit, writer)

    # ---------------------------------------------------------------- on a running engine

    def _run_remote(self):
        from shared.client import ClientError

        from . import remote

        client = remote.connect(self.args)
        try:
            refs = remote.style_refs(client, self.args)
            self._each_unit(lambda unit: self._remote_unit(client, refs, unit))
        except ClientError as error:
            raise EngineError("engine_unavailable", str(error))
        finally:
            client.close()

    def _remote_unit(self, client, refs, unit):
        """Every picture one job; with --frames, frame k > 0 is sent with the previous frame's content and
        result (submit.previous_frame), and the engine runs it as _local_unit does (core/temporal.py)."""
        from . import remote

        writer, previous = None, None
        shot = self.args.frames and unit.kind != "image"
        try:
            for item in self.items(unit):
                self._begin(item)
                options = self.options
                if previous is not None and self.args.frame_iterations is not None:
                    options = {**options, "iterations": self.args.frame_iterations}
                result = remote.run_job(client, item.content, refs, options, self.printer, item.output,
                                        self.args.save_every, item.alpha, self.args.bits16, self.stop, previous)
                if shot:
                    previous = (item.content, result)
                writer = self._video_writer(unit, result, writer)
                self._wrote(item, result, writer)
        finally:
            self._finish_video(unit, writer)
