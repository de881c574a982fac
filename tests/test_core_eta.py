"""The ETA of a coarse-to-fine job against the time really left, with a deterministic clock (issue 14:
within 30 % at 25/50/75 % of a 3-scale job; test_core_hygiene has the plain case). No timed test."""

import numpy as np
import pytest

from engine_server.core import losses as losses_module
from engine_server.core.stylize import StyleInput, stylize
from shared.options import validate_options


class Clock:
    def __init__(self):
        self.wall = 100.0


def test_a_preview_run_inside_the_cancel_check_is_not_the_jobs_time(fake_model, monkeypatch):
    """The daemon runs a preview job inside a normal job's cancel check. A 3-scale job with a
    deterministic clock (an evaluation costs 50 µs per pixel plus 5 ms) is paused once, 30 % into
    its work, for a preview as long as the job itself; afterwards its ETA is still its own work's."""
    clock = Clock()
    evaluate = losses_module.Objective.evaluate

    def timed_evaluate(self, image):
        spent = 5e-3 + 50e-6 * image.shape[0] * image.shape[1]
        clock.wall += spent
        return evaluate(self, image)

    monkeypatch.setattr(losses_module.Objective, "evaluate", timed_evaluate)
    rng = np.random.default_rng(3)
    content = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (50, 60, 3)).astype(np.float32)
    options = validate_options({"iterations": 60, "max_size": 64, "scales": 3, "init": "noise"})
    events, paused = [], []

    def should_cancel():
        if not paused and events and events[-1][1] >= 0.3:
            paused.append(clock.wall)
            clock.wall += 10.0                  # the preview job
        return False

    stylize(fake_model, content, [StyleInput(style)], options, should_cancel=should_cancel,
            clock=lambda: clock.wall,
            on_progress=lambda p: events.append((clock.wall, p.fraction, p.eta_s)))
    end = clock.wall
    assert paused
    for share in (0.5, 0.75):
        now, fraction, eta = next(event for event in events if event[1] >= share)
        assert eta == pytest.approx(end - now, rel=0.3), (share, fraction, eta, end - now)
