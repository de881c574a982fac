"""The procedure's arguments and how they become a job: pure Python, no GIMP import.

Every job option of shared/options.py is a procedure argument (named with dashes), except
`style_weight`, which the artist sets as "strength", and `style_blend_weights` (one style per run).
"""

import os
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from shared.options import (OPTIONS, OptionError, split_list, strength_to_style_weight, validate_option,
                            validate_options)
from shared.protocol import EXTRA_OPTIONS   # preview_interval_s, feather

PROCEDURE_NAME = "python-fu-neural-style"
STYLE_SOURCES = (("file", "From a file"), ("library", "From the style library"), ("layer", "From a layer"))

STRENGTH_DEFAULT = 50.0

# Controls the artist sees first (the Krita docker's): shown in this order, with friendlier labels.
MAIN_LABELS = {
    "iterations": ("_Detail (iterations)", "more iterations: finer result, more time"),
    "max_size": ("Resolution cap (p_x)", "the engine works at most at this size, then scales to the layer"),
    "preserve_colors": ("_Preserve colors", "take only the brushwork, keep the layer's colors"),
    "style_scale": ("Style sc_ale", "bigger or smaller brush strokes (style size relative to the output)"),
}
NOT_ARGUMENTS = ("style_weight", "style_blend_weights")


@dataclass(frozen=True)
class Argument:
    name: str                  # GIMP argument name (dashes)
    kind: str                  # "choice", "file", "string", "layer", "int", "double", "boolean"
    label: str
    help: str
    default: Any = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[Tuple[str, str], ...] = ()   # (nick, label)
    option: Optional[str] = None                # the job option it sets, if any
    advanced: bool = False


def argument_name(option_name: str) -> str:
    return option_name.replace("_", "-")


def _from_option(option, label=None, help_text=None, advanced=True) -> Argument:
    kind = {"int": "int", "float": "double", "bool": "boolean", "str": "string", "choice": "choice",
            "layers": "string", "floats": "string"}[option.kind]
    default = option.default
    if option.kind in ("layers", "floats"):
        default = ", ".join(str(item) for item in default)   # a comma-separated list
    if label is None:
        label = option.name.replace("_", " ").capitalize()
    return Argument(argument_name(option.name), kind, label, help_text or option.help, default,
                    option.minimum, option.maximum, tuple((c, c) for c in option.choices),
                    option=option.name, advanced=advanced)


def arguments() -> Tuple[Argument, ...]:
    """All procedure arguments after `run-mode`, `image` and `drawables`, in dialog order."""
    style = (
        Argument("style-source", "choice", "Style _from", "where the style image comes from", "file",
                 choices=STYLE_SOURCES),
        Argument("style-file", "file", "Style _file", "the style image file (style-source 'file')"),
        Argument("style-library-id", "string", "Library style _id",
                 "id of a style in the style library (style-source 'library')", ""),
        Argument("style-layer", "layer", "Style la_yer",
                 "a layer of any open image to take the style from (style-source 'layer')"),
    )
    strength = Argument("strength", "double", "S_trength",
                        "how much style versus content (50 = the engine's default balance)",
                        STRENGTH_DEFAULT, 0.0, 100.0)
    by_name = {option.name: option for option in OPTIONS}
    main = tuple(_from_option(by_name[name], MAIN_LABELS[name][0], MAIN_LABELS[name][1], advanced=False)
                 for name in MAIN_LABELS)
    advanced = tuple(_from_option(option) for option in OPTIONS
                     if option.name not in MAIN_LABELS and option.name not in NOT_ARGUMENTS)
    extra = tuple(_from_option(option) for option in EXTRA_OPTIONS) + (
        Argument("engine-endpoint", "string", "Engine _endpoint",
                 "ZeroMQ endpoint of the engine (empty: $NEURAL_STYLE_ENDPOINT, then the per-user default)",
                 "", advanced=True),
    )
    frames = (Argument("layers-as-frames", "boolean", "Layers as frames",
                       "every top-level layer is a frame of an animation, the bottom layer the first (GIMP's "
                       "convention); each frame is stylized with the one before it, coherent in time, into a "
                       "layer above it", False),)
    return with_mnemonics(style + (strength,) + main + frames + advanced + extra)


# Mnemonics taken by GimpProcedureDialog's own buttons (Help, Reset, Cancel, OK, Load/Save settings)
# and by the preview's switch (Pre_view).
DIALOG_MNEMONICS = frozenset("hrcolsv")


