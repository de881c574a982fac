"""The one table of job options: names, types, ranges, defaults and help.

The engine's CLI builds its flags from it, the protocol validates `submit.options` with it, and
the plugins build their controls from it. Standard library only (runs inside the editors).
"""

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

VGG_LAYERS = (
    "conv1_1", "conv1_2",
    "conv2_1", "conv2_2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4",
    "conv5_1", "conv5_2", "conv5_3", "conv5_4",
)


def keras_layer_name(name: str) -> str:
    """'conv4_2' or 'block4_conv2' -> 'block4_conv2'; raises ValueError for anything else."""
    if name in VGG_LAYERS:
        block, conv = name[4:].split("_")
        return "block%s_conv%s" % (block, conv)
    if name.startswith("block") and "_conv" in name:
        block, conv = name[5:].split("_conv", 1)
        if "conv%s_%s" % (block, conv) in VGG_LAYERS:
            return name
    raise ValueError(
        "unknown VGG-19 layer %r: expected one of %s (or the Keras names block1_conv1 ... block5_conv4)"
        % (name, ", ".join(VGG_LAYERS)))


def lecture_layer_name(name: str) -> str:
    """'block4_conv2' or 'conv4_2' -> 'conv4_2'."""
    keras = keras_layer_name(name)
    block, conv = keras[5:].split("_conv")
    return "conv%s_%s" % (block, conv)


# The weight of the temporal term for frame k > 0 of a shot (docs/frames.md): `batch --temporal-weight`'s
# default and submit's `options.temporal_weight` (with previous_frame) are this one constant.
TEMPORAL_WEIGHT = 100.0


@dataclass(frozen=True)
class Option:
    name: str                 # protocol key; CLI flag is --name-with-dashes
    kind: str                 # "int", "float", "bool", "str", "choice", "layers", "floats"
    default: Any
    help: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[str, ...] = ()
    max_items: int = 16       # for list kinds


OPTIONS: Tuple[Option, ...] = (
    Option("iterations", "int", 200, "optimizer iterations in all (split over the scales)", 1, 10000),
    Option("max_size", "int", 512, "longest side of the image the optimizer works on", 16, 16384),
    Option("content_layer", "str", "conv4_2", "VGG-19 layer for the content loss (conv4_2 or block4_conv2 style)"),
    Option("style_layers", "layers", ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
           "VGG-19 layers for the style loss"),
    Option("style_layer_weights", "floats", (1.0, 1.0, 1.0, 1.0, 1.0),
           "weight of each style layer (same count as style_layers)", 0.0, 1e6),
    Option("content_weight", "float", 5.0, "alpha: weight of the content loss", 0.0, 1e12),
    Option("style_weight", "float", 100.0, "beta: weight of the style loss", 0.0, 1e12),
    Option("tv_weight", "float", 1e-3, "weight of the total-variation (smoothness) term", 0.0, 1e12),
    Option("loss_normalization", "choice", "size",
           "size: every loss term per position, the same balance at every size (jcjohnson/neural-style's "
           "objective); seed: the lecture's raw sums", choices=("size", "seed")),
    Option("style_blend_weights", "floats", (), "blend weight of each style image (default: equal)", 0.0, 1e6),
    Option("style_scale", "float", 1.0, "style image's longest side = style_scale x the output's", 0.05, 8.0),
    Option("preserve_colors", "bool", False, "keep the content's colors, transfer luminance only"),
    Option("pooling", "choice", "max", "pooling between VGG blocks", choices=("max", "avg")),
    Option("optimizer", "choice", "lbfgs", "optimizer over the pixels", choices=("lbfgs", "adam")),
    Option("learning_rate", "float", 2.0, "Adam step size (pixels are 0..255)", 1e-6, 1e3),
    Option("init", "choice", "content", "starting image", choices=("content", "noise")),
    Option("scales", "int", 0, "coarse-to-fine levels (0 = automatic)", 0, 8),
    Option("seed", "int", 0, "random seed (noise init); same seed, same result on CPU", 0, 2**31 - 1),
    Option("temporal_weight", "float", TEMPORAL_WEIGHT,
           "frames: how hard a frame is held to the previous result carried along the motion (0: only started "
           "from it); used for a frame after the first of a sequence", 0.0, 1e12),
)

# Options that only mean something for frame k > 0 of a sequence (not flags of `stylize`).
FRAME_OPTIONS = ("temporal_weight",)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


def defaults() -> dict:
    return {option.name: option.default for option in OPTIONS}


