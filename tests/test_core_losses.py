"""Losses, preprocessing, layer names and the forward pass, each against an independent NumPy computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from engine_server.core import losses
from engine_server.core.errors import InputError
from engine_server.core.model import CONV_LAYERS, IMAGENET_MEAN_BGR, layer_names, preprocess
from engine_server.core.stylize import StyleInput
from engine_server.core.stylize import losses as image_losses
from shared.options import VGG_LAYERS, defaults, keras_layer_name, lecture_layer_name

RNG = np.random.default_rng(42)


def numpy_gram(features):
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return flat.T @ flat


def test_gram_is_sum_over_positions_of_outer_products():
    features = RNG.uniform(0, 3, (1, 5, 6, 4)).astype(np.float32)
    expected = np.zeros((4, 4))
    for i in range(5):
        for j in range(6):
            f = features[0, i, j].astype(np.float64)
            expected += np.outer(f, f)
    np.testing.assert_allclose(losses.gram(tf.constant(features)).numpy(), expected, rtol=1e-5)


def test_gram_gradient_is_f_times_upstream_plus_its_transpose():
    """gram() has its own one-matmul gradient; check it against dΣ(G ⊙ R)/dF = F (R + Rᵀ), R not symmetric."""
    features = tf.constant(RNG.normal(size=(1, 5, 6, 4)).astype(np.float32))
    weights = RNG.normal(size=(4, 4)).astype(np.float32)
    with tf.GradientTape() as tape:
        tape.watch(features)
        value = tf.reduce_sum(losses.gram(features) * weights)
    flat = features.numpy().reshape(-1, 4).astype(np.float64)
    expected = (flat @ (weights + weights.T)).reshape(1, 5, 6, 4)
    np.testing.assert_allclose(tape.gradient(value, features).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_content_loss_is_half_sum_of_squares():
    f = RNG.normal(size=(1, 4, 3, 5)).astype(np.float32)
    p = RNG.normal(size=(1, 4, 3, 5)).astype(np.float32)
    expected = 0.5 * np.sum((f.astype(np.float64) - p) ** 2)
    assert float(losses.content_loss(tf.constant(f), tf.constant(p))) == pytest.approx(expected, rel=1e-5)


def test_style_layer_loss_matches_the_lecture_formula():
    f = RNG.uniform(0, 2, (1, 4, 5, 3)).astype(np.float32)
    a = numpy_gram(RNG.uniform(0, 2, (1, 4, 5, 3)))
    n, m = 3, 20
    expected = np.sum((numpy_gram(f) - a) ** 2) / (4.0 * n ** 2 * m ** 2)
    got = float(losses.style_layer_loss(tf.constant(f), tf.constant(a.astype(np.float32))))
    assert got == pytest.approx(expected, rel=1e-4)
    assert float(losses.style_layer_loss(tf.constant(f), tf.constant(numpy_gram(f).astype(np.float32)))) \
        == pytest.approx(0.0, abs=1e-6)


def test_tv_loss_is_half_sum_of_squared_neighbour_differences():
    image = RNG.uniform(0, 255, (1, 4, 5, 3)).astype(np.float32)
    x = image[0].astype(np.float64)
    expected = 0.5 * (np.sum((x[1:] - x[:-1]) ** 2) + np.sum((x[:, 1:] - x[:, :-1]) ** 2))
    assert float(losses.tv_loss(tf.constant(image))) == pytest.approx(expected, rel=1e-5)


def test_rescaled_gram_compares_like_with_like():
    # A texture repeated twice as often has twice the Gram; rescaling to the output's positions undoes it.
    tile = RNG.uniform(0, 1, (1, 4, 4, 3)).astype(np.float32)
    big = np.tile(tile, (1, 2, 2, 1))
    rescaled = losses.rescale_gram(numpy_gram(big), 64, 16)
    np.testing.assert_allclose(rescaled, numpy_gram(tile), rtol=1e-5)


def test_feature_positions_halve_per_pooling():
    assert losses.feature_positions((64, 48), "conv1_1") == 64 * 48
    assert losses.feature_positions((64, 48), "conv4_2") == 8 * 6
    assert losses.feature_positions((65, 49), "block2_conv1") == 32 * 24


def test_preprocessing_is_keras_caffe_mode():
    rgb = RNG.uniform(0, 255, (2, 3, 4, 3)).astype(np.float32)
    ours = preprocess(tf.constant(rgb)).numpy()
    by_hand = rgb[..., ::-1] - np.array(IMAGENET_MEAN_BGR, np.float32)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ours, keras.applications.vgg19.preprocess_input(rgb.copy()), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("lecture,keras_name", [("conv1_1", "block1_conv1"), ("conv4_2", "block4_conv2"),
                                                ("conv4_4", "block4_conv4"), ("conv5_1", "block5_conv1")])
def test_layer_names_map_both_ways(lecture, keras_name):
    assert layer_names([lecture, keras_name]) == (keras_name, keras_name)
    assert lecture_layer_name(keras_name) == lecture
    assert keras_layer_name(lecture) == keras_name


def test_all_sixteen_layers_map_in_order():
    assert tuple(keras_layer_name(name) for name in VGG_LAYERS) == CONV_LAYERS


@pytest.mark.parametrize("bad", ["conv6_1", "conv1_3", "block1_pool", "fc1", ""])
def test_unknown_layer_is_refused(bad):
    with pytest.raises(InputError, match="unknown VGG-19 layer"):
        layer_names([bad])


def numpy_conv_relu(x, kernel, bias):
    """3x3 'same' convolution + bias + ReLU, written out with shifts (float64)."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += padded[dy:dy + h, dx:dx + w] @ kernel[dy, dx]
    return np.maximum(out + bias, 0.0)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_forward_pass_matches_numpy(fake_model, fake_weights, pooling):
    import h5py

    with h5py.File(fake_weights, "r") as f:
        w = {name: (f[name][name + "_W_1:0"][()].astype(np.float64), f[name][name + "_b_1:0"][()])
             for name in ("block1_conv1", "block1_conv2", "block2_conv1")}
    rgb = RNG.uniform(0, 255, (8, 10, 3)).astype(np.float32)
    x = rgb[..., ::-1].astype(np.float64) - np.array(IMAGENET_MEAN_BGR)
    conv1_1 = numpy_conv_relu(x, *w["block1_conv1"])
    conv1_2 = numpy_conv_relu(conv1_1, *w["block1_conv2"])
    blocks = conv1_2.reshape(4, 2, 5, 2, -1)
    pooled = blocks.max(axis=(1, 3)) if pooling == "max" else blocks.mean(axis=(1, 3))
    conv2_1 = numpy_conv_relu(pooled, *w["block2_conv1"])
    features = fake_model.features(rgb, ["conv1_1", "block2_conv1"], pooling)
    scale = np.abs(conv2_1).max()
    np.testing.assert_allclose(features["block1_conv1"].numpy()[0], conv1_1, atol=1e-3 * np.abs(conv1_1).max())
    np.testing.assert_allclose(features["block2_conv1"].numpy()[0], conv2_1, atol=1e-3 * scale)


