"""Tiled passes give what one pass over the whole image gives (on images that fit both ways)."""

import numpy as np
import pytest

from engine_server.core import tiling
from engine_server.core.losses import Objective, feature_positions, gram, rescale_gram
from engine_server.core.model import layer_names
from shared.options import defaults

SIZE = (181, 203)          # not multiples of the pooling grid: the last cores are partial
CORE = 96                  # 2 x 3 tiles


def random_image(seed, size=SIZE):
    rng = np.random.default_rng(seed)
    smooth = rng.uniform(0, 255, (size[0] // 8 + 2, size[1] // 8 + 2, 3))
    image = np.kron(smooth, np.ones((8, 8, 1)))[:size[0], :size[1]]
    return np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.float32)


def build_objective(model, options):
    style_layers = layer_names(options["style_layers"])
    content_layer = layer_names([options["content_layer"]])[0]
    style = random_image(2, (120, 150))
    style_features = model.features(style, style_layers)
    targets = {name: rescale_gram(gram(style_features[name]).numpy(), feature_positions(style.shape[:2], name),
                                  feature_positions(SIZE, name)) for name in style_layers}
    content = model.features(random_image(1), [content_layer])[content_layer].numpy()
    return Objective(model, options, content if options["content_weight"] else None, targets)


def assert_same_evaluation(untiled, tiled):
    value, grad, parts = untiled
    tiled_value, tiled_grad, tiled_parts = tiled
    assert tiled_value == pytest.approx(value, rel=2e-4)
    for key in ("content_loss", "style_loss", "tv_loss"):
        assert tiled_parts[key] == pytest.approx(parts[key], rel=2e-4, abs=1e-6 * abs(value)), key
    scale = np.max(np.abs(grad))
    assert scale > 0
    assert np.max(np.abs(tiled_grad - grad)) <= 2e-4 * scale, np.max(np.abs(tiled_grad - grad)) / scale


@pytest.mark.parametrize("content_weight, normalization", [(1.0, "size"), (0.0, "size"), (1.0, "seed")])
def test_tiled_loss_and_gradient_match_the_untiled_ones(fake_model, content_weight, normalization):
    options = dict(defaults(), content_weight=content_weight, loss_normalization=normalization)
    objective = build_objective(fake_model, options)
    image = random_image(3)
    tiled = tiling.TiledObjective(objective, CORE)
    assert len(tiling.TileGrid(SIZE, tiled._layers, CORE).tiles) == 6
    assert_same_evaluation(objective.evaluate(image), tiled.evaluate(image))


def test_a_halo_one_grid_step_too_small_gives_a_different_gradient(fake_model, monkeypatch):
    """The check above can fail: with less context than the receptive field the cores' features are wrong."""
    # The lecture's objective with deep layers weighted up (the former defaults): conv5_1 counts.
    objective = build_objective(fake_model, dict(defaults(), loss_normalization="seed", content_weight=1.0,
                                                 style_weight=1e4, style_layer_weights=(1.0, 2.0, 3.0, 4.0, 5.0)))
    image = random_image(3)
    untiled = objective.evaluate(image)
    grid, halo = tiling.grid_and_halo(objective.style_layers + (objective.content_layer,))
    monkeypatch.setattr(tiling, "grid_and_halo", lambda layers: (grid, halo - grid))
    _, tiled_grad, _ = tiling.TiledObjective(objective, CORE).evaluate(image)
    assert np.max(np.abs(tiled_grad - untiled[1])) > 1e-2 * np.max(np.abs(untiled[1]))


def test_grid_and_halo_follow_the_receptive_field():
    assert tiling.grid_and_halo(["conv1_1"]) == (1, 1)
    assert tiling.grid_and_halo(["conv1_2"]) == (1, 2)
    assert tiling.grid_and_halo(["conv2_1"]) == (2, 4)
    grid, halo = tiling.grid_and_halo(["conv1_1", "conv5_1"])
    assert (grid, halo) == (16, 80)      # conv5_1 sees 70 pixels before its 16-pixel cell, 74 after


def test_tiled_grams_and_features_match_one_pass(fake_model):
    image = random_image(4)
    layers = layer_names(["conv1_1", "conv3_1", "conv5_1"])
    whole = fake_model.features(image, layers)
    grams = tiling.tiled_grams(fake_model, image, layers, "max", 64)
    for name in layers:
        expected = gram(whole[name]).numpy()
        np.testing.assert_allclose(grams[name], expected, rtol=1e-4, atol=1e-5 * np.max(np.abs(expected)))
    features = tiling.tiled_features(fake_model, image, "conv4_2", "max", 64)
    expected = fake_model.features(image, ["conv4_2"])["block4_conv2"].numpy()
    assert features.shape == expected.shape
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5 * np.max(np.abs(expected)))


def test_tiles_cover_the_image_once_and_stay_on_the_pooling_grid():
    grid = tiling.TileGrid((1000, 777), ["conv5_1"], 250)
    assert grid.core == 240 and grid.halo == 80
    covered = np.zeros((1000, 777), int)
    for rows, cols in grid.tiles:
        covered[rows.start:rows.end, cols.start:cols.end] += 1
        for span in (rows, cols):
            assert span.lo % 16 == 0 and span.start % 16 == 0
            assert span.start - span.lo in (0, 80)
    assert (covered == 1).all()
