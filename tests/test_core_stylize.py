"""Optimizers and stylize(): loss goes down, determinism, cancel, the Gram cache, progress, options."""

import numpy as np
import pytest

from engine_server.core.errors import Cancelled, InputError
from engine_server.core.losses import Objective
from engine_server.core.optimize import LBFGS, Adam
from engine_server.core.stylize import Progress, StyleInput, losses, plan_scales, split_iterations, stylize
from shared.options import defaults, validate_options

RNG = np.random.default_rng(7)
CONTENT = np.clip(np.add.outer(np.linspace(0, 200, 40), np.linspace(0, 50, 48))[..., None]
                  + RNG.uniform(0, 50, (40, 48, 3)), 0, 255).astype(np.float32)
STYLE = RNG.uniform(0, 255, (36, 44, 3)).astype(np.float32)
SMALL = validate_options({"iterations": 4, "max_size": 48})


def quadratic(n=60, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    q = a @ a.T + np.eye(n)
    b = rng.normal(size=n)
    return (lambda x: (0.5 * x @ q @ x - b @ x, q @ x - b, None)), np.linalg.solve(q, b), q, b


def test_lbfgs_solves_a_quadratic():
    fun, solution, _, _ = quadratic()
    optimizer = LBFGS(lambda x: fun(x.astype(np.float64)), np.zeros(60))
    for _ in range(80):
        optimizer.step()
    np.testing.assert_allclose(optimizer.best_x, solution, atol=1e-3)


def test_lbfgs_with_bounds_stays_inside_and_finds_the_box_minimum():
    # min ½|x - c|² over [0, 1]: the answer is clip(c, 0, 1).
    c = np.array([-2.0, 0.3, 0.7, 5.0, 1.2, -0.1])
    optimizer = LBFGS(lambda x: (0.5 * np.sum((x - c) ** 2), x - c, None), np.full(6, 0.5), bounds=(0.0, 1.0))
    for _ in range(20):
        optimizer.step()
        assert optimizer.x.min() >= 0.0 and optimizer.x.max() <= 1.0
    np.testing.assert_allclose(optimizer.best_x, np.clip(c, 0, 1), atol=1e-5)


def test_adam_lowers_a_quadratic():
    fun, solution, _, _ = quadratic(10)
    optimizer = Adam(lambda x: fun(x.astype(np.float64)), np.zeros(10), learning_rate=0.05, bounds=None)
    start = optimizer.value
    for _ in range(200):
        optimizer.step()
    assert optimizer.best_value < start
    assert np.abs(optimizer.best_x - solution).max() < np.abs(solution).max()


def test_gradient_matches_finite_differences(fake_model):
    options = dict(defaults(), style_layers=("conv1_1", "conv2_1"), style_layer_weights=(1.0, 1.0),
                   content_layer="conv2_1", tv_weight=0.1)
    content = fake_model.features(CONTENT[:16, :16], ["conv2_1"])["block2_conv1"].numpy()
    from engine_server.core.losses import gram
    style = {name: gram(f).numpy() for name, f in fake_model.features(STYLE[:16, :16], ["conv1_1", "conv2_1"]).items()}
    objective = Objective(fake_model, options, content, style)
    x = RNG.uniform(60, 190, (16, 16, 3)).astype(np.float32)
    direction = RNG.normal(size=x.shape).astype(np.float32)
    _, grad, _ = objective.evaluate(x)
    eps = 0.5
    plus, _, _ = objective.evaluate(x + eps * direction)
    minus, _, _ = objective.evaluate(x - eps * direction)
    assert (plus - minus) / (2 * eps) == pytest.approx(float(np.sum(grad.astype(np.float64) * direction)), rel=2e-2)


def test_plan_scales_coarse_to_fine():
    options = defaults()
    layers = ("block5_conv1",)
    assert plan_scales((384, 512), options, layers) == [(192, 256), (384, 512)]
    assert plan_scales((192, 256), options, layers) == [(192, 256)]
    assert plan_scales((1536, 2048), options, layers) == [(192, 256), (384, 512), (768, 1024), (1536, 2048)]
    assert plan_scales((384, 512), dict(options, scales=2), layers) == [(192, 256), (384, 512)]
    assert plan_scales((40, 48), dict(options, scales=3), layers) == [(20, 24), (40, 48)]   # 10x12 is too small
    counts = split_iterations(200, 3)
    assert sum(counts) == 200 and counts[0] > counts[1] > counts[2] >= 1


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_stylize_lowers_the_total_loss(fake_model, optimizer):
    # The lecture's objective at its former defaults, for which "halved in 8 iterations" was set.
    options = validate_options({"iterations": 8, "max_size": 48, "optimizer": optimizer, "learning_rate": 4.0,
                                "loss_normalization": "seed", "content_weight": 1.0, "style_weight": 1e4,
                                "style_layer_weights": [1.0, 2.0, 3.0, 4.0, 5.0]})
    seen = []
    result = stylize(fake_model, CONTENT, [StyleInput(STYLE)], options, on_progress=seen.append)
    assert result.shape == (40, 48, 3) and result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 255.0
    before = losses(fake_model, CONTENT, [StyleInput(STYLE)], CONTENT, options)["total_loss"]
    after = losses(fake_model, CONTENT, [StyleInput(STYLE)], result, options)["total_loss"]
    assert after < 0.5 * before
    assert [p.iteration for p in seen] == list(range(1, 9))
    assert all(isinstance(p, Progress) and p.iterations == 8 and p.stage == "optimize" for p in seen)
    assert seen[-1].total_loss == pytest.approx(
        options["content_weight"] * seen[-1].content_loss + options["style_weight"] * seen[-1].style_loss
        + options["tv_weight"] * seen[-1].tv_loss, rel=1e-4)
    assert seen[-1].image().shape == (40, 48, 3)
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(seen, seen[1:]))