def with_mnemonics(args):
    """Give each label without one a mnemonic (an underscore) that no other control or button uses."""
    used = set(DIALOG_MNEMONICS)
    used.update(a.label[a.label.index("_") + 1].lower() for a in args if "_" in a.label)
    result = []
    for arg in args:
        if "_" not in arg.label:
            for i, char in enumerate(arg.label):
                if char.isalpha() and char.lower() not in used:
                    used.add(char.lower())
                    arg = Argument(**dict(arg.__dict__, label=arg.label[:i] + "_" + arg.label[i:]))
                    break
        result.append(arg)
    return tuple(result)


# Dialog state GIMP keeps with the last values (aux arguments: not part of the PDB call).
AUX_ARGUMENTS = (
    Argument("advanced-expanded", "boolean", "Show advanced settings", "the Advanced section is open", False),
    Argument("preview", "boolean", "Pre_view", "show a small live preview of the current settings", True),
)


def read_values(config) -> dict:
    """The procedure config -> {argument name: plain Python value} (files as paths, layers as layers)."""
    values = {}
    for arg in arguments():
        value = config.get_property(arg.name)
        if arg.kind == "file":
            value = value.get_path() if value is not None else None
        values[arg.name] = value
    return values


def display_digits(arg: Argument, shown: int = 0) -> int:
    """Decimals a double's control needs to show its default exactly (0.001 must not read 0.0)."""
    if arg.kind != "double":
        return shown
    digits = shown
    value = arg.default
    if value and 0 < abs(value) < 1:
        needed = 0
        while needed < 6 and abs(round(value, needed) - value) > abs(value) * 1e-6:
            needed += 1
        digits = max(digits, needed)
    return digits


class UserError(Exception):
    """Something the artist or the caller can fix; str() is the one-sentence message (for scripts).

    `code` and `cause` (an engine error code, a client exception) pick the artist's words in the
    editor (shared/explain.py); `kept` names a layer kept as "(incomplete)"."""

    def __init__(self, message, code=None, cause=None, engine_message="", kept=None):
        super().__init__(message)
        self.code, self.cause, self.engine_message, self.kept = code, cause, engine_message, kept


class SettingsError(ValueError):
    """A procedure argument is invalid; the message names it and says what was expected."""


def style_weight_for_strength(strength: float) -> float:
    """Strength 0..100 -> style weight on a log scale: 0 -> 1e-1, 50 -> 1e2 (the default), 100 -> 1e5."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 100.0:
        raise SettingsError("strength must be a number between 0 and 100, got %r" % (strength,))
    return strength_to_style_weight(strength)


def _list_value(option, text: str):
    items = split_list(text or "")
    if option.kind == "floats":
        try:
            return [float(item) for item in items]
        except ValueError:
            raise SettingsError("%s must be numbers separated by commas, got %r"
                                % (argument_name(option.name), text))
    return items


def job_options(values: dict) -> dict:
    """Argument values (by argument name) -> the job's options map, checked with the option table."""
    options = {}
    for option in OPTIONS:
        if option.name in NOT_ARGUMENTS:
            continue
        value = values[argument_name(option.name)]
        if option.kind in ("layers", "floats"):
            value = _list_value(option, value)
            if not value:
                continue          # empty: the engine's default
        options[option.name] = value
    options["style_weight"] = style_weight_for_strength(values["strength"])
    try:
        validate_options(options)
    except OptionError as error:
        field = error.field.split(".", 1)[-1]
        raise SettingsError(error.message.replace("options." + field, argument_name(field)))
    for option in EXTRA_OPTIONS:
        try:
            options[option.name] = validate_option(option, values[argument_name(option.name)],
                                                   argument_name(option.name))
        except OptionError as error:
            raise SettingsError(error.message)
    return options


def style_file_name(path: Optional[str]) -> str:
    """The style's display name for a file: its name without folder and extension."""
    return os.path.splitext(os.path.basename(path or ""))[0] or "style"


def check_style_file(path: Optional[str]) -> str:
    """The style file's path, or SettingsError naming it when it is missing or unreadable."""
    if not path:
        raise SettingsError("style-file is empty: choose the image to take the style from")
    if not os.path.isfile(path):
        raise SettingsError("style file not found: %s" % path)
    if not os.access(path, os.R_OK):
        raise SettingsError("style file is not readable: %s" % path)
    return path


def result_layer_name(source: str, style: str) -> str:
    return "%s \u2013 %s" % (source, style)


INCOMPLETE_SUFFIX = " (incomplete)"


def incomplete_layer_name(name: str) -> str:
    """The name a result layer gets when its job failed after previews: 'Photo \u2013 style (incomplete)'."""
    return name if name.endswith(INCOMPLETE_SUFFIX) else name + INCOMPLETE_SUFFIX
