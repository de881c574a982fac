"""The docker's settings and how they become job options (no Krita, no Qt: unit-tested alone).

Main controls: strength (style/content balance), detail (iterations), resolution cap (max_size),
preserve colors, style scale. Every other option of shared/options.py is an "advanced" override.
"""

import json
from dataclasses import asdict, dataclass, field

from .shared.options import (OPTIONS, OPTIONS_BY_NAME, strength_to_style_weight, style_weight_to_strength,
                             validate_option, validate_options)
from .preview import PREVIEW_INTERVAL_S, PREVIEW_SIZE
from .shared.protocol import EXTRA_OPTIONS_BY_NAME

# Options the main controls stand for; everything else goes in the Advanced section.
MAIN_OPTIONS = ("style_weight", "iterations", "max_size", "preserve_colors", "style_scale")
ADVANCED_OPTIONS = tuple(option.name for option in OPTIONS if option.name not in MAIN_OPTIONS)

@dataclass
class Settings:
    strength: float = 50.0
    detail: int = OPTIONS_BY_NAME["iterations"].default
    resolution_cap: int = OPTIONS_BY_NAME["max_size"].default
    preserve_colors: bool = OPTIONS_BY_NAME["preserve_colors"].default
    style_scale: float = OPTIONS_BY_NAME["style_scale"].default
    advanced: dict = field(default_factory=dict)   # option name -> value, only what the user changed
    preview_interval_s: float = 1.0                # how often the engine sends a preview
    feather: int = EXTRA_OPTIONS_BY_NAME["feather"].default   # soft edge inside the selection, pixels


def to_options(settings: Settings) -> dict:
    """The `options` map for Client.submit; raises shared.options.OptionError naming the bad field."""
    values = {name: value for name, value in settings.advanced.items() if name in ADVANCED_OPTIONS}
    values.update({
        "style_weight": strength_to_style_weight(settings.strength),
        "iterations": int(settings.detail),
        "max_size": int(settings.resolution_cap),
        "preserve_colors": bool(settings.preserve_colors),
        "style_scale": float(settings.style_scale),
    })
    options = validate_options(values)
    options = {name: list(value) if isinstance(value, tuple) else value for name, value in options.items()}
    for name in EXTRA_OPTIONS_BY_NAME:   # preview_interval_s, feather: checked by the same table
        options[name] = validate_option(EXTRA_OPTIONS_BY_NAME[name], getattr(settings, name))
    return options


def from_options(options: dict) -> Settings:
    """The inverse of to_options (for restoring saved settings); unknown keys are ignored."""
    known = validate_options({k: v for k, v in options.items() if k in OPTIONS_BY_NAME})
    defaults = Settings()
    advanced = {name: known[name] for name in ADVANCED_OPTIONS
                if name in options and known[name] != OPTIONS_BY_NAME[name].default}
    return Settings(
        strength=style_weight_to_strength(known["style_weight"]),
        detail=known["iterations"],
        resolution_cap=known["max_size"],
        preserve_colors=known["preserve_colors"],
        style_scale=known["style_scale"],
        advanced={k: list(v) if isinstance(v, tuple) else v for k, v in advanced.items()},
        preview_interval_s=float(options.get("preview_interval_s", defaults.preview_interval_s)),
        feather=int(options.get("feather", defaults.feather)),
    )


# How the docker labels the options an OptionError names (its field is "options.<name>").
LABELS = {"style_weight": "Strength", "iterations": "Detail (iterations)", "max_size": "Resolution cap",
          "preserve_colors": "Preserve colors", "style_scale": "Style scale",
          "preview_interval_s": "Advanced ▸ preview every", "feather": "Advanced ▸ selection soft edge"}


def option_error_text(error) -> str:
    """An OptionError as the artist sees it: the control's label instead of the protocol field."""
    name = error.field.split(".", 1)[1] if error.field.startswith("options.") else error.field
    label = LABELS.get(name, "Advanced ▸ " + name.replace("_", " "))
    return error.message.replace(error.field, label, 1)


def preview_options(options: dict, step: int) -> dict:
    """The options of a preview job: Apply's options at the preview's working size (the layer read
    every `step`-th pixel), with quick previews; everything else is what Apply will use."""
    preview = dict(options)
    preview["max_size"] = min(int(options["max_size"]), PREVIEW_SIZE)
    preview["preview_interval_s"] = PREVIEW_INTERVAL_S
    preview["feather"] = int(round(options.get("feather", 0) / float(step)))
    return preview


# What the Advanced section calls each option, and the engine's words for a choice or a VGG-19
# layer, for an artist (the engine name stays visible in brackets, as in the option table's help).
ADVANCED_LABELS = {
    "content_layer": "Shapes kept from",
    "style_layers": "Style taken from",
    "style_layer_weights": "Weight of each",
    "content_weight": "Content weight",
    "style_weight": "Style weight",
    "tv_weight": "Smoothness",
    "style_blend_weights": "Blend of styles",
    "pooling": "Texture",
    "optimizer": "Method",
    "learning_rate": "Step size (Fast)",
    "init": "Start from",
    "scales": "Coarse-to-fine steps",
    "seed": "Random seed",
}
CHOICE_LABELS = {
    "optimizer": {"lbfgs": "Careful (L-BFGS)", "adam": "Fast (Adam)"},
    "pooling": {"max": "Crisp (max)", "avg": "Soft (average)"},
    "init": {"content": "The layer (content)", "noise": "Noise"},
}
LAYER_WORDS = {"1": "finest strokes", "2": "fine texture", "3": "texture", "4": "shapes", "5": "large shapes"}


def advanced_label(name: str) -> str:
    return ADVANCED_LABELS.get(name, name.replace("_", " ").capitalize())


def choice_label(option_name: str, value: str) -> str:
    return CHOICE_LABELS.get(option_name, {}).get(value, value)


def layer_label(name: str) -> str:
    """'conv4_2' -> 'shapes (conv4_2)'; an unknown name is shown as it is."""
    if len(name) == 7 and name.startswith("conv") and name[4] in LAYER_WORDS:
        return "%s (%s)" % (LAYER_WORDS[name[4]], name)
    return name


def to_json(settings: Settings) -> str:
    return json.dumps(asdict(settings), sort_keys=True)


def from_json(text: str) -> Settings:
    """Saved settings; anything unreadable or out of range falls back to the defaults."""
    try:
        data = json.loads(text)
        settings = Settings(**{k: v for k, v in data.items() if k in Settings.__dataclass_fields__})
        to_options(settings)
        return settings
    except (ValueError, TypeError):
        return Settings()
