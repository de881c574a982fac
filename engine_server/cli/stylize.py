"""`python -m engine_server stylize ...` and `python -m engine_server losses ...`.

The option flags are built from shared/options.py (one table for CLI, protocol and plugins);
`--size` is the CLI's name for max_size. TensorFlow is imported only after the command line and
the image files have been checked, so those errors come back at once.
"""

import argparse
import json
import logging
import os
import sys
import time

from shared.options import FRAME_OPTIONS, OPTIONS, OPTIONS_BY_NAME

from ..core.errors import InputError
from .job_output import check_output, progress_printer, write_output
from .option_flags import LOSS_OPTIONS, add_option_flags, collect_options

EXIT_INTERRUPTED = 130
IMAGE_OR_VIDEO = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".mp4", ".mov", ".avi", ".mkv")

log = logging.getLogger(__name__)

def _load_images(args):
    from ..core.images import load_image, load_rgb

    content, alpha = load_image(args.content, "content image")
    styles = [load_rgb(path, "style image") for path in args.styles]
    return content, alpha, styles


def _load_model(args):
    from ..core.weights import check_weights_file, find_weights

    check_weights_file(find_weights(args.weights))    # a missing file is reported before TensorFlow loads
    from ..core.model import VGG19Features

    return VGG19Features.load(args.weights, precision=args.precision)


# ---------------------------------------------------------------- stylize

def stylize_options(args):
    """(validated options, --init image path or None) from the command line, as stylize and batch take them."""
    names = [option.name for option in OPTIONS if option.name != "init"]
    options = collect_options(args, names)
    init_path = None
    if args.init is not None and args.init not in ("content", "noise"):
        init_path = args.init
    elif args.init is not None:
        options["init"] = args.init
    if args.save_every is not None and args.save_every < 1:
        raise InputError("--save-every must be a positive number of iterations, got %d" % args.save_every)
    return options, init_path


class EngineFlag(argparse.Action):
    """`--engine photo.jpg style.jpg -o o.png` would take the photo as the endpoint: say how to write it."""

    def __call__(self, parser, namespace, value, option_string=None):
        if value and os.path.splitext(value)[1].lower() in IMAGE_OR_VIDEO and "://" not in value:
            parser.error("--engine took %s as the engine's endpoint; write --engine=ENDPOINT, or put a bare "
                         "--engine after the files" % value)
        setattr(namespace, self.dest, value)


