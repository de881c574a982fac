"""Fast tests of the GIMP plug-in's pure modules (no GIMP needed)."""

import os
import sys

import pytest

from shared.options import OPTIONS, defaults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_DIR = os.path.join(REPO, "plugin_gimp", "neural_style")
sys.path.insert(0, PLUGIN_DIR)

import gimp_arguments as arguments  # noqa: E402
import gimp_pixels as pixels        # noqa: E402
import gimp_progress as progress    # noqa: E402


def default_values():
    return {arg.name: arg.default for arg in arguments.arguments()}


# ------------------------------------------------------------------------------------------ arguments

def test_required_argument_names_and_kinds():
    by_name = {arg.name: arg for arg in arguments.arguments()}
    assert by_name["style-file"].kind == "file"
    assert by_name["iterations"].kind == "int"
    assert by_name["max-size"].kind == "int"
    assert by_name["preserve-colors"].kind == "boolean"
    assert by_name["strength"].kind == "double"
    assert by_name["style-layer"].kind == "layer"
    assert [nick for nick, _ in by_name["style-source"].choices] == ["file", "library", "layer"]


def test_every_job_option_is_an_argument_except_the_derived_ones():
    names = {arg.name for arg in arguments.arguments()}
    for option in OPTIONS:
        if option.name in ("style_weight", "style_blend_weights"):
            assert option.name.replace("_", "-") not in names
        else:
            assert option.name.replace("_", "-") in names


def test_argument_names_are_unique_and_gimp_style():
    names = [arg.name for arg in arguments.arguments()]
    assert len(names) == len(set(names))
    assert all(name == name.lower() and "_" not in name for name in names)


def test_mnemonics_are_unique_and_avoid_the_dialog_buttons():
    shown = [arg for arg in arguments.arguments() if arg.name not in ("style-file", "style-library-id")]
    keys = []
    for arg in shown:
        assert arg.label.count("_") <= 1, arg.label
        if not arg.advanced:   # the advanced ones get one while letters last
            assert arg.label.count("_") == 1, arg.label
        if "_" in arg.label:
            keys.append(arg.label[arg.label.index("_") + 1].lower())
    assert len(keys) == len(set(keys)), keys
    assert not set(keys) & set("hrcols")


def test_numeric_defaults_lie_in_their_ranges():
    for arg in arguments.arguments():
        if arg.kind in ("int", "double"):
            assert arg.minimum <= arg.default <= arg.maximum, arg.name
        if arg.kind == "choice":
            assert arg.default in [nick for nick, _ in arg.choices], arg.name


def test_default_arguments_give_the_option_tables_defaults():
    options = arguments.job_options(default_values())
    table = defaults()
    for name in ("iterations", "max_size", "preserve_colors", "style_scale", "content_weight", "tv_weight",
                 "pooling", "optimizer", "init", "scales", "seed", "content_layer"):
        assert options[name] == table[name], name
    assert tuple(options["style_layers"]) == table["style_layers"]
    assert tuple(options["style_layer_weights"]) == table["style_layer_weights"]
    assert options["style_weight"] == pytest.approx(table["style_weight"])
    assert options["preview_interval_s"] == 2.0 and options["feather"] == 4
    assert "style_blend_weights" not in options


@pytest.mark.parametrize("strength, weight", [(0, 1e-1), (25, 10 ** 0.5), (50, 1e2), (100 / 3, 1e1), (100, 1e5)])
def test_strength_maps_to_style_weight_on_a_log_scale(strength, weight):
    assert arguments.style_weight_for_strength(strength) == pytest.approx(weight)


@pytest.mark.parametrize("strength", [-1, 100.5, True, "50"])
def test_bad_strength_is_refused(strength):
    with pytest.raises(arguments.SettingsError, match="strength"):
        arguments.style_weight_for_strength(strength)


def test_settings_map_to_options():
    values = default_values()
    values.update({"iterations": 7, "max-size": 64, "preserve-colors": True, "style-scale": 0.5,
                   "style-layers": "conv1_1, conv3_1", "style-layer-weights": "", "pooling": "avg"})
    options = arguments.job_options(values)
    assert (options["iterations"], options["max_size"], options["preserve_colors"]) == (7, 64, True)
    assert options["style_scale"] == 0.5 and options["pooling"] == "avg"
    assert options["style_layers"] == ["conv1_1", "conv3_1"]
    assert "style_layer_weights" not in options     # empty text: the engine's default for the layers


@pytest.mark.parametrize("name, value, words", [
    ("style-layers", "conv9_9", "style-layers"),
    ("style-layer-weights", "1, x", "style-layer-weights"),
    ("style-layer-weights", "1, 2", "one weight per style layer"),
    ("content-layer", "pool5", "content-layer"),
    ("iterations", 0, "iterations"),
])
def test_bad_settings_name_the_argument(name, value, words):
    values = default_values()
    values[name] = value
    with pytest.raises(arguments.SettingsError, match=words):
        arguments.job_options(values)


def test_style_file_checks_name_the_file(tmp_path):
    missing = str(tmp_path / "nowhere" / "starry.jpg")
    with pytest.raises(arguments.SettingsError) as error:
        arguments.check_style_file(missing)
    assert missing in str(error.value)
    with pytest.raises(arguments.SettingsError, match="style-file is empty"):
        arguments.check_style_file(None)
    present = tmp_path / "starry.jpg"
    present.write_bytes(b"x")
    assert arguments.check_style_file(str(present)) == str(present)


