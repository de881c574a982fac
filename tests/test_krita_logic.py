"""Fast tests of the Krita plugin's pure modules (no Krita, no Qt), imported from an installed copy."""

import importlib
import os
import re
import struct
import threading

import pytest

from tests.support.krita_install import PLUGIN_SOURCE, import_installed, install_plugin


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    package = install_plugin(str(tmp_path_factory.mktemp("pykrita")))
    root = import_installed(package)

    class Modules:
        pass
    modules = Modules()
    modules.package = root.__name__
    for name in ("settings", "pixels", "region", "progress", "preview"):
        setattr(modules, name, importlib.import_module(root.__name__ + "." + name))
    modules.options = importlib.import_module(root.__name__ + ".shared.options")
    return modules


# ---- settings <-> options -----------------------------------------------------------------

def test_strength_50_is_the_engines_default_style_weight(plugin):
    assert plugin.settings.strength_to_style_weight(50) == pytest.approx(plugin.options.defaults()["style_weight"])


def test_strength_is_monotonic_clamped_and_invertible(plugin):
    s = plugin.settings
    weights = [s.strength_to_style_weight(x) for x in range(0, 101, 5)]
    assert weights == sorted(weights) and len(set(weights)) == len(weights)
    assert s.strength_to_style_weight(-20) == s.strength_to_style_weight(0)
    assert s.strength_to_style_weight(500) == s.strength_to_style_weight(100)
    for strength in (0, 12.5, 50, 99):
        assert s.style_weight_to_strength(s.strength_to_style_weight(strength)) == pytest.approx(strength)
    assert s.style_weight_to_strength(0) == 0


def test_default_settings_give_valid_options_with_the_main_controls(plugin):
    s = plugin.settings
    options = s.to_options(s.Settings())
    assert plugin.options.validate_options({k: v for k, v in options.items() if k in plugin.options.OPTIONS_BY_NAME})
    assert options["iterations"] == plugin.options.defaults()["iterations"]
    assert options["max_size"] == plugin.options.defaults()["max_size"]
    assert options["feather"] == 4 and options["preview_interval_s"] == 1.0
    assert isinstance(options["style_layers"], list)   # msgpack-friendly


def test_settings_map_onto_options(plugin):
    s = plugin.settings
    options = s.to_options(s.Settings(strength=100, detail=37, resolution_cap=128, preserve_colors=True,
                                      style_scale=0.5, advanced={"tv_weight": 0.5, "optimizer": "adam",
                                                                 "style_weight": 1.0},
                                      preview_interval_s=0.2, feather=0))
    assert options["style_weight"] == pytest.approx(1e5)    # the slider wins over an advanced style_weight
    assert (options["iterations"], options["max_size"], options["preserve_colors"]) == (37, 128, True)
    assert (options["style_scale"], options["tv_weight"], options["optimizer"]) == (0.5, 0.5, "adam")
    assert (options["preview_interval_s"], options["feather"]) == (0.2, 0)


@pytest.mark.parametrize("settings, field", [
    ({"detail": 0}, "options.iterations"),
    ({"resolution_cap": 8}, "options.max_size"),
    ({"advanced": {"optimizer": "sgd"}}, "options.optimizer"),
    ({"advanced": {"style_layers": ["conv9_9"]}}, "options.style_layers"),
    ({"feather": -1}, "options.feather"),
    ({"preview_interval_s": -1.0}, "options.preview_interval_s"),
])
def test_bad_settings_name_the_field(plugin, settings, field):
    with pytest.raises(plugin.options.OptionError) as raised:
        plugin.settings.to_options(plugin.settings.Settings(**settings))
    assert raised.value.field == field


@pytest.mark.parametrize("settings, text", [
    ({"detail": 0}, "Detail (iterations) must be between 1 and 10000, got 0"),
    ({"resolution_cap": 8}, "Resolution cap must be between 16 and 16384, got 8"),
    ({"advanced": {"tv_weight": -1.0}}, "Advanced ▸ tv weight must be between"),
    ({"feather": 999}, "Advanced ▸ selection soft edge must be between 0 and 256"),
])
def test_option_errors_use_the_dockers_labels(plugin, settings, text):
    with pytest.raises(plugin.options.OptionError) as raised:
        plugin.settings.to_options(plugin.settings.Settings(**settings))
    assert plugin.settings.option_error_text(raised.value).startswith(text)


