"""`python -m engine_server stylize ... --engine [ENDPOINT]`: the same job, run by the background engine.

It gives the same image as the in-process path: the images are loaded and sized exactly as
the in-process `stylize` does, then sent as float32 frames with scale 255 (the engine's own 0..255 values,
taken and returned bit for bit); the content is sent at the working size, so the engine's
"result at the sent size" is the working size too; the alpha channel never leaves this process.
"""

import logging
import sys
import time

import numpy as np

from shared import protocol as p
from shared.client import Client, ClientError, JobFailed

from ..core.errors import EngineError, InputError
from .job_output import progress_printer, write_output

log = logging.getLogger(__name__)


def _pixels(rgb):
    """float32 0..255 RGB -> f32 Pixels with scale 255: the engine takes and returns them bit for bit."""
    values = np.ascontiguousarray(rgb, dtype="<f4")
    height, width, _ = values.shape
    return p.Pixels(width, height, 3, "f32", values.tobytes(), scale=255.0)


def _unpack(pixels):
    return np.frombuffer(pixels.data, dtype="<f4").reshape(pixels.height, pixels.width, pixels.channels)[..., :3]


def run(args):
    from ..core.images import fit_size, load_image, load_rgb, resize

    if args.init_path is not None:
        raise InputError("--init with an image file is not supported with --engine; run without --engine")
    options = dict(args.options)
    content, alpha = load_image(args.content, "content image")
    styles = [load_rgb(path, "style image") for path in args.styles]
    if args.max_size is not None:       # as in-process: --size is the output's longest side, upscaling if needed
        content = resize(content, fit_size(content.shape[:2], options["max_size"])).clip(0, 255)
    work_size = tuple(content.shape[:2])
    if max(work_size) > options["max_size"]:
        work_size = fit_size(work_size, options["max_size"])
    content = resize(content, work_size)          # what stylize() would do first
    if alpha is not None:
        alpha = resize(alpha, work_size)
    sent_options = {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}
    sent_options["preview_interval_s"] = 0.0
    sent_options["feather"] = 0
    printer, bar = progress_printer(args, sys.stderr)
    started = time.monotonic()
    client = Client(args.engine or None, weights=getattr(args, "weights", None))
    try:
        job = client.submit(_pixels(content), [p.StyleRef.pixels(_pixels(style)) for style in styles],
                            sent_options)
        final = None
        for event in job.events():
            if event.type == p.PROGRESS:
                if printer is not None:
                    printer({key: value for key, value in event.header.items()
                             if key not in ("type", "job", "preview")})
            else:
                final = event
    except JobFailed as error:
        raise EngineError(error.code, "the engine refused the job: %s" % error.message, error.field)
    except ClientError as error:
        raise EngineError("engine_unavailable", str(error))
    finally:
        if bar is not None:
            bar.close()
        client.close()
    if final is None or final.type != p.RESULT:
        header = final.header if final is not None else {}
        raise EngineError(header.get("code", "cancelled"), header.get("message", "the job was cancelled"))
    result = _unpack(final.pixels)
    write_output(args.output, result, alpha, args.bits16)
    log.info("wrote %s (%dx%d) through the engine in %.1fs", args.output, result.shape[1], result.shape[0],
             time.monotonic() - started)
    if not args.json:
        print(args.output)
    return 0