def test_names():
    assert arguments.style_file_name("/a/b/Starry Night.jpg") == "Starry Night"
    assert arguments.style_file_name("") == "style"
    assert arguments.result_layer_name("Photo", "Starry Night") == "Photo \u2013 Starry Night"
    assert arguments.incomplete_layer_name("Photo \u2013 style") == "Photo \u2013 style (incomplete)"
    assert arguments.incomplete_layer_name("Photo \u2013 style (incomplete)") == "Photo \u2013 style (incomplete)"


# ------------------------------------------------------------------------------------------ pixels

@pytest.mark.parametrize("precision, dtype", [
    ("GIMP_PRECISION_U8_NON_LINEAR", "u8"), ("GIMP_PRECISION_U8_LINEAR", "u8"), ("U8_PERCEPTUAL", "u8"),
    ("GIMP_PRECISION_U16_LINEAR", "u16"), ("GIMP_PRECISION_U16_NON_LINEAR", "u16"),
    ("GIMP_PRECISION_U32_LINEAR", "f32"), ("GIMP_PRECISION_HALF_NON_LINEAR", "f32"),
    ("GIMP_PRECISION_FLOAT_LINEAR", "f32"), ("GIMP_PRECISION_DOUBLE_PERCEPTUAL", "f32"),
])
def test_precision_to_dtype(precision, dtype):
    assert pixels.dtype_for_precision(precision) == dtype


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError):
        pixels.dtype_for_precision("GIMP_PRECISION_U4_LINEAR")


@pytest.mark.parametrize("dtype, channels, babl, size", [
    ("u8", 4, "R'G'B'A u8", 4), ("u16", 4, "R'G'B'A u16", 8), ("f32", 4, "R'G'B'A float", 16),
    ("u8", 3, "R'G'B' u8", 3), ("u16", 1, "Y' u16", 2), ("f32", 2, "Y'A float", 8),
])
def test_pixel_formats(dtype, channels, babl, size):
    fmt = pixels.pixel_format(dtype, channels)
    assert (fmt.babl, fmt.dtype, fmt.channels, fmt.bytes_per_pixel) == (babl, dtype, channels, size)


def test_layer_types_refuse_indexed_clearly():
    assert pixels.layer_image_type("GIMP_RGB") == "RGBA_IMAGE"
    assert pixels.layer_image_type("GIMP_GRAY") == "GRAYA_IMAGE"
    with pytest.raises(ValueError, match="indexed images are not supported"):
        pixels.layer_image_type("GIMP_INDEXED")


def test_check_frame():
    fmt = pixels.pixel_format("u16", 4)
    pixels.check_frame(2, 3, fmt, bytes(48))
    with pytest.raises(ValueError, match="expected 48 bytes"):
        pixels.check_frame(2, 3, fmt, bytes(47))


def test_selection_math():
    layer = (8, 12, 48, 40)
    assert pixels.selection_bounds_from_gimp(False, 0, 0, 0, 0) is None
    bounds = pixels.selection_bounds_from_gimp(True, 16, 20, 40, 40)
    assert bounds == (16, 20, 24, 20)
    assert pixels.selection_plan(layer, None) == "none"
    assert pixels.selection_plan(layer, bounds) == "mask"
    assert pixels.selection_plan(layer, (0, 0, 8, 64)) == "outside"       # touches the edge only
    assert pixels.selection_plan(layer, (55, 51, 10, 10)) == "mask"       # one pixel of overlap
    assert pixels.intersect(layer, (55, 51, 10, 10)) == (55, 51, 1, 1)


# ------------------------------------------------------------------------------------------ progress

def test_status_text_shows_scale_iteration_and_eta():
    header = {"scale": 1, "scales": 3, "iteration": 40, "iterations": 200, "eta_s": 75.4}
    text = progress.status_text(header, "Photo", 0, 2)
    assert text == "Neural Style: Photo (1/2) \u2013 scale 2/3, iteration 40/200, about 1 min 15 s left"
    assert progress.status_text({"iteration": 3, "iterations": 4}) == "Neural Style: iteration 3/4"
    assert progress.status_text({"stage": "loading"}, "L") == "Neural Style: L \u2013 loading"


def test_the_bar_uses_the_shared_fraction():
    assert progress.fraction({"iteration": 50, "iterations": 100}, 1, 2) == 0.75


# ------------------------------------------------------------------------------------------ dialog helpers

def test_a_double_control_shows_its_default_exactly():
    by_name = {arg.name: arg for arg in arguments.arguments()}
    assert arguments.display_digits(by_name["tv-weight"], 1) == 3          # 0.001, not 0.0
    assert arguments.display_digits(by_name["strength"], 1) == 1            # never fewer than GIMP chose
    assert arguments.display_digits(by_name["iterations"], 0) == 0          # not a double


def test_read_values_turns_files_into_paths():
    class File:
        def get_path(self):
            return "/x/starry.png"

    class Config:
        def get_property(self, name):
            return File() if name == "style-file" else default_values()[name]
    values = arguments.read_values(Config())
    assert values["style-file"] == "/x/starry.png" and values["iterations"] == default_values()["iterations"]


def test_aux_arguments_are_not_procedure_arguments_and_the_preview_switch_has_its_own_key():
    names = {arg.name for arg in arguments.arguments()}
    assert not names & {arg.name for arg in arguments.AUX_ARGUMENTS}
    used = [a.label[a.label.index("_") + 1].lower() for a in arguments.arguments() if "_" in a.label]
    assert "v" in arguments.DIALOG_MNEMONICS and "v" not in used, "Pre_view shares its key with a control"


def test_the_plug_in_has_no_test_hooks():
    for name in os.listdir(PLUGIN_DIR):
        if name.endswith(".py"):
            with open(os.path.join(PLUGIN_DIR, name), encoding="utf-8") as f:
                text = f.read()
            assert "_TEST" not in text and "environ" not in text, "%s reads a test switch" % name
