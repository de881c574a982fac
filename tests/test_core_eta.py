"""The ETA of a coarse-to-fine job against the time really left, with deterministic wall and CPU
clocks (issue 14: within 30 % at 25/50/75 % of a 3-scale job). No timed test: the clocks are fake."""

import numpy as np
import pytest

from engine_server.core import losses as losses_module
from engine_server.core.progress import Work
from engine_server.core.stylize import StyleInput, stylize
from shared.options import validate_options


class Clocks:
    def __init__(self):
        self.wall, self.cpu = 100.0, 10.0


def run_job(sides, counts, overhead_s, per_pixel_s, pace_at=lambda share: 1.0):
    """Drive `Work` through a job whose evaluation costs `overhead_s + per_pixel_s × pixels` CPU
    seconds, run at `pace_at(share of the job's CPU done)` wall seconds per CPU second. Returns
    (share of the work, ETA, time really left) at the first event at or past 25, 50 and 75 %."""
    clocks = Clocks()
    cost = [overhead_s + per_pixel_s * side * side for side in sides]
    total = sum(c * (2 + n) for c, n in zip(cost, counts))
    spent = [0.0]

    def spend(cpu_s):
        clocks.wall += cpu_s * pace_at(spent[0] / total)
        clocks.cpu += cpu_s
        spent[0] += cpu_s

    spend(5 * cost[0])                          # tracing: before the work starts
    work = Work([(side, side) for side in sides], counts, clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)
    events = []
    for scale, count in enumerate(counts):
        spend(2 * cost[scale])                  # targets and the first evaluation
        work.scale_set_up(scale, 1)
        for iteration in range(1, count + 1):
            spend(cost[scale])
            work.iterated(scale, iteration, iteration + 1)
            events.append((clocks.wall, work.fraction(), work.eta_s()))
    end = clocks.wall
    checks = []
    for share in (0.25, 0.5, 0.75):
        now, fraction, eta = next(event for event in events if event[1] >= share)
        checks.append((fraction, eta, end - now))
    return checks


def test_eta_counts_the_per_evaluation_overhead_of_small_scales():
    """An evaluation costs 3 ms plus 1 µs per pixel: at 32x32 three quarters of it is overhead, at
    128x128 a sixth. Speed measured per pixel on the small scales overestimated the large one's work."""
    for fraction, eta, left in run_job([32, 64, 128], [20, 10, 5], 3e-3, 1e-6):
        assert eta == pytest.approx(left, rel=0.3), (fraction, eta, left)


def test_eta_follows_a_change_of_load():
    """The machine gets twice as fast 40 % into the job (another process ended). At 50 and 75 % the
    estimate uses the new pace, not an average over the whole scale."""
    checks = run_job([128, 256, 512], [115, 57, 28], 0.02, 9e-6, pace_at=lambda share: 2.0 if share < 0.4 else 1.0)
    for fraction, eta, left in checks[1:]:
        assert eta == pytest.approx(left, rel=0.3), (fraction, eta, left)


def test_eta_is_exact_at_a_steady_pace_and_cost():
    for fraction, eta, left in run_job([128, 256, 512], [115, 57, 28], 0.02, 9e-6):
        assert eta == pytest.approx(left, rel=0.02), (fraction, eta, left)


def test_a_preview_run_inside_the_cancel_check_is_not_the_jobs_time(fake_model, monkeypatch):
    """The daemon runs a preview job inside a normal job's cancel check. A 3-scale job with a
    deterministic clock (an evaluation costs 50 µs per pixel plus 5 ms) is paused once, 30 % into
    its work, for a preview as long as the job itself; afterwards its ETA is still its own work's."""
    clock = Clocks()
    evaluate = losses_module.Objective.evaluate

    def timed_evaluate(self, image):
        spent = 5e-3 + 50e-6 * image.shape[0] * image.shape[1]
        clock.wall, clock.cpu = clock.wall + spent, clock.cpu + spent
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
            clock.wall, clock.cpu = clock.wall + 10.0, clock.cpu + 10.0     # the preview job
        return False

    stylize(fake_model, content, [StyleInput(style)], options, should_cancel=should_cancel,
            clock=lambda: clock.wall, cpu_clock=lambda: clock.cpu,
            on_progress=lambda p: events.append((clock.wall, p.fraction, p.eta_s)))
    end = clock.wall
    assert paused
    for share in (0.5, 0.75):
        now, fraction, eta = next(event for event in events if event[1] >= share)
        assert eta == pytest.approx(end - now, rel=0.3), (share, fraction, eta, end - now)
