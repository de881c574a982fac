"""Command-line flags for the job options, built from shared/options.py (one table for the CLI, the
protocol and the plugins); errors name the flag (`--size`), not the option."""

from shared.options import OPTIONS, OPTIONS_BY_NAME, OptionError, split_list, validate_option, validate_options

from ..core.errors import InputError

# Options that `losses` understands (the ones that define the objective).
LOSS_OPTIONS = ("content_layer", "style_layers", "style_layer_weights", "content_weight", "style_weight",
                "tv_weight", "style_blend_weights", "style_scale", "pooling", "loss_normalization")
FLAG_NAMES = {"max_size": "--size"}


def flag(name):
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def add_option_flags(parser, names):
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


def parse_value(option, text):
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
            given[name] = validate_option(option, parse_value(option, value), field=flag(name))
        return validate_options(given)
    except OptionError as error:
        message = error.message
        for name in names:
            message = message.replace("options." + name, flag(name))
        raise InputError(message, field=error.field)
