"""`python -m engine_server stylize|losses`: end to end on small images, and one clear line for every bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine_server.cli.main import main
from tests.support.png16 import read_png16
from shared.options import defaults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "images")
RNG = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    """Logs and weights lookups stay inside the test's folders."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("NEURAL_STYLE_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """content.png (RGBA, 96x72, alpha gradient) and style.png, from ../shared/data when present."""
    folder = tmp_path_factory.mktemp("cli_images")
    content_file = os.path.join(DATA, "content", "tubingen.jpg")
    style_file = os.path.join(DATA, "style", "the_scream.jpg")
    if os.path.exists(content_file) and os.path.exists(style_file):
        content = Image.open(content_file).convert("RGB").resize((96, 72), Image.LANCZOS)
        style = Image.open(style_file).convert("RGB").resize((80, 100), Image.LANCZOS)
    else:
        y, x = np.mgrid[0:72, 0:96]
        content = Image.fromarray(np.dstack([x * 2, y * 3, (x + y)]).astype(np.uint8))
        style = Image.fromarray(RNG.integers(0, 256, (100, 80, 3), dtype=np.uint8))
    alpha = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (72, 1))
    rgba = np.dstack([np.asarray(content), alpha])
    Image.fromarray(rgba, "RGBA").save(folder / "content.png")
    style.save(folder / "style.png")
    return {"content": str(folder / "content.png"), "style": str(folder / "style.png"), "alpha": alpha,
            "folder": folder}