def test_options_round_trip_and_json(plugin):
    s = plugin.settings
    original = s.Settings(strength=80, detail=50, resolution_cap=256, preserve_colors=True, style_scale=2.0,
                          advanced={"pooling": "avg", "seed": 7}, preview_interval_s=0.5, feather=2)
    back = s.from_options(s.to_options(original))
    assert back.strength == pytest.approx(80)
    assert (back.detail, back.resolution_cap, back.preserve_colors, back.style_scale) == (50, 256, True, 2.0)
    assert back.advanced == {"pooling": "avg", "seed": 7}
    assert (back.preview_interval_s, back.feather) == (0.5, 2)
    assert s.from_json(s.to_json(original)) == original
    assert s.from_json("not json") == s.Settings()
    assert s.from_json('{"detail": -5}') == s.Settings()


# ---- pixels ----------------------------------------------------------------------------------

def test_u8_bgra_becomes_rgba_and_back(plugin):
    px = plugin.pixels
    krita = bytes([10, 20, 30, 40, 1, 2, 3, 4])         # B, G, R, A twice
    wire = px.krita_to_wire(krita, "RGBA", "U8")
    assert wire == bytes([30, 20, 10, 40, 3, 2, 1, 4])
    assert px.wire_to_krita(wire, "RGBA", "U8") == krita


def test_u16_swaps_whole_samples(plugin):
    px = plugin.pixels
    krita = struct.pack("<8H", 1000, 2000, 3000, 65535, 1, 2, 3, 4)
    wire = px.krita_to_wire(krita, "RGBA", "U16")
    assert struct.unpack("<8H", wire) == (3000, 2000, 1000, 65535, 3, 2, 1, 4)
    assert px.wire_to_krita(wire, "RGBA", "U16") == krita


def test_f32_keeps_order_and_f16_becomes_f32(plugin):
    px = plugin.pixels
    f32 = struct.pack("<4f", 1.0, 0.25, 0.0, 0.5)
    assert px.krita_to_wire(f32, "RGBA", "F32") == f32
    f16 = struct.pack("<4e", 1.0, 0.25, 0.0, 0.5)
    assert px.krita_to_wire(f16, "RGBA", "F16") == f32
    assert px.wire_to_krita(f32, "RGBA", "F16") == f16
    huge = struct.pack("<2f", 1e6, -1e6)
    assert struct.unpack("<2e", px.wire_to_krita(huge, "GRAYA", "F16")) == (65504.0, -65504.0)


def test_gray_alpha_is_not_reordered(plugin):
    assert plugin.pixels.krita_to_wire(bytes([1, 2, 3, 4]), "GRAYA", "U8") == bytes([1, 2, 3, 4])


def test_wire_formats_and_refusals(plugin):
    px = plugin.pixels
    assert px.wire_format("L", "RGBA", "U8") == (4, "u8")
    assert px.wire_format("L", "RGBA", "U16") == (4, "u16")
    assert px.wire_format("L", "RGBA", "F16") == (4, "f32")
    assert px.wire_format("L", "GRAYA", "F32") == (2, "f32")
    with pytest.raises(px.UnsupportedLayer, match=r'Layer "Ink" is CMYKA.*Convert Image Color Space'):
        px.wire_format("Ink", "CMYKA", "U8")
    with pytest.raises(px.UnsupportedLayer, match=r'Layer "X" has F64'):
        px.wire_format("X", "RGBA", "F64")


def test_transfer_follows_the_profile(plugin):
    px = plugin.pixels
    assert px.transfer_of("sRGB-elle-V2-srgbtrc.icc") == "srgb"
    assert px.transfer_of("sRGB-elle-V2-g10.icc") == "linear"
    assert px.transfer_of("scRGB (linear)") == "linear"
    assert px.transfer_of("") == "srgb"


