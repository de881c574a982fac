"""`python -m engine_server stylize|batch ... --engine[=ENDPOINT]`: the same jobs, run by the background engine.

It gives the same image as the in-process path: the images are loaded and sized exactly as
the in-process `stylize` does, then sent as float32 frames with scale 255 (the engine's own 0..255 values,
taken and returned bit for bit); the content is sent at the working size, so the engine's
"result at the sent size" is the working size too; the alpha channel never leaves this process.
`lib:NAME` styles are looked up in the engine's library and sent as library references.
Previews (every PREVIEW_INTERVAL_S) are what `--save-every` and Ctrl-C write.
"""

import logging
import sys
import time

import numpy as np

from shared import protocol as p
from shared.client import Client, ClientError, JobFailed

from ..core.errors import EngineError, InputError
from .job_output import progress_printer, save_every_path, write_output
from .runner import Interrupted, ctrl_c_stops, interrupted_line

log = logging.getLogger(__name__)
PREVIEW_INTERVAL_S = 2.0


def _pixels(rgb):
    """float32 0..255 RGB -> f32 Pixels with scale 255: the engine takes and returns them bit for bit."""
    values = np.ascontiguousarray(rgb, dtype="<f4")
    height, width, _ = values.shape
    return p.Pixels(width, height, 3, "f32", values.tobytes(), scale=255.0)


def _unpack(pixels):
    return np.frombuffer(pixels.data, dtype="<f4").reshape(pixels.height, pixels.width, pixels.channels)[..., :3]


def work_content(path, options, given_size):
    """(content at the working size, alpha at it or None), exactly as the in-process path sizes them."""
    from ..core.images import fit_size, load_image, resize

    content, alpha = load_image(path, "content image")
    if given_size is not None:       # as in-process: --size is the output's longest side, upscaling if needed
        content = resize(content, fit_size(content.shape[:2], options["max_size"])).clip(0, 255)
    work_size = tuple(content.shape[:2])
    if max(work_size) > options["max_size"]:
        work_size = fit_size(work_size, options["max_size"])
    content = resize(content, work_size)          # what stylize() would do first
    if alpha is not None:
        alpha = resize(alpha, work_size)
    return content, alpha


def connect(args):
    return Client(args.engine or None, weights=getattr(args, "weights", None))


def style_refs(client, args):
    from ..core.images import load_rgb
    from .style_args import engine_styles

    return engine_styles(client, args.styles, lambda path: _pixels(load_rgb(path, "style image")))


def run_job(client, content, refs, options, printer, output, save_every=0, alpha=None, bits16=False, stop=None,
            previous=None):
    """One job on the engine -> the result (HxWx3 0..255). Saves every N iterations from the previews;
    when stop() turns true the job is cancelled, the last preview written to `output`, Interrupted raised.
    previous: None, or (content, result) of the shot's previous frame (sent as submit.previous_frame)."""
    sent_options = {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}
    sent_options["preview_interval_s"] = 0.001 if save_every else PREVIEW_INTERVAL_S
    sent_options["feather"] = 0
    previous_frame = None if previous is None else tuple(_pixels(image) for image in previous)
    try:
        job = client.submit(_pixels(content), refs, sent_options, previous_frame=previous_frame)
    except JobFailed as error:
        raise EngineError(error.code, "the engine refused the job: %s" % error.message, error.field)
    final, latest, next_save, cancelling = None, None, save_every, False
    try:
        for event in job.events():
            if stop is not None and stop() and not cancelling:
                job.cancel()
                cancelling = True
            if event.type != p.PROGRESS:
                final = event
                continue
            fields = {key: value for key, value in event.header.items() if key not in ("type", "job", "preview")}
            if event.pixels is not None:
                latest = (fields, _unpack(event.pixels))
                if save_every and fields.get("iteration", 0) >= next_save:
                    write_output(save_every_path(output, fields["iteration"]), latest[1], alpha, bits16)
                    next_save = (fields["iteration"] // save_every + 1) * save_every
            if printer is not None:
                printer(fields)
    except JobFailed as error:
        raise EngineError(error.code, "the engine refused the job: %s" % error.message, error.field)
    except ClientError as error:
        raise EngineError("engine_unavailable", str(error))
    if final is not None and final.type == p.CANCELLED and cancelling:
        if latest is None:
            raise Interrupted(None, None)
        write_output(output, latest[1], alpha, bits16)
        raise Interrupted(latest[0], output)
    if final is None or final.type != p.RESULT:
        header = final.header if final is not None else {}
        raise EngineError(header.get("code", "cancelled"), header.get("message", "the job was cancelled"))
    return _unpack(final.pixels)


def run(args):
    if args.init_path is not None:
        raise InputError("--init with an image file is not supported with --engine; run without --engine")
    content, alpha = work_content(args.content, args.options, args.max_size)
    printer, bar = progress_printer(args, sys.stderr)
    started = time.monotonic()
    client = connect(args)
    try:
        with ctrl_c_stops() as stop:
            result = run_job(client, content, style_refs(client, args), args.options, printer, args.output,
                             args.save_every, alpha, args.bits16, stop)
    except Interrupted as interrupted:
        if bar is not None:
            bar.close()
            bar = None
        print(interrupted_line(interrupted), file=sys.stderr)
        return 130
    except ClientError as error:        # the library listing for lib:NAME
        raise EngineError("engine_unavailable", str(error))
    finally:
        if bar is not None:
            bar.close()
        client.close()
    write_output(args.output, result, alpha, args.bits16)
    log.info("wrote %s (%dx%d) through the engine in %.1fs", args.output, result.shape[1], result.shape[0],
             time.monotonic() - started)
    if not args.json:
        print(args.output)
    return 0