def test_same_seed_same_pixels_other_seed_other_pixels(fake_model):
    options = dict(SMALL, init="noise", seed=11)
    a = stylize(fake_model, CONTENT, [StyleInput(STYLE)], options)
    b = stylize(fake_model, CONTENT, [StyleInput(STYLE)], options)
    c = stylize(fake_model, CONTENT, [StyleInput(STYLE)], dict(options, seed=12))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_content_init_is_deterministic_with_several_scales(fake_model):
    options = dict(SMALL, iterations=5, scales=2)
    a = stylize(fake_model, CONTENT, [StyleInput(STYLE)], options)
    b = stylize(fake_model, CONTENT, [StyleInput(STYLE)], options)
    np.testing.assert_array_equal(a, b)


def test_cancel_is_checked_every_iteration_and_the_last_preview_stays_usable(fake_model):
    calls = []

    def should_cancel():
        calls.append(1)
        return len(calls) > 3

    seen = []
    with pytest.raises(Cancelled) as caught:
        stylize(fake_model, CONTENT, [StyleInput(STYLE)], dict(SMALL, iterations=50), on_progress=seen.append,
                should_cancel=should_cancel)
    assert len(seen) == 2            # checks: before scale 1, before iterations 1, 2, 3 -> cancelled
    assert str(caught.value) == "cancelled"
    last = seen[-1].image()          # what a caller keeps of a cancelled job
    assert last.shape[2] == 3 and 0 <= last.min() and last.max() <= 255


class RecordingCache:
    def __init__(self):
        self.store, self.gets, self.puts = {}, [], []

    def get(self, key, size, layer, pooling):
        self.gets.append((key, size, layer, pooling))
        return self.store.get((key, size, layer, pooling))

    def put(self, key, size, layer, pooling, gram):
        self.puts.append((key, size, layer, pooling))
        self.store[(key, size, layer, pooling)] = np.array(gram)


