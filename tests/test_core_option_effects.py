"""Every job option is tested by its effect on the result, through the command line's flags.

Each case runs `python -m engine_server stylize` (in-process) twice, with and without the option (or
with two values of it), on a 64x48 image for a few iterations, float32, fixed seed, 16-bit PNG out.
The same command run twice gives the same bytes (checked first), so "differs" means the option
reached the optimization. The checks hold for any sensible loss normalization: they compare runs,
never absolute loss values.
"""

import json

import numpy as np
import pytest
from PIL import Image

from engine_server.cli.main import main
from engine_server.core.colors import rgb_to_yiq
from tests.support.png16 import read_png16
from tests.test_core_cli import private_state  # noqa: F401 (autouse: logs and weights stay in tmp)

SIZE = (64, 48)
BASE = ["--size", "64", "--iterations", "6", "--seed", "3"]
DIFFERENT = 1.0 / 255      # mean |difference| (0..1 scale) above which two results are not the same




@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """content.png at exactly the working size (no resampling between the content and the result),
    two different styles, and an init image unlike the content."""
    folder = tmp_path_factory.mktemp("option_effects")
    y, x = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    content = np.dstack([x * 3 + 40, y * 4 + 30, 255 - x * 2 - y]).clip(0, 255).astype(np.uint8)
    rng = np.random.default_rng(21)
    stripes = np.dstack([(np.sin(x / 2.0) * 120 + 128), (np.cos(y / 3.0) * 120 + 128), x * 0 + 60])
    paths = {"content": folder / "content.png", "style_a": folder / "style_a.png", "style_b": folder / "style_b.png",
             "init": folder / "init.png", "content_copy": folder / "content_copy.png", "noise": folder / "noise.png"}
    Image.fromarray(content).save(paths["content"])
    Image.fromarray(content).save(paths["content_copy"])
    Image.fromarray(rng.integers(0, 256, (56, 72, 3), dtype=np.uint8)).save(paths["style_a"])
    Image.fromarray(np.resize(stripes.clip(0, 255).astype(np.uint8), (56, 72, 3))).save(paths["style_b"])
    Image.fromarray(np.dstack([y * 5, x * 0 + 200, x * 4]).clip(0, 255).astype(np.uint8)).save(paths["init"])
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture
def run(files, fake_weights, tmp_path, capsys):
    count = [0]

    def stylize(*extra, styles=("style_a",), content="content"):
        count[0] += 1
        out = str(tmp_path / ("out%d.png" % count[0]))
        argv = ["stylize", files[content]] + [files[s] for s in styles] + [
            "-o", out, "--weights", fake_weights, "--16bit"] + BASE + [str(a) for a in extra]
        code = main(argv)
        assert code == 0, capsys.readouterr().err
        pixels = read_png16(out).astype(np.float64) / 65535
        assert pixels.shape[:2] == (SIZE[1], SIZE[0]), pixels.shape
        return pixels[..., :3]
    return stylize


def mean_difference(a, b):
    return float(np.abs(a - b).mean())


def content_pixels(files):
    return np.asarray(Image.open(files["content"]).convert("RGB"), np.float64) / 255


def test_the_same_command_gives_the_same_result(run, files):
    first, second = run(), run()
    assert np.array_equal(first, second), "two identical runs differ: 'differs' below would prove nothing"
    assert mean_difference(first, content_pixels(files)) > DIFFERENT, "the run did not change the content"


def test_init_image_is_where_the_optimization_starts(run, files):
    default = run()
    same_as_content = run("--init", files["content_copy"])
    other = run("--init", files["init"])
    assert np.abs(same_as_content - default).max() <= 1 / 65535, "--init with the content's own pixels " \
        "must give the default (init from content) result"
    assert mean_difference(other, default) > DIFFERENT, "--init FILE was ignored"
    init = np.asarray(Image.open(files["init"]).convert("RGB"), np.float64) / 255
    assert mean_difference(other, init) < mean_difference(default, init), \
        "a run started from the init image is not closer to it than one started from the content"


