"""The default objective is jcjohnson/neural-style's, term by term; "seed" is the lecture's; every scale
keeps the final picture's balance; the weighted terms add up; one trace serves a whole job."""

import numpy as np
import pytest

from engine_server.core.losses import Objective, feature_positions
from engine_server.core.model import VGG19Features
from engine_server.core.stylize import StyleInput, losses, stylize
from shared.options import defaults, strength_to_style_weight, validate_options

RNG = np.random.default_rng(14)
JCJOHNSON = {"content_weight": 5.0, "style_weight": 100.0, "tv_weight": 1e-3, "content_layer": "relu4_2",
             "style_layers": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")}


def smooth_image(size, seed):
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (size[0] // 4 + 1, size[1] // 4 + 1, 3))
    image = np.kron(coarse, np.ones((4, 4, 1)))[:size[0], :size[1]]
    return np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.float32)


def relu_features(model, image):
    """jcjohnson's relu{b}_{c} is the ReLU after conv{b}_{c}; our conv layers' outputs are post-ReLU."""
    names = [name.replace("relu", "conv") for name in JCJOHNSON["style_layers"] + (JCJOHNSON["content_layer"],)]
    features = model.features(image, names)
    return {name.replace("conv", "relu"): features["block%s_conv%s" % tuple(name[4:].split("_"))].numpy()[0]
            .astype(np.float64) for name in names}


def jcjohnson_terms(model, content, style, candidate):
    """neural_style.lua's default objective, written from its formulas:
    ContentLoss: strength · MSECriterion (a mean over C·H·W) of the relu4_2 features;
    StyleLoss: strength · MSECriterion (a mean over C²) of Gram / input:nElement() (C·H·W), the style's
    Gram divided by its own nElement; TVLoss: strength · ½ Σ squared neighbour differences of the
    0..255 image, here taken per position of a 512x512 picture (issue 14: TV per position)."""
    fx, fc, fs = relu_features(model, candidate), relu_features(model, content), relu_features(model, style)
    layer = JCJOHNSON["content_layer"]
    terms = {"content": JCJOHNSON["content_weight"] * np.mean((fx[layer] - fc[layer]) ** 2)}
    for layer in JCJOHNSON["style_layers"]:
        flat_x, flat_s = fx[layer].reshape(-1, fx[layer].shape[-1]), fs[layer].reshape(-1, fs[layer].shape[-1])
        g = flat_x.T @ flat_x / flat_x.size
        a = flat_s.T @ flat_s / flat_s.size
        terms[layer] = JCJOHNSON["style_weight"] * np.mean((g - a) ** 2)
    x = candidate.astype(np.float64)
    tv_sum = 0.5 * (np.sum((x[1:] - x[:-1]) ** 2) + np.sum((x[:, 1:] - x[:, :-1]) ** 2))
    terms["tv"] = JCJOHNSON["tv_weight"] * tv_sum * 512 * 512 / (x.shape[0] * x.shape[1])
    return terms


def our_terms(parts):
    weighted = parts["weighted"]
    terms = {"content": weighted["content"], "tv": weighted["tv"]}
    for name, value in weighted["style"].items():
        terms["relu%s_%s" % (name[5], name[-1])] = value
    return terms


@pytest.mark.parametrize("size, style_size", [((48, 64), (40, 56)), ((96, 80), (64, 72))])
def test_default_objective_is_jcjohnsons_up_to_one_factor(fake_model, size, style_size):
    content, style, candidate = smooth_image(size, 1), smooth_image(style_size, 2), smooth_image(size, 3)
    parts = losses(fake_model, content, [StyleInput(style)], candidate, defaults())
    ours, reference = our_terms(parts), jcjohnson_terms(fake_model, content, style, candidate)
    assert set(ours) == set(reference)
    ratios = {key: ours[key] / reference[key] for key in reference}
    factor = ratios["content"]
    for key, ratio in ratios.items():
        assert ratio == pytest.approx(factor, rel=2e-3), (key, ratios)
    assert factor == pytest.approx(1.0, rel=2e-3)           # the same factor at both sizes: 1
    assert parts["total_loss"] == pytest.approx(sum(reference.values()), rel=2e-3)


def test_strength_50_is_the_default_and_the_ends_are_three_decades_away():
    assert strength_to_style_weight(50) == pytest.approx(defaults()["style_weight"])
    assert strength_to_style_weight(0) == pytest.approx(defaults()["style_weight"] / 1e3)
    assert strength_to_style_weight(100) == pytest.approx(defaults()["style_weight"] * 1e3)


def test_seed_is_the_lecture_and_its_weighted_terms_add_up(fake_model):
    size = (40, 48)
    content, style, candidate = smooth_image(size, 4), smooth_image((32, 40), 5), smooth_image(size, 6)
    options = validate_options({"loss_normalization": "seed", "style_layers": ["conv1_1", "conv3_1"],
                                "style_layer_weights": [2.0, 3.0], "content_weight": 1.5, "tv_weight": 0.25})
    parts = losses(fake_model, content, [StyleInput(style)], candidate, options)
    feats = lambda image: {k: v.numpy()[0].astype(np.float64)
                           for k, v in fake_model.features(image, ["conv1_1", "conv3_1", "conv4_2"]).items()}
    fx, fc, fs = feats(candidate), feats(content), feats(style)
    assert parts["content_loss"] == pytest.approx(0.5 * np.sum((fx["block4_conv2"] - fc["block4_conv2"]) ** 2),
                                                  rel=1e-3)
    for name in ("block1_conv1", "block3_conv1"):
        x, s = fx[name].reshape(-1, fx[name].shape[-1]), fs[name].reshape(-1, fs[name].shape[-1])
        n, m = x.shape[1], x.shape[0]
        a = s.T @ s * m / s.shape[0]
        assert parts["style_layers"][name] == pytest.approx(np.sum((x.T @ x - a) ** 2) / (4 * n * n * m * m),
                                                            rel=1e-3)
    weighted = parts["weighted"]
    assert weighted["content"] == pytest.approx(1.5 * parts["content_loss"])
    assert weighted["style"]["block3_conv1"] == pytest.approx(options["style_weight"] * 3.0
                                                              * parts["style_layers"]["block3_conv1"])
    assert weighted["tv"] == pytest.approx(0.25 * parts["tv_loss"])
    assert parts["total_loss"] == pytest.approx(weighted["content"] + sum(weighted["style"].values())
                                                + weighted["tv"], rel=1e-9)


@pytest.mark.parametrize("normalization", ["seed", "size"])
def test_a_coarse_scale_keeps_the_final_pictures_balance(fake_model, normalization):
    """The weighted terms of a coarse scale, per unit of the final scale's weighted terms, are the same for
    content, style and TV: seed multiplies content and TV by final/coarse positions, size needs nothing."""
    options = dict(defaults(), loss_normalization=normalization, style_layers=("conv1_1", "conv2_1"),
                   style_layer_weights=(1.0, 1.0), content_layer="conv2_2")
    final, coarse = (64, 80), (32, 40)
    content_target = fake_model.features(smooth_image(coarse, 7), ["conv2_2"])["block2_conv2"].numpy()
    style = {name: np.eye(f, dtype=np.float32) for name, f in (("block1_conv1", 64), ("block2_conv1", 128))}
    plain = Objective(fake_model, options, content_target, style)
    balanced = Objective(fake_model, options, content_target, style, final_size=final)
    image = smooth_image(coarse, 8)
    _, _, unbalanced_parts = plain.evaluate(image)
    _, _, parts = balanced.evaluate(image)
    content_factor = feature_positions(final, "conv2_2") / feature_positions(coarse, "conv2_2")
    tv_factor = final[0] * final[1] / float(coarse[0] * coarse[1])
    expected = (content_factor, tv_factor) if normalization == "seed" else (1.0, 1.0)
    assert parts["weighted"]["content"] == pytest.approx(expected[0] * unbalanced_parts["weighted"]["content"])
    assert parts["weighted"]["tv"] == pytest.approx(expected[1] * unbalanced_parts["weighted"]["tv"])
    assert parts["weighted"]["style"] == pytest.approx(unbalanced_parts["weighted"]["style"])
    assert content_factor == 4.0 and tv_factor == 4.0


def test_a_job_traces_its_objective_once(fake_weights):
    """One traced function per (layers, pooling, precision); sizes, targets and weights are arguments."""
    model = VGG19Features.load(fake_weights)
    content, style = smooth_image((64, 64), 9), smooth_image((48, 48), 10)
    stylize(model, content, [StyleInput(style)], validate_options({"iterations": 6, "max_size": 64, "scales": 3}))
    assert model.traces == 1
    stylize(model, content[:48], [StyleInput(style)],
            validate_options({"iterations": 3, "max_size": 48, "scales": 2, "style_weight": 7.0,
                              "loss_normalization": "seed"}))
    assert model.traces == 1
    stylize(model, content, [StyleInput(style)], validate_options({"iterations": 2, "max_size": 64,
                                                                   "pooling": "avg"}))
    assert model.traces == 2