def test_gram_cache_is_asked_filled_and_saves_forward_passes(fake_model):
    cache = RecordingCache()
    options = dict(SMALL, iterations=3)
    before = fake_model.passes
    first = stylize(fake_model, CONTENT, [StyleInput(STYLE, key="style-1")], options, gram_cache=cache)
    cold = fake_model.passes - before
    layers = {"block%d_conv1" % b for b in range(1, 6)}
    assert {entry[2] for entry in cache.puts} == layers
    assert all(key == "style-1" and pooling == "max" and size == (39, 48) for key, size, _, pooling in cache.puts)
    before = fake_model.passes
    second = stylize(fake_model, CONTENT, [StyleInput(STYLE, key="style-1")], options, gram_cache=cache)
    warm = fake_model.passes - before
    assert warm == cold - 1                      # the style image's VGG pass is answered by the cache
    assert len(cache.puts) == len(layers)        # nothing new stored
    np.testing.assert_array_equal(first, second)


def test_unkeyed_styles_bypass_the_cache(fake_model):
    cache = RecordingCache()
    stylize(fake_model, CONTENT, [StyleInput(STYLE)], dict(SMALL, iterations=1), gram_cache=cache)
    assert cache.gets == [] and cache.puts == []


def test_objective_pass_counting(fake_model):
    before = fake_model.passes
    stylize(fake_model, CONTENT, [StyleInput(STYLE)], dict(SMALL, iterations=2, optimizer="adam"))
    # content features + style features + one evaluation at the start + one per Adam step
    assert fake_model.passes - before == 2 + 1 + 2


def test_blend_weights_pick_the_style(fake_model):
    other = np.full((36, 44, 3), 128, np.float32) + RNG.normal(0, 3, (36, 44, 3)).astype(np.float32)
    options = dict(SMALL, iterations=6)
    only_first = stylize(fake_model, CONTENT, [StyleInput(STYLE), StyleInput(other)],
                         dict(options, style_blend_weights=(1.0, 0.0)))
    alone = stylize(fake_model, CONTENT, [StyleInput(STYLE)], options)
    np.testing.assert_allclose(only_first, alone, atol=1e-2)
    mixed = stylize(fake_model, CONTENT, [StyleInput(STYLE, weight=1.0), StyleInput(other, weight=1.0)], options)
    assert not np.allclose(mixed, alone, atol=1.0)


def test_bad_blend_weights_are_refused(fake_model):
    with pytest.raises(InputError, match="one weight per style"):
        stylize(fake_model, CONTENT, [StyleInput(STYLE)], dict(SMALL, style_blend_weights=(1.0, 2.0)))
    with pytest.raises(InputError, match="positive sum"):
        stylize(fake_model, CONTENT, [StyleInput(STYLE, weight=0.0)], SMALL)


def test_preserve_colors_keeps_the_contents_chroma(fake_model):
    from engine_server.core import colors

    result = stylize(fake_model, CONTENT, [StyleInput(STYLE)], dict(SMALL, preserve_colors=True))
    got, want = colors.rgb_to_yiq(result), colors.rgb_to_yiq(CONTENT)
    inside = (result.min(axis=-1) > 1) & (result.max(axis=-1) < 254)      # clipping can shift chroma
    np.testing.assert_allclose(got[..., 1:][inside], want[..., 1:][inside], atol=0.5)
    assert np.abs(got[..., 0] - want[..., 0]).mean() > 1.0                # the luminance did change


def test_style_scale_changes_the_style_target(fake_model):
    cache = RecordingCache()
    stylize(fake_model, CONTENT, [StyleInput(STYLE, key="s")], dict(SMALL, iterations=1, style_scale=0.5),
            gram_cache=cache)
    assert {entry[1] for entry in cache.puts} == {(20, 24)}


def test_init_image_and_working_size(fake_model):
    big = np.repeat(np.repeat(CONTENT, 2, axis=0), 2, axis=1)         # 80x96
    start = np.full((10, 10, 3), 200.0, np.float32)
    result = stylize(fake_model, big, [StyleInput(STYLE)], dict(SMALL, iterations=1), init_image=start)
    assert result.shape == (40, 48, 3)                                  # longest side capped at max_size


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.float32), np.full((20, 20, 3), np.nan, np.float32)])
def test_bad_arrays_are_refused(fake_model, bad):
    with pytest.raises(InputError):
        stylize(fake_model, bad, [StyleInput(STYLE)], SMALL)
