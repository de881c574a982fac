"""Optimizer hygiene, honest progress and a tiny style scale (issue 14)."""

import logging

import numpy as np
import pytest

from engine_server.core import losses as losses_module
from engine_server.core import optimize
from engine_server.core.optimize import LBFGS
from engine_server.core.stylize import StyleInput, stylize
from shared.options import validate_options

RNG = np.random.default_rng(21)


def near_minimum(offset=0.01, n=50):
    """½|x − c|², started `offset` from c: a first steepest-descent step of 1 (RMS) overshoots by far."""
    c = RNG.uniform(50, 200, n).astype(np.float32)
    return (lambda x: (float(np.sum((x.astype(np.float64) - c) ** 2)), 2 * (x - c), None)), c + np.float32(offset)


def test_a_failed_line_search_is_retried_within_the_step_and_counted():
    fun, x0 = near_minimum()
    optimizer = LBFGS(fun, x0, max_evaluations=1)
    start = optimizer.value
    optimizer.step()
    assert optimizer.value < start                  # this iteration moved (a failure cost no iteration)
    assert optimizer.line_search_failures >= 1 and optimizer.converged is None


def test_the_restart_scale_resets_after_a_successful_step():
    fun, x0 = near_minimum()
    optimizer = LBFGS(fun, x0, max_evaluations=1)
    start = optimizer.value
    for _ in range(5):
        optimizer.step()
        if optimizer.value < start:
            break
    assert optimizer.value < start
    assert optimizer._restart_scale == 1.0


def test_lbfgs_dot_products_accumulate_in_float64():
    a = RNG.uniform(0, 1, 300_000).astype(np.float32)
    b = RNG.uniform(0, 1, 300_000).astype(np.float32)
    exact = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
    assert optimize._dot(a, b) == pytest.approx(exact, rel=1e-12)


def test_a_converged_job_stops_early_and_says_so(fake_model, caplog):
    """Content only, started at the content: nothing to do. The job stops and reports "converged"."""
    image = np.clip(np.add.outer(np.linspace(0, 255, 32), np.linspace(0, 100, 40))[..., None] + np.zeros(3), 0,
                    255).astype(np.float32)
    options = validate_options({"iterations": 30, "max_size": 40, "style_weight": 0.0, "tv_weight": 0.0})
    seen = []
    with caplog.at_level(logging.INFO, logger="engine_server.core.stylize"):
        stylize(fake_model, image, [StyleInput(image)], options, on_progress=seen.append)
    assert len(seen) < 30
    assert seen[-1].stage == "converged" and seen[-1].iteration == 30 and seen[-1].fraction == 1.0
    assert any("converged" in record.getMessage() for record in caplog.records)


def test_a_tiny_style_scale_on_three_scales_finishes(fake_model):
    content = RNG.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    style = RNG.uniform(0, 255, (60, 80, 3)).astype(np.float32)
    options = validate_options({"iterations": 3, "max_size": 64, "scales": 3, "style_scale": 0.05})
    result = stylize(fake_model, content, [StyleInput(style)], options)
    assert result.shape == (64, 64, 3)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_eta_follows_the_work_left_of_a_three_scale_job(fake_model, monkeypatch):
    """A deterministic clock: an evaluation costs 1 µs per pixel plus 0.1 ms, a target pass half an
    evaluation. At 25, 50 and 75 % of the work the ETA is within 30 % of the time really left."""
    clock = FakeClock()
    evaluate = losses_module.Objective.evaluate

    def timed_evaluate(self, image):
        clock.now += 1e-6 * image.shape[0] * image.shape[1] + 1e-4
        return evaluate(self, image)

    features = type(fake_model).features

    def timed_features(self, rgb, layers, pooling="max", precision=None):
        clock.now += 0.5e-6 * np.shape(rgb)[-3] * np.shape(rgb)[-2] + 1e-4
        return features(self, rgb, layers, pooling, precision)

    monkeypatch.setattr(losses_module.Objective, "evaluate", timed_evaluate)
    monkeypatch.setattr(type(fake_model), "features", timed_features)
    content = RNG.uniform(0, 255, (128, 128, 3)).astype(np.float32)
    style = RNG.uniform(0, 255, (100, 120, 3)).astype(np.float32)
    options = validate_options({"iterations": 35, "max_size": 128, "scales": 3, "init": "noise"})
    events = []
    stylize(fake_model, content, [StyleInput(style)], options, clock=clock,
            on_progress=lambda p: events.append((clock(), p.fraction, p.eta_s, p.scale)))
    end = clock()
    assert {scale for *_, scale in events} == {0, 1, 2}
    assert all(b[1] >= a[1] for a, b in zip(events, events[1:])) and events[-1][1] == 1.0
    for share in (0.25, 0.5, 0.75):
        now, fraction, eta, _ = next(event for event in events if event[1] >= share)
        assert eta == pytest.approx(end - now, rel=0.3), (share, fraction, eta, end - now)
