"""What `stylize` writes: progress on stderr (the words of shared/progress.py) or JSON lines on
stdout, and the output file. Progress comes as the protocol's progress fields, whether the job runs
in this process (core Progress.fields()) or in the background engine (its progress headers)."""

import json
import os

from shared.progress import details, fraction

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


class ProgressBar:
    """A one-line bar on a terminal: '[#####.....] scale 2/3, iteration 40/200, about 12 s left  loss 1.2e+08'."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, fields):
        done = int(self.WIDTH * fraction(fields))
        self.stream.write("\r[%s%s] %s  loss %.4g " % ("#" * done, "." * (self.WIDTH - done), details(fields),
                                                       fields.get("total_loss", 0.0)))
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def json_event(fields):
    """One JSON line per progress event on stdout (`--json`)."""
    print(json.dumps(fields), flush=True)


def progress_printer(args, stream):
    """(callable(fields) or None, bar or None) for this command line."""
    if args.json:
        return json_event, None
    bar = ProgressBar(stream) if stream.isatty() else None
    return bar, bar