def test_forward_pass_matches_keras_vgg19(fake_model, fake_weights):
    model = keras.applications.VGG19(weights=None, include_top=False)
    model.load_weights(fake_weights)
    names = ["block1_conv1", "block3_conv2", "block5_conv1"]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    rgb = RNG.uniform(0, 255, (1, 32, 48, 3)).astype(np.float32)
    expected = probe(keras.applications.vgg19.preprocess_input(rgb.copy()))
    ours = fake_model.features(rgb, ["conv1_1", "conv3_2", "conv5_1"])
    for name, reference in zip(names, expected):
        reference = np.asarray(reference)
        np.testing.assert_allclose(ours[name].numpy(), reference, atol=1e-4 * np.abs(reference).max())


def test_forward_stops_after_the_deepest_layer(fake_model):
    graph = tf.function(lambda x: fake_model.forward(x, ["conv2_1"])).get_concrete_function(
        tf.TensorSpec([1, 16, 16, 3], tf.float32)).graph
    convolutions = [op for op in graph.get_operations() if op.type == "Conv2D"]
    assert len(convolutions) == 3      # conv1_1, conv1_2, conv2_1 and nothing deeper


def test_image_too_small_for_the_deepest_layer_is_refused(fake_model):
    with pytest.raises(InputError, match="too small for the network layer conv5_1"):
        fake_model.features(np.zeros((8, 8, 3), np.float32), ["conv5_1"])


def test_objective_total_and_parts_match_numpy(fake_model):
    """The whole "seed" objective (α·content + β·Σ w_l E_l + tv·TV) against NumPy on the model's features."""
    options = dict(defaults(), loss_normalization="seed", content_layer="conv2_2", style_layers=("conv1_1", "conv2_1"),
                   style_layer_weights=(0.5, 3.0), content_weight=2.0, style_weight=7.0, tv_weight=0.25)
    content = RNG.uniform(0, 255, (16, 20, 3)).astype(np.float32)
    style = RNG.uniform(0, 255, (24, 16, 3)).astype(np.float32)
    candidate = RNG.uniform(0, 255, (16, 20, 3)).astype(np.float32)
    parts = image_losses(fake_model, content, [StyleInput(style)], candidate, options)

    feats = lambda img: {k: v.numpy()[0].astype(np.float64) for k, v in fake_model.features(
        img, ["conv1_1", "conv2_1", "conv2_2"]).items()}
    fc, fs, fx = feats(content), feats(style), feats(candidate)
    content_loss = 0.5 * np.sum((fx["block2_conv2"] - fc["block2_conv2"]) ** 2)
    per_layer = {}
    for name, size_style, size_out in (("block1_conv1", 24 * 16, 16 * 20), ("block2_conv1", 12 * 8, 8 * 10)):
        a = numpy_gram(fs[name]) * size_out / size_style
        g = numpy_gram(fx[name])
        n = fx[name].shape[-1]
        per_layer[name] = np.sum((g - a) ** 2) / (4.0 * n ** 2 * size_out ** 2)
    style_loss = 0.5 * per_layer["block1_conv1"] + 3.0 * per_layer["block2_conv1"]
    x = candidate.astype(np.float64)
    tv = 0.5 * (np.sum((x[1:] - x[:-1]) ** 2) + np.sum((x[:, 1:] - x[:, :-1]) ** 2))
    assert parts["content_loss"] == pytest.approx(content_loss, rel=1e-3)
    for name in per_layer:
        assert parts["style_layers"][name] == pytest.approx(per_layer[name], rel=1e-3)
    assert parts["style_loss"] == pytest.approx(style_loss, rel=1e-3)
    assert parts["tv_loss"] == pytest.approx(tv, rel=1e-4)
    assert parts["total_loss"] == pytest.approx(2.0 * content_loss + 7.0 * style_loss + 0.25 * tv, rel=1e-3)
