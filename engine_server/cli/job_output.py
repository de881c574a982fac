"""What `stylize` writes: progress on stderr (the words of shared/progress.py) or JSON lines on
stdout, and the output file. Progress comes as the protocol's progress fields, whether the job runs
in this process (core Progress.fields()) or in the background engine (its progress headers)."""

import json
import os
import time

from shared.progress import fraction, progress_text

from ..core.errors import InputError


def check_output(path, bits16):
    """Refuse an output that could not be written, before any work is done."""
    extension = os.path.splitext(path)[1].lower()
    if bits16 and extension != ".png":
        raise InputError("--16bit needs a .png output file, got %s" % path)
    if extension not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"):
        raise InputError("output file %s must end in .png, .jpg, .tif, .webp or .bmp" % path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("output folder %s does not exist" % folder)


def write_output(path, rgb, alpha, bits16):
    from ..core.images import save_image, save_png

    if bits16:
        save_png(path, rgb, alpha, bits=16)
    else:
        save_image(path, rgb, alpha)


def save_every_path(output, iteration):
    """Where `--save-every` writes the image at `iteration`: out.png -> out_iter40.png."""
    stem, extension = os.path.splitext(output)
    return "%s_iter%d%s" % (stem, iteration, extension)


class ProgressBar:
    """A one-line bar on a terminal: '[#####.....] scale 2/3, iteration 40/200, about 12 s left  loss 1.2e+08'.
    `task` = (name, index, count) when a batch runs several jobs ('photo (2/5) – scale ...')."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream
        self.task = ("", 0, 1)

    def __call__(self, fields):
        name, index, count = self.task
        done = int(self.WIDTH * fraction(fields, index, count))
        self.stream.write("\r[%s%s] %s  loss %.4g \x1b[K" % ("#" * done, "." * (self.WIDTH - done),
                                                             progress_text(fields, name, index, count),
                                                             fields.get("total_loss", 0.0)))
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


class ProgressLines:
    """stderr is not a terminal (a log, nohup, a launcher): one whole line every `interval` seconds,
    '37% photo (2/5) – scale 2/3, iteration 40/200, about 12 s left', and one for the last iteration."""

    INTERVAL_S = 5.0

    def __init__(self, stream, interval=None, clock=time.monotonic):
        self.stream, self.clock = stream, clock
        self.interval = self.INTERVAL_S if interval is None else interval
        self.task = ("", 0, 1)
        self._last = None

    def __call__(self, fields):
        now = self.clock()
        final = fields.get("iteration") == fields.get("iterations")
        if self._last is not None and now - self._last < self.interval and not final:
            return
        self._last = now
        name, index, count = self.task
        self.stream.write("%3d%% %s\n" % (int(100 * fraction(fields, index, count)),
                                          progress_text(fields, name, index, count)))
        self.stream.flush()

    def close(self):
        pass


def json_event(fields):
    """One JSON line per progress event on stdout (`--json`)."""
    print(json.dumps(fields), flush=True)


def progress_printer(args, stream):
    """(callable(fields) or None, bar or None) for this command line."""
    if args.json:
        return json_event, None
    bar = ProgressBar(stream) if stream.isatty() else ProgressLines(stream)
    return bar, bar