def run_stylize(args):
    options, init_path = stylize_options(args)
    check_output(args.output, args.bits16)
    args.options, args.init_path = options, init_path
    if args.engine is not None:
        from . import remote
        return remote.run(args)

    from ..core.images import fit_size, load_image, resize

    content, alpha = load_image(args.content, "content image")
    from .style_args import LocalStyles

    styles = LocalStyles(args.styles, args.library)
    init_image = None
    if init_path is not None:
        from ..core.images import load_rgb
        init_image = load_rgb(init_path, "--init image")
    if args.max_size is not None:       # --size: the output's longest side, upscaling if needed
        target = fit_size(content.shape[:2], options["max_size"])
        content = resize(content, target).clip(0, 255)
    work_size = content.shape[:2] if max(content.shape[:2]) <= options["max_size"] \
        else fit_size(content.shape[:2], options["max_size"])
    model = _load_model(args)
    from ..core.errors import Cancelled
    from ..core.stylize import stylize
    from .runner import JobWatch, ctrl_c_stops, interrupted_line

    log.info("stylize %s with %s -> %s; options %s", args.content, args.styles, args.output, options)
    printer, bar = progress_printer(args, sys.stderr)
    watch = JobWatch(printer, args.output, args.save_every, alpha, args.bits16,
                     finish=lambda image: resize(image, work_size).clip(0, 255))
    started = time.monotonic()
    try:
        with ctrl_c_stops() as stop:
            result = stylize(model, content, styles.inputs, options, on_progress=watch, should_cancel=stop,
                             init_image=init_image, gram_cache=styles.gram_cache)
    except Cancelled:
        if bar is not None:
            bar.close()
            bar = None
        print(interrupted_line(watch.keep_so_far()), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
        styles.gram_cache.flush()
    if alpha is not None:
        alpha = resize(alpha, result.shape[:2])
    write_output(args.output, result, alpha, args.bits16)
    log.info("wrote %s (%dx%d) in %.1fs", args.output, result.shape[1], result.shape[0], time.monotonic() - started)
    if not args.json:
        print(args.output)
    return 0


# ---------------------------------------------------------------- losses

def run_losses(args):
    names = list(LOSS_OPTIONS) + ["max_size"]
    options = collect_options(args, names)
    from ..core.images import fit_size, load_rgb, resize

    content, _, styles = _load_images(args)
    candidate = load_rgb(args.image, "candidate image")
    if args.max_size is not None:
        size = options["max_size"]
        candidate = resize(candidate, fit_size(candidate.shape[:2], size)).clip(0, 255)
        styles = [resize(s, fit_size(s.shape[:2], size * options["style_scale"])).clip(0, 255) for s in styles]
    model = _load_model(args)
    from ..core.stylize import StyleInput, losses

    parts = losses(model, content, [StyleInput(style) for style in styles], candidate, options)
    from ..core.model import layer_names
    as_given = lambda by_keras: {name: by_keras[layer_names([name])[0]] for name in options["style_layers"]}
    weighted = parts["weighted"]
    result = {"content_loss": parts["content_loss"], "style_loss": parts["style_loss"],
              "style_layers": as_given(parts["style_layers"]), "tv_loss": parts["tv_loss"],
              "total_loss": parts["total_loss"], "loss_normalization": options["loss_normalization"],
              "weighted": {"content": weighted["content"], "style": as_given(weighted["style"]),
                           "tv": weighted["tv"]}}
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("content_loss", "style_loss", "tv_loss", "total_loss"):
            print("%-13s %.6g" % (key, result[key]))
        for name, value in result["style_layers"].items():
            print("  E(%s) %.6g  weighted %.6g" % (name, value, result["weighted"]["style"][name]))
        print("weighted: content %.6g, style %.6g, tv %.6g (%s normalization)" % (
            result["weighted"]["content"], sum(result["weighted"]["style"].values()), result["weighted"]["tv"],
            options["loss_normalization"]))
    return 0


# ---------------------------------------------------------------- registration

def add_stylize_flags(parser):
    """The flags `stylize` and `batch` share."""
    parser.add_argument("--weights", metavar="PATH", default=None,
                        help="VGG-19 notop weights (.h5); default: $NEURAL_STYLE_WEIGHTS, then the installer's copy")
    add_option_flags(parser, [option.name for option in OPTIONS if option.name != "init"
                              and option.name not in FRAME_OPTIONS])     # batch has its own --temporal-weight
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="what the convolutions compute in; auto: bfloat16 where the hardware has it "
                             "natively, else float32 (docs/engine.md)")
    parser.add_argument("--init", default=None, metavar="content|noise|PATH",
                        help="starting image: the content (default), seeded noise, or an image file")
    parser.add_argument("--16bit", dest="bits16", action="store_true", help="write 16-bit PNGs")
    parser.add_argument("--json", action="store_true",
                        help="write one JSON object per progress event on stdout")
    parser.add_argument("--save-every", type=int, default=None, metavar="N",
                        help="also write the image every N iterations (OUT_iterN.png beside the output)")
    parser.add_argument("--library", metavar="DIR", default=None,
                        help="style library folder for lib:NAME (default: the per-user one)")
    parser.add_argument("--engine", nargs="?", const="", default=None, metavar="ENDPOINT", action=EngineFlag,
                        help="run on the background engine; give an endpoint as --engine=ENDPOINT (a bare "
                             "--engine uses the default endpoint)")


def register(subparsers):
    stylize = subparsers.add_parser(
        "stylize", help="stylize an image file",
        description="Repaint CONTENT in the style of STYLE (several styles are blended). The output's "
                    "longest side is --size (without it: the content's, at most %d). The content's alpha "
                    "channel is carried through." % OPTIONS_BY_NAME["max_size"].default)
    stylize.add_argument("content", metavar="CONTENT")
    stylize.add_argument("styles", metavar="STYLE", nargs="+", help="an image file, or lib:NAME (a library "
                         "style by id or name)")
    stylize.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png for --16bit)")
    add_stylize_flags(stylize)
    stylize.set_defaults(func=run_stylize)

    losses = subparsers.add_parser(
        "losses", help="print the losses of a candidate image",
        description="Print the content, style and total loss of CANDIDATE for CONTENT and STYLE under the given "
                    "settings. Without --size every image is used at its own size (the content is resized to "
                    "the candidate's; style Grams are rescaled, see docs/engine.md).")
    losses.add_argument("content", metavar="CONTENT")
    losses.add_argument("styles", metavar="STYLE", nargs="+")
    losses.add_argument("--image", required=True, metavar="CANDIDATE", help="the image whose losses are printed")
    losses.add_argument("--weights", metavar="PATH", default=None, help="VGG-19 notop weights (.h5)")
    losses.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="float32",
                        help="what the convolutions compute in (default float32: exact losses)")
    add_option_flags(losses, list(LOSS_OPTIONS) + ["max_size"])
    losses.add_argument("--json", action="store_true", help="print one JSON object")
    losses.set_defaults(func=run_losses)
