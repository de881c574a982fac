"""Mixed precision: bfloat16 convolutions, float32 features, Grams, losses and optimizer."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from engine_server.core import model as model_module
from engine_server.core.errors import InputError
from engine_server.core.losses import Objective
from engine_server.core.model import VGG19Features
from engine_server.core.stylize import StyleInput, stylize
from engine_server.core.weights import load_vgg19_weights
from shared.options import defaults
from tests.test_core_tiling import build_objective, random_image


@pytest.fixture(scope="module")
def bf16_model(fake_weights):
    return VGG19Features(load_vgg19_weights(fake_weights), precision="bfloat16")


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_bfloat16_features_are_float32_and_close(fake_model, bf16_model):
    image = random_image(1, (64, 80))
    exact = fake_model.features(image, ["conv1_1", "conv4_2", "conv5_1"])
    mixed = bf16_model.features(image, ["conv1_1", "conv4_2", "conv5_1"])
    for name, values in mixed.items():
        assert values.dtype == "float32"
        assert relative_error(values.numpy(), exact[name].numpy()) < 0.02, name      # seen: < 0.8 %


def test_bfloat16_loss_and_gradient_are_close(fake_model, bf16_model):
    options = defaults()
    image = random_image(3, (181, 203))
    exact = build_objective(fake_model, options)
    mixed = Objective(bf16_model, options, exact.content_target.numpy(),
                      {name: t.numpy() for name, t in zip(exact.style_layers, exact.style_targets)})
    value, grad, _ = exact.evaluate(image)
    mixed_value, mixed_grad, _ = mixed.evaluate(image)
    assert mixed_value == pytest.approx(value, rel=0.01)
    cosine = float(np.sum(grad * mixed_grad) / np.linalg.norm(grad) / np.linalg.norm(mixed_grad))
    assert cosine > 0.95, cosine                         # seen: 0.974 (loss: 0.4 % off)
    assert relative_error(mixed_grad, grad) > 1e-4       # it really did compute in bfloat16


def test_bfloat16_stylize_is_deterministic(bf16_model):
    content, style = random_image(5, (48, 56)), random_image(6, (40, 40))
    options = {"iterations": 4, "max_size": 56}
    first = stylize(bf16_model, content, [StyleInput(style)], options)
    second = stylize(bf16_model, content, [StyleInput(style)], options)
    assert np.array_equal(first, second)


def test_auto_takes_bfloat16_only_where_the_hardware_has_it(monkeypatch):
    monkeypatch.setattr(model_module, "_cpu_has_bfloat16", lambda: True)
    assert model_module.pick_precision("/CPU:0") == "bfloat16"
    monkeypatch.setattr(model_module, "_cpu_has_bfloat16", lambda: False)
    assert model_module.pick_precision("/CPU:0") == "float32"


def test_an_unknown_precision_is_refused_naming_the_choices(fake_weights):
    with pytest.raises(InputError) as refused:
        VGG19Features(load_vgg19_weights(fake_weights), precision="float16")
    assert refused.value.field == "precision"
    assert "auto, float32, bfloat16" in refused.value.message


def noisy_in(model, noisy_precision):
    """Exaggerates the rounding noise of `noisy_precision`'s passes: the features grow by 0-5 % as the
    pixels change (the gradient stays the pass's own), so once L-BFGS's steps gain less than that noise
    (after ~25 iterations here), a line search finds no lower point."""
    forward = model.forward

    def noisy(rgb, layers, pooling="max", precision=None):
        features = forward(rgb, layers, pooling, *([precision] if precision else []))
        if (precision or model.precision) != noisy_precision:
            return features
        wobble = 1.0 + 0.05 * tf.stop_gradient(tf.abs(tf.sin(1e6 * tf.reduce_mean(rgb))))
        return [f * wobble for f in features]
    model.forward = noisy
    return model


def test_a_bfloat16_job_goes_on_in_float32_once_its_line_search_fails(fake_weights, caplog):
    model = noisy_in(VGG19Features(load_vgg19_weights(fake_weights), precision="bfloat16"), "bfloat16")
    content, style = random_image(5, (48, 40)), random_image(6, (40, 40))
    events = []
    with caplog.at_level(logging.INFO, logger="engine_server.core"):
        stylize(model, content, [StyleInput(style)], {"iterations": 60, "max_size": 48, "scales": 2},
                on_progress=lambda progress: events.append(progress.fields()))
    precisions = [event["precision"] for event in events]
    switched = precisions.index("float32")
    assert set(precisions[:switched]) == {"bfloat16"} and set(precisions[switched:]) == {"float32"}
    assert "failed line search" in events[switched]["precision_note"]
    assert len([r for r in caplog.records if "goes on in float32" in r.getMessage()]) == 1
    assert not any("retrying" in r.getMessage() for r in caplog.records)      # no bfloat16 restarts
    # It went on in float32: the rest of that scale lowered the loss, and the next scale ran too.
    scale = events[switched]["scale"]
    after = [event["total_loss"] for event in events[switched:] if event["scale"] == scale]
    assert len(after) >= 3 and after[-1] < after[0]
    assert events[-1]["scale"] == 1 > scale and events[-1]["iteration"] == 60
    assert model.traces == 2                            # one per precision, whatever the scales
    stylize(model, content, [StyleInput(style)], {"iterations": 6, "max_size": 48, "scales": 2})
    assert model.traces == 2


def test_a_float32_job_stays_in_float32_when_its_line_search_fails(fake_weights, caplog):
    model = noisy_in(VGG19Features(load_vgg19_weights(fake_weights), precision="float32"), "float32")
    events = []
    with caplog.at_level(logging.INFO, logger="engine_server.core"):
        stylize(model, random_image(5, (48, 40)), [StyleInput(random_image(6, (40, 40)))],
                {"iterations": 60, "max_size": 48, "scales": 1}, on_progress=lambda p: events.append(p.fields()))
    assert {event["precision"] for event in events} == {"float32"} and "precision_note" not in events[-1]
    assert any("line search found no acceptable step" in r.getMessage() for r in caplog.records)
    assert not any("goes on in float32" in r.getMessage() for r in caplog.records)