def test_init_noise_depends_on_the_seed(run):
    assert mean_difference(run("--init", "noise"), run()) > DIFFERENT
    assert mean_difference(run("--init", "noise", "--seed", "4"), run("--init", "noise")) > DIFFERENT


def test_preserve_colors_keeps_the_contents_chroma(run, files):
    content_iq = rgb_to_yiq(content_pixels(files) * 255)[..., 1:]
    plain = rgb_to_yiq(run() * 255)[..., 1:]
    kept = rgb_to_yiq(run("--preserve-colors") * 255)[..., 1:]
    plain_error, kept_error = np.abs(plain - content_iq).mean(), np.abs(kept - content_iq).mean()
    print("mean |I,Q - content's| of 255: %.3f without, %.3f with --preserve-colors" % (plain_error, kept_error))
    assert kept_error < 1.0, "--preserve-colors: the result's chroma is not the content's (%.3f)" % kept_error
    assert plain_error > 5 * kept_error, "without --preserve-colors the chroma should move (%.3f)" % plain_error


def test_blend_weights(run):
    single = run(styles=("style_a",))
    one_zero = run("--style-blend-weights", "1,0", styles=("style_a", "style_b"))
    assert np.abs(one_zero - single).max() <= 2 / 65535, "weights 1,0 must give the first style's own result"
    even = run("--style-blend-weights", "1,1", styles=("style_a", "style_b"))
    uneven = run("--style-blend-weights", "1,3", styles=("style_a", "style_b"))
    assert mean_difference(even, uneven) > DIFFERENT, "blend weights 1,1 and 1,3 gave the same result"
    assert mean_difference(even, single) > DIFFERENT


@pytest.mark.parametrize("flag, first, second", [
    ("--pooling", "max", "avg"),
    ("--optimizer", "lbfgs", "adam"),
    ("--style-layer-weights", "1,1,1,1,1", "20,1,1,1,1"),
    ("--style-scale", "0.5", "2.0"),
])
def test_option_changes_the_result(run, flag, first, second):
    a, b = run(flag, first), run(flag, second)
    assert mean_difference(a, b) > DIFFERENT, "%s %s and %s gave the same result" % (flag, first, second)


def total_variation(image):
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def test_tv_weight_smooths_the_result(run, files):
    """Without a style term the content is already optimal: TV weight 0 leaves it, a TV weight
    makes the result smoother than it (noise as the content, so there is something to smooth)."""
    noise = np.asarray(Image.open(files["style_a"]).convert("RGB").resize(SIZE), np.float64) / 255
    Image.fromarray((noise * 255).round().astype(np.uint8)).save(files["noise"])
    kept = run("--style-weight", "0", "--tv-weight", "0", content="noise")
    smooth = run("--style-weight", "0", "--tv-weight", "100", content="noise")
    print("total variation: content %.4f, with --tv-weight 0 %.4f, with 100 %.4f" % (
        total_variation(noise), total_variation(kept), total_variation(smooth)))
    assert np.abs(kept - noise).max() <= 1 / 255, "with no style and no TV term the content must stay"
    assert total_variation(smooth) < 0.8 * total_variation(noise), "--tv-weight did not smooth the result"


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_pooling_reaches_the_style_targets_and_the_objective_alike(files, fake_weights, capsys, pooling):
    """The style image's own style loss is zero only when its Gram targets and the objective pool
    alike; another image's is not."""
    def style_loss(candidate):
        code = main(["losses", files["content"], files["style_a"], "--image", files[candidate], "--weights",
                     fake_weights, "--pooling", pooling, "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return json.loads(captured.out)["style_loss"]
    own, other = style_loss("style_a"), style_loss("content")
    assert other > 0 and own <= 1e-4 * other, "--pooling %s: the style's own style loss is %g (another image: %g)" % (
        pooling, own, other)