class OptionError(ValueError):
    """A job option is invalid; `field` names it (e.g. "options.iterations")."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _number(option: Option, value: Any, field: str, integral: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integral and not isinstance(value, int)):
        raise OptionError(field, "%s must be %s, got %r" % (field, "an integer" if integral else "a number", value))
    if value != value or value in (float("inf"), float("-inf")):
        raise OptionError(field, "%s must be a finite number, got %r" % (field, value))
    if option.minimum is not None and value < option.minimum or option.maximum is not None and value > option.maximum:
        raise OptionError(field, "%s must be between %g and %g, got %r" % (field, option.minimum, option.maximum, value))
    return value


def validate_option(option: Option, value: Any, field: Optional[str] = None) -> Any:
    """Check one value against its option; return it normalized (tuples for lists, floats for floats)."""
    field = field or "options." + option.name
    if option.kind == "int":
        return _number(option, value, field, integral=True)
    if option.kind == "float":
        return float(_number(option, value, field, integral=False))
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise OptionError(field, "%s must be true or false, got %r" % (field, value))
        return value
    if option.kind in ("str", "choice"):
        if not isinstance(value, str):
            raise OptionError(field, "%s must be a string, got %r" % (field, value))
        if option.kind == "choice" and value not in option.choices:
            raise OptionError(field, "%s must be one of %s, got %r" % (field, ", ".join(option.choices), value))
        if option.name == "content_layer":
            try:
                keras_layer_name(value)
            except ValueError as error:
                raise OptionError(field, "%s: %s" % (field, error))
        return value
    if option.kind in ("layers", "floats"):
        if not isinstance(value, (list, tuple)):
            raise OptionError(field, "%s must be a list, got %r" % (field, value))
        if len(value) > option.max_items:
            raise OptionError(field, "%s may have at most %d items, got %d" % (field, option.max_items, len(value)))
        if option.kind == "layers":
            if not value:
                raise OptionError(field, "%s must name at least one layer" % field)
            for item in value:
                if not isinstance(item, str):
                    raise OptionError(field, "%s must be a list of layer names, got %r" % (field, item))
                try:
                    keras_layer_name(item)
                except ValueError as error:
                    raise OptionError(field, "%s: %s" % (field, error))
            return tuple(value)
        return tuple(float(_number(option, item, field, integral=False)) for item in value)
    raise AssertionError("unknown option kind %r" % option.kind)


def validate_options(values: Any, field: str = "options") -> dict:
    """Validate a whole options map (unknown keys refused); returns defaults merged with the values."""
    if not isinstance(values, dict):
        raise OptionError(field, "%s must be a map, got %s" % (field, type(values).__name__))
    merged = defaults()
    for key, value in values.items():
        if key not in OPTIONS_BY_NAME:
            raise OptionError("%s.%s" % (field, key), "unknown option %r (known: %s)"
                              % (key, ", ".join(sorted(OPTIONS_BY_NAME))))
        merged[key] = validate_option(OPTIONS_BY_NAME[key], value, "%s.%s" % (field, key))
    layers = merged["style_layers"]
    if "style_layers" in values and "style_layer_weights" not in values:
        merged["style_layer_weights"] = (1.0,) * len(layers)      # equal, as the default
    weights = merged["style_layer_weights"]
    if len(weights) != len(layers):
        raise OptionError(field + ".style_layer_weights",
                          "%s.style_layer_weights must have one weight per style layer (%d), got %d"
                          % (field, len(layers), len(weights)))
    return merged


# The artists' "strength" 0..100 maps log-linearly onto style_weight 1e-1..1e5, the same in both
# editors; 50 is the default style_weight 100 (with content weight 5: jcjohnson/neural-style's
# default balance), each end three decades away from it.
_LOG_STYLE_WEIGHT_LOW, _LOG_STYLE_WEIGHT_HIGH = -1.0, 5.0


def strength_to_style_weight(strength: float) -> float:
    """Strength 0..100 (clamped) -> style_weight: 0 -> 1e-1, 50 -> 1e2 (the default), 100 -> 1e5."""
    strength = min(100.0, max(0.0, float(strength)))
    span = _LOG_STYLE_WEIGHT_HIGH - _LOG_STYLE_WEIGHT_LOW
    return 10.0 ** (_LOG_STYLE_WEIGHT_LOW + span * strength / 100.0)


def style_weight_to_strength(style_weight: float) -> float:
    """The inverse of strength_to_style_weight, clamped to 0..100."""
    if style_weight <= 0:
        return 0.0
    span = _LOG_STYLE_WEIGHT_HIGH - _LOG_STYLE_WEIGHT_LOW
    strength = (math.log10(style_weight) - _LOG_STYLE_WEIGHT_LOW) / span * 100.0
    return min(100.0, max(0.0, strength))


def split_list(text: str) -> Sequence[str]:
    """'a,b, c' -> ['a', 'b', 'c'] (for CLI flags)."""
    return [part.strip() for part in text.split(",") if part.strip()]
