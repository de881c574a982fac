"""`python -m engine_server stylize ...` and `python -m engine_server losses ...`.

The option flags are built from shared/options.py (one table for CLI, protocol and plugins);
`--size` is the CLI's name for max_size. TensorFlow is imported only after the command line and
the image files have been checked, so those errors come back at once.
"""

import json
import logging
import os
import sys
import time

from shared.options import OPTIONS, OPTIONS_BY_NAME, OptionError, split_list, validate_option, validate_options

from .errors import InputError

log = logging.getLogger(__name__)

# Options that `losses` understands (the ones that define the objective).
LOSS_OPTIONS = ("content_layer", "style_layers", "style_layer_weights", "content_weight", "style_weight",
                "tv_weight", "style_blend_weights", "style_scale", "pooling")
FLAG_NAMES = {"max_size": "--size"}


def flag(name):
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _add_option_flags(parser, names):
    for option in OPTIONS:
        if option.name not in names:
            continue
        default = option.default
        shown = ",".join("%g" % v if isinstance(v, float) else str(v) for v in default) \
            if isinstance(default, tuple) else default
        help_text = "%s (default: %s)" % (option.help, shown if shown != "" else "none")
        if option.kind == "bool":
            parser.add_argument(flag(option.name), dest=option.name, action="store_true", default=None,
                                help=option.help)
        elif option.kind == "choice":
            parser.add_argument(flag(option.name), dest=option.name, default=None, metavar="|".join(option.choices),
                                help=help_text)
        else:
            metavar = {"int": "N", "float": "X", "str": "LAYER", "layers": "a,b,c", "floats": "x,y,z"}[option.kind]
            parser.add_argument(flag(option.name), dest=option.name, default=None, metavar=metavar, help=help_text)


def _parse_value(option, text):
    name = flag(option.name)
    try:
        if option.kind == "int":
            return int(text)
        if option.kind == "float":
            return float(text)
        if option.kind == "floats":
            return [float(item) for item in split_list(text)]
        if option.kind == "layers":
            return list(split_list(text))
    except ValueError:
        kind = {"int": "an integer", "float": "a number", "floats": "comma-separated numbers"}[option.kind]
        raise InputError("%s must be %s, got %r" % (name, kind, text), field=option.name)
    return text


def collect_options(args, names):
    """The options given on the command line, validated against the table; flags named in errors."""
    given = {}
    try:
        for name in names:
            value = getattr(args, name, None)
            if value is None:
                continue
            option = OPTIONS_BY_NAME[name]
            given[name] = validate_option(option, _parse_value(option, value), field=flag(name))
        return validate_options(given)
    except OptionError as error:
        message = error.message
        for name in names:
            message = message.replace("options." + name, flag(name))
        raise InputError(message, field=error.field)


def _load_images(args):
    from .images import load_image, load_rgb

    content, alpha = load_image(args.content, "content image")
    styles = [load_rgb(path, "style image") for path in args.styles]
    return content, alpha, styles


def _load_model(args):
    from .weights import check_weights_file, find_weights

    check_weights_file(find_weights(args.weights))    # a missing file is reported before TensorFlow loads
    from .model import VGG19Features

    return VGG19Features.load(args.weights, precision=args.precision)


# ---------------------------------------------------------------- stylize