def test_conversion_of_a_large_layer_is_fast(plugin):
    import time
    data = bytes(range(256)) * (2048 * 2048 * 4 // 256)   # a 2048 px square 8-bit layer
    start = time.perf_counter()
    plugin.pixels.wire_to_krita(plugin.pixels.krita_to_wire(data, "RGBA", "U8"), "RGBA", "U8")
    assert time.perf_counter() - start < 2.0


# ---- region, naming, progress ----------------------------------------------------------------

def test_region_is_the_layer_cut_to_canvas_and_selection(plugin):
    r = plugin.region
    canvas = r.Rect(0, 0, 100, 80)
    assert r.job_region(r.Rect(-10, -10, 50, 50), canvas) == r.Rect(0, 0, 40, 40)
    assert r.job_region(r.Rect(0, 0, 100, 80), canvas, r.Rect(20, 10, 30, 40)) == r.Rect(20, 10, 30, 40)
    assert r.job_region(r.Rect(0, 0, 25, 25), canvas, r.Rect(20, 10, 30, 40)) == r.Rect(20, 10, 5, 15)
    assert r.job_region(r.Rect(0, 0, 10, 10), canvas, r.Rect(50, 50, 10, 10)) is None
    assert r.job_region(r.Rect(0, 0, 0, 0), canvas) is None
    assert r.job_region(r.Rect(200, 0, 10, 10), canvas) is None


def test_result_and_style_names(plugin):
    r = plugin.region
    assert r.result_layer_name("Layer 2", "starry night") == "Layer 2 – starry night"
    assert r.style_name_from_path("/x/y/starry_night.jpg") == "starry night"
    assert r.style_name_from_path("C:\\styles\\scream.png") == "scream"
    assert r.style_name_from_path("noext") == "noext"


def test_a_failed_jobs_layer_is_named_incomplete_once(plugin):
    r = plugin.region
    assert r.incomplete_layer_name("Paint – Starry") == "Paint – Starry (incomplete)"
    assert r.incomplete_layer_name("Paint – Starry (incomplete)") == "Paint – Starry (incomplete)"


def test_failure_text_names_the_layer_the_reason_and_what_was_kept(plugin):
    p = plugin.progress
    assert p.failure_text("no engine answers on tcp://x") == "No engine answers on tcp://x."
    assert p.failure_text("style file /s.png is damaged.", "Paint") == \
        'Layer "Paint" could not be stylized: style file /s.png is damaged.'
    assert p.failure_text("the engine stopped answering", "Sky", ["Sky – a (incomplete)"]) == \
        'Layer "Sky" could not be stylized: the engine stopped answering; the last preview is kept as layer ' \
        '"Sky – a (incomplete)".'
    assert p.failure_text("") == "The engine reported an error."


def test_progress_words_are_the_shared_ones(plugin):
    """The docker prints shared/progress.py's words (one copy for Krita, GIMP and the CLI)."""
    p = plugin.progress
    assert p.fraction({"iteration": 50, "iterations": 200}, 0, 1) == 0.25
    assert p.fraction({}, 1, 4) == 0.25
    assert p.progress_text({"iteration": 40, "iterations": 200, "eta_s": 12}, "Layer 2", 0, 1) == \
        "Layer 2 \u2013 iteration 40/200, about 12 s left"
    assert p.progress_text({}, "Sky", 1, 3) == "Sky (2/3)"


# ---- architecture rules -------------------------------------------------------------------------

def test_plugin_stays_thin():
    """No NumPy/TensorFlow in the plugin, and shared/ only through the relative `.shared`."""
    folder = os.path.join(PLUGIN_SOURCE, "neural_style")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            assert not re.search(r"^\s*(import|from)\s+(numpy|tensorflow|PIL)\b", text, re.M), name
            assert not re.search(r"^\s*(import|from)\s+shared\b", text, re.M), name


# ---- the live preview's pixels ------------------------------------------------------------

def test_preview_reads_every_step_th_row_and_column_down_to_160_px(plugin):
    pv = plugin.preview
    assert pv.step_for(160, 90) == 1 and pv.step_for(161, 90) == 2 and pv.step_for(4000, 3000) == 25
    assert pv.shrunk_size(4000, 3000, 25) == (160, 120)
    assert list(pv.sampled_rows(7, 3)) == [0, 3, 6]
    width, rows, size = 7, 3, 2     # 2 bytes per pixel: (column, row) in each pixel
    data = bytes(v for row in range(rows) for x in range(width) for v in (x, row))
    out = pv.pick_columns(data, width, rows, size, 3)
    assert out == bytes(v for row in range(rows) for x in (0, 3, 6) for v in (x, row))
    assert pv.pick_columns(data, width, rows, size, 1) == data


def test_preview_display_pixels_are_rgba8_from_any_format(plugin):
    pv = plugin.preview
    assert pv.display_rgba8(bytes([10, 20, 30, 40]), 1, 1, 4, "u8") == bytes([10, 20, 30, 40])
    assert pv.display_rgba8(bytes([7, 200]), 1, 1, 2, "u8") == bytes([7, 7, 7, 200])
    assert pv.display_rgba8(bytes([9, 8, 7]), 1, 1, 3, "u8") == bytes([9, 8, 7, 255])
    u16 = struct.pack("<4H", 65535, 0, 32768, 65535)
    assert pv.display_rgba8(u16, 1, 1, 4, "u16") == bytes([255, 0, 128, 255])
    f32 = struct.pack("<4f", 1.5, -0.2, 0.5, 1.0)
    assert pv.display_rgba8(f32, 1, 1, 4, "f32") == bytes([255, 0, 128, 255])
    # Linear light is encoded for the screen (0.2140 linear is sRGB 0.5); alpha is not.
    linear = pv.display_rgba8(struct.pack("<4f", 0.2140, 0.0, 1.0, 0.5), 1, 1, 4, "f32", "linear")
    assert abs(linear[0] - 128) <= 1 and linear[1:3] == bytes([0, 255]) and abs(linear[3] - 128) <= 1


def test_preview_options_are_applys_at_the_preview_size(plugin):
    s = plugin.settings
    options = s.to_options(s.Settings(strength=80, detail=120, resolution_cap=1024, feather=8,
                                      advanced={"optimizer": "adam"}))
    preview = s.preview_options(options, 4)
    assert preview["max_size"] == 160 and preview["feather"] == 2 and preview["preview_interval_s"] <= 0.5
    assert {k: v for k, v in preview.items() if k not in ("max_size", "feather", "preview_interval_s")} == {
        k: v for k, v in options.items() if k not in ("max_size", "feather", "preview_interval_s")}
    assert s.preview_options(s.to_options(s.Settings(resolution_cap=64)), 1)["max_size"] == 64


def test_advanced_shows_an_artists_words_beside_the_engine_names(plugin):
    s = plugin.settings
    assert s.layer_label("conv4_2") == "shapes (conv4_2)" and s.layer_label("conv1_1") == "finest strokes (conv1_1)"
    assert s.choice_label("optimizer", "lbfgs") == "Careful (L-BFGS)"
    assert s.choice_label("pooling", "avg") == "Soft (average)"
    for name in s.ADVANCED_OPTIONS:
        assert "_" not in s.advanced_label(name), name


# ---- animated layers: the worker waits for the frame the UI thread reads (worker_frames.py) -----

def test_the_worker_gets_the_frame_it_asked_the_ui_thread_for(plugin):
    asked = []
    frames = importlib.import_module(plugin.package + ".worker_frames")
    supply = frames.FrameSupply(lambda key, index: asked.append((key, index)), lambda: False)
    layer = importlib.import_module(plugin.package + ".payloads").LayerBytes(bytes([1, 2, 3, 4]), 1, 1, "RGBA", "U8", "srgb")
    threading.Timer(0.05, supply.give, (0, 2, layer)).start()     # the UI thread answers a little later
    pixels = supply.read(0, 2)
    assert asked == [(0, 2)]
    assert (pixels.width, pixels.height, pixels.dtype, pixels.data) == (1, 1, "u8", bytes([3, 2, 1, 4]))


def test_a_cancel_or_an_unreadable_frame_ends_the_workers_wait(plugin):
    frames = importlib.import_module(plugin.package + ".worker_frames")
    cancelled = threading.Event()
    supply = frames.FrameSupply(lambda key, index: None, cancelled.is_set)
    threading.Timer(0.05, cancelled.set).start()
    with pytest.raises(frames.FrameCancelled):
        supply.read(0, 0)
    supply = frames.FrameSupply(lambda key, index: supply.give(key, index, "The image was closed."), lambda: False)
    with pytest.raises(frames.FrameUnreadable, match="The image was closed."):
        supply.read(1, 0)