def run_cli(*argv):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "engine_server"] + [str(a) for a in argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_stylize_end_to_end_json_progress_and_alpha(images, fake_weights, tmp_path):
    out = tmp_path / "out.png"
    done = run_cli("stylize", images["content"], images["style"], "-o", out, "--weights", fake_weights,
                   "--size", 64, "--iterations", 4, "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""                      # TensorFlow's own chatter goes to the log file
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["iteration"] for e in events] == [1, 2, 3, 4]
    for event in events:
        assert {"scale", "iteration", "content_loss", "style_loss", "total_loss", "elapsed_s"} <= set(event)
    result = Image.open(out)
    assert result.mode == "RGBA" and result.size == (64, 48)
    expected_alpha = np.asarray(Image.fromarray(images["alpha"]).resize((64, 48), Image.LANCZOS), np.float32)
    assert np.abs(np.asarray(result)[..., 3].astype(np.float32) - expected_alpha).max() <= 2.0
    assert os.path.getsize(tmp_path / "state" / "neural-style" / "engine.log") > 0


def test_losses_end_to_end(images, fake_weights, capsys):
    code = main(["losses", images["content"], images["style"], "--image", images["content"], "--weights",
                 fake_weights, "--style-layers", "conv1_1,block2_conv1", "--style-layer-weights", "2,3",
                 "--tv-weight", "0.5", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert set(result["style_layers"]) == {"conv1_1", "block2_conv1"}
    assert result["content_loss"] == pytest.approx(0.0, abs=1e-3)     # the content against itself
    style = 2 * result["style_layers"]["conv1_1"] + 3 * result["style_layers"]["block2_conv1"]
    assert result["style_loss"] == pytest.approx(style, rel=1e-4)
    assert result["total_loss"] == pytest.approx(defaults()["style_weight"] * style + 0.5 * result["tv_loss"],
                                                 rel=1e-4)
    weighted = result["weighted"]
    assert set(weighted["style"]) == {"conv1_1", "block2_conv1"} and result["loss_normalization"] == "size"
    assert weighted["content"] + sum(weighted["style"].values()) + weighted["tv"] == pytest.approx(
        result["total_loss"], rel=1e-9)


def test_losses_with_seed_normalization_are_the_lecture_sums(images, fake_weights, capsys):
    """--loss-normalization seed prints ½Σ(F−P)² and E_l = Σ(G−A)²/(4N²M²), as core losses() with "seed"."""
    from engine_server.core.images import load_rgb
    from engine_server.core.model import VGG19Features
    from engine_server.core.stylize import StyleInput, losses

    common = [images["content"], images["style"], "--image", images["style"], "--weights", fake_weights,
              "--style-layers", "conv1_1,conv2_1", "--json"]
    results = {}
    for normalization in ("seed", "size"):
        assert main(["losses"] + common + ["--loss-normalization", normalization]) == 0
        results[normalization] = json.loads(capsys.readouterr().out)
    content, style = load_rgb(images["content"]), load_rgb(images["style"])
    model = VGG19Features.load(fake_weights, precision="float32")
    direct = losses(model, content, [StyleInput(style)], style,
                    dict(defaults(), loss_normalization="seed", style_layers=("conv1_1", "conv2_1"),
                         style_layer_weights=(1.0, 1.0)))
    seed = results["seed"]
    assert seed["loss_normalization"] == "seed"
    assert seed["content_loss"] == pytest.approx(direct["content_loss"], rel=1e-4)
    assert seed["style_layers"]["conv1_1"] == pytest.approx(direct["style_layers"]["block1_conv1"], rel=1e-4)
    assert seed["weighted"]["content"] == pytest.approx(defaults()["content_weight"] * seed["content_loss"])
    assert results["size"]["content_loss"] != pytest.approx(seed["content_loss"], rel=0.5)


def test_sixteen_bit_output_and_conversions(images, fake_weights, tmp_path, capsys):
    gray_palette = tmp_path / "palette.png"
    Image.open(images["style"]).convert("P", palette=Image.ADAPTIVE, colors=16).save(gray_palette)
    cmyk = tmp_path / "cmyk.jpg"
    Image.open(images["style"]).convert("CMYK").save(cmyk)
    gray16 = tmp_path / "gray16.png"
    Image.fromarray((np.asarray(Image.open(images["content"]).convert("L"), np.uint16) * 257)).save(gray16)
    out = tmp_path / "out16.png"
    code = main(["stylize", str(gray16), str(gray_palette), str(cmyk), "-o", str(out), "--weights", fake_weights,
                 "--size", "48", "--iterations", "2", "--16bit", "--style-blend-weights", "1,2"])
    assert code == 0, capsys.readouterr().err
    pixels = read_png16(str(out))
    assert pixels.shape == (36, 48, 3) and pixels.dtype == np.uint16
    assert len(np.unique(pixels)) > 256            # really 16-bit values


def test_init_from_a_file_and_preserve_colors(images, fake_weights, tmp_path, capsys):
    out = tmp_path / "o.jpg"
    code = main(["stylize", images["content"], images["style"], "-o", str(out), "--weights", fake_weights,
                 "--size", "40", "--iterations", "1", "--init", images["style"], "--preserve-colors",
                 "--pooling", "avg", "--optimizer", "adam"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == (40, 30)


def bad_inputs(images, tmp_path, fake_weights):
    content, style = images["content"], images["style"]
    text = tmp_path / "text.png"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.png"
    data = open(content, "rb").read()
    truncated.write_bytes(data[:len(data) // 2])   # the generated content is only a few hundred bytes
    from tests.test_core_images import png_with_header
    zero = tmp_path / "zero.png"
    zero.write_bytes(png_with_header(0, 5))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_header(30000, 30000))
    bad_weights = tmp_path / "weights.h5"
    bad_weights.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    out = str(tmp_path / "out.png")
    ok = ["--weights", fake_weights, "-o", out, "--size", "32", "--iterations", "1"]
    return {
        "missing content": (["stylize", tmp_path / "nope.jpg", style] + ok, "does not exist"),
        "missing style": (["stylize", content, tmp_path / "nope.jpg"] + ok, "does not exist"),
        "not an image": (["stylize", content, text] + ok, "not an image"),
        "truncated": (["stylize", truncated, style] + ok, "truncated"),
        "zero pixels": (["stylize", zero, style] + ok, "no pixels"),
        "bomb": (["stylize", content, bomb] + ok, "decompression bomb"),
        "size zero": (["stylize", content, style] + ok + ["--size", "0"], "--size must be between"),
        "size huge": (["stylize", content, style] + ok + ["--size", "1000000"], "--size must be between"),
        "size text": (["stylize", content, style] + ok + ["--size", "big"], "--size must be an integer"),
        "iterations": (["stylize", content, style] + ok + ["--iterations", "-3"], "--iterations must be between"),
        "negative weight": (["stylize", content, style] + ok + ["--style-weight", "-1"], "--style-weight"),
        "absurd weight": (["stylize", content, style] + ok + ["--content-weight", "1e300"], "--content-weight"),
        "nan weight": (["stylize", content, style] + ok + ["--tv-weight", "nan"], "--tv-weight"),
        "layer weights count": (["stylize", content, style] + ok + ["--style-layer-weights", "1,2"],
                                "one weight per style layer"),
        "blend count": (["stylize", content, style] + ok + ["--style-blend-weights", "1,2"], "one weight per style"),
        "unknown content layer": (["stylize", content, style] + ok + ["--content-layer", "conv9_9"],
                                  "unknown VGG-19 layer"),
        "unknown style layer": (["stylize", content, style] + ok + ["--style-layers", "conv1_1,fc7"],
                                "unknown VGG-19 layer"),
        "pooling": (["stylize", content, style] + ok + ["--pooling", "median"], "--pooling must be one of"),
        "init missing": (["stylize", content, style] + ok + ["--init", tmp_path / "none.png"], "does not exist"),
        "no output folder": (["stylize", content, style, "-o", tmp_path / "no" / "o.png"], "does not exist"),
        "16bit jpeg": (["stylize", content, style, "-o", tmp_path / "o.jpg", "--16bit"], "--16bit needs a .png"),
        "missing weights": (["stylize", content, style, "-o", out, "--weights", tmp_path / "w.h5"], "--weights PATH"),
        "bad weights": (["stylize", content, style, "-o", out, "--weights", bad_weights], "--weights PATH"),
        "no style": (["stylize", content, "-o", out], "required"),
        "losses without image": (["losses", content, style], "--image"),
        "losses bad candidate": (["losses", content, style, "--image", text, "--weights", fake_weights],
                                 "not an image"),
        "too small for the layers": (["losses", content, style, "--image", content, "--weights", fake_weights,
                                      "--size", "16", "--content-layer", "conv5_2"], "too small"),
    }


CASES = ["missing content", "missing style", "not an image", "truncated", "zero pixels", "bomb", "size zero",
         "size huge", "size text", "iterations", "negative weight", "absurd weight", "nan weight",
         "layer weights count", "blend count", "unknown content layer", "unknown style layer", "pooling",
         "init missing", "no output folder", "16bit jpeg", "missing weights", "bad weights", "no style",
         "losses without image", "losses bad candidate", "too small for the layers"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_a_nonzero_exit(case, images, tmp_path, fake_weights, capsys):
    argv, expected = bad_inputs(images, tmp_path, fake_weights)[case]
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:              # argparse's own refusals
        code = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code not in (0, None)
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not os.path.exists(tmp_path / "out.png")


def test_a_bad_weights_file_in_a_real_process_is_one_line(images, tmp_path):
    done = run_cli("stylize", images["content"], images["style"], "-o", tmp_path / "o.png",
                   "--weights", tmp_path / "missing.h5")
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: VGG-19 weights file")
    assert "Traceback" not in done.stderr