def _output_format(path, bits16):
    extension = os.path.splitext(path)[1].lower()
    if bits16 and extension != ".png":
        raise InputError("--16bit needs a .png output file, got %s" % path)
    if extension not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"):
        raise InputError("output file %s must end in .png, .jpg, .tif, .webp or .bmp" % path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("output folder %s does not exist" % folder)


class _ProgressBar:
    def __init__(self, stream):
        self.stream = stream

    def __call__(self, progress):
        width = 30
        done = int(width * progress.iteration / progress.iterations)
        eta = progress.elapsed_s / progress.iteration * (progress.iterations - progress.iteration)
        self.stream.write("\r[%s%s] %d/%d  scale %d/%d  loss %.4g  %.0fs left " % (
            "#" * done, "." * (width - done), progress.iteration, progress.iterations, progress.scale + 1,
            progress.scales, progress.total_loss, eta))
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def _json_event(progress):
    print(json.dumps({"scale": progress.scale, "iteration": progress.iteration, "iterations": progress.iterations,
                      "content_loss": progress.content_loss, "style_loss": progress.style_loss,
                      "tv_loss": progress.tv_loss, "total_loss": progress.total_loss,
                      "elapsed_s": round(progress.elapsed_s, 3)}), flush=True)


def run_stylize(args):
    names = [option.name for option in OPTIONS if option.name != "init"]
    options = collect_options(args, names)
    init_path = None
    if args.init is not None and args.init not in ("content", "noise"):
        init_path = args.init
    elif args.init is not None:
        options["init"] = args.init
    _output_format(args.output, args.bits16)
    args.options, args.init_path = options, init_path
    if args.engine is not None:
        try:
            from . import remote_stylize
        except ImportError as error:
            if error.name != "engine_server.remote_stylize":
                raise
            raise InputError("--engine needs engine_server/remote_stylize.py (the background-engine part), "
                             "which this installation does not have; run without --engine")
        return remote_stylize.run(args)

    content, alpha, styles = _load_images(args)
    init_image = None
    if init_path is not None:
        from .images import load_rgb
        init_image = load_rgb(init_path, "--init image")
    from .images import fit_size, resize, save_png, save_image

    if args.max_size is not None:       # --size: the output's longest side, upscaling if needed
        target = fit_size(content.shape[:2], options["max_size"])
        content = resize(content, target).clip(0, 255)
    model = _load_model(args)
    from .stylize import StyleInput, stylize

    log.info("stylize %s with %s -> %s; options %s", args.content, args.styles, args.output, options)
    bar = _ProgressBar(sys.stderr) if not args.json and sys.stderr.isatty() else None
    on_progress = _json_event if args.json else bar
    started = time.monotonic()
    try:
        result = stylize(model, content, [StyleInput(style) for style in styles], options,
                         on_progress=on_progress, init_image=init_image)
    finally:
        if bar is not None:
            bar.close()
    if alpha is not None:
        alpha = resize(alpha, result.shape[:2])
    if args.bits16:
        save_png(args.output, result, alpha, bits=16)
    else:
        save_image(args.output, result, alpha)
    log.info("wrote %s (%dx%d) in %.1fs", args.output, result.shape[1], result.shape[0], time.monotonic() - started)
    if not args.json:
        print(args.output)
    return 0


# ---------------------------------------------------------------- losses

def run_losses(args):
    names = list(LOSS_OPTIONS) + ["max_size"]
    options = collect_options(args, names)
    from .images import fit_size, load_rgb, resize

    content, _, styles = _load_images(args)
    candidate = load_rgb(args.image, "candidate image")
    if args.max_size is not None:
        size = options["max_size"]
        candidate = resize(candidate, fit_size(candidate.shape[:2], size)).clip(0, 255)
        styles = [resize(s, fit_size(s.shape[:2], size * options["style_scale"])).clip(0, 255) for s in styles]
    model = _load_model(args)
    from .stylize import StyleInput, losses

    parts = losses(model, content, [StyleInput(style) for style in styles], candidate, options)
    from .model import layer_names
    by_keras = parts["style_layers"]
    result = {"content_loss": parts["content_loss"], "style_loss": parts["style_loss"],
              "style_layers": {name: by_keras[layer_names([name])[0]] for name in options["style_layers"]},
              "tv_loss": parts["tv_loss"], "total_loss": parts["total_loss"]}
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("content_loss", "style_loss", "tv_loss", "total_loss"):
            print("%-13s %.6g" % (key, result[key]))
        for name, value in result["style_layers"].items():
            print("  E(%s) %.6g" % (name, value))
    return 0


# ---------------------------------------------------------------- registration

def register(subparsers):
    stylize = subparsers.add_parser(
        "stylize", help="stylize an image file",
        description="Repaint CONTENT in the style of STYLE (several styles are blended). The output's "
                    "longest side is --size (without it: the content's, at most %d). The content's alpha "
                    "channel is carried through." % OPTIONS_BY_NAME["max_size"].default)
    stylize.add_argument("content", metavar="CONTENT")
    stylize.add_argument("styles", metavar="STYLE", nargs="+")
    stylize.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png for --16bit)")
    stylize.add_argument("--weights", metavar="PATH", default=None,
                         help="VGG-19 notop weights (.h5); default: $NEURAL_STYLE_WEIGHTS, then the installer's copy")
    _add_option_flags(stylize, [option.name for option in OPTIONS if option.name != "init"])
    stylize.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                         help="what the convolutions compute in; auto: bfloat16 where the hardware has it "
                              "natively, else float32 (docs/engine.md)")
    stylize.add_argument("--init", default=None, metavar="content|noise|PATH",
                         help="starting image: the content (default), seeded noise, or an image file")
    stylize.add_argument("--16bit", dest="bits16", action="store_true", help="write a 16-bit PNG")
    stylize.add_argument("--json", action="store_true",
                         help="write one JSON object per progress event on stdout")
    stylize.add_argument("--engine", nargs="?", const="", default=None, metavar="ENDPOINT",
                         help="run the job on the background engine (default endpoint when none is given)")
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
    _add_option_flags(losses, list(LOSS_OPTIONS) + ["max_size"])
    losses.add_argument("--json", action="store_true", help="print one JSON object")
    losses.set_defaults(func=run_losses)
