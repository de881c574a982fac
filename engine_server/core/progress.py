"""A job's progress: the `Progress` each iteration reports, and `Work`, which turns the coarse-to-fine
plan into work done (`fraction`) and seconds left (`eta_s`).

The unit of work is one pixel through one objective evaluation. A scale of k iterations at H x W
pixels is k × e evaluations, e the L-BFGS evaluations per iteration measured so far (1 until known),
plus SETUP_EVALUATIONS for its targets and its first evaluation; `fraction` counts them × H·W.

`eta_s` splits the time left into what the work costs and how fast the machine runs it now:
- cost: the process's CPU seconds per evaluation, a + b·H·W, from the scales measured so far (a is
  the per-evaluation overhead, which makes small images dearer per pixel; with one scale measured,
  a = 0). CPU seconds hardly change with the machine's load, so the cost measured on one scale
  predicts the next one's.
- pace: wall seconds per CPU second over the last PACE_WINDOW_S seconds. It follows the load: on a
  shared machine the load changed 2x within a minute, and a pace averaged over a whole scale lagged
  behind it (the estimate was +34 % off at half of a 512 px job).
"""

import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

SETUP_EVALUATIONS = 2.0     # content + style target passes (forward only) and the start's evaluation
MEASURED_EVALUATIONS = 4
PACE_WINDOW_S = 15.0       # the pace (wall s per CPU s) is measured over about this many recent seconds


@dataclass
class Progress:
    stage: str                  # "optimize", or "converged" once after a scale stopped early
    scale: int                  # 0-based
    scales: int
    iteration: int              # overall, 1-based (a converged scale's skipped iterations count as done)
    iterations: int             # overall total
    content_loss: float
    style_loss: float
    tv_loss: float
    total_loss: float
    elapsed_s: float
    image: Callable[[], Any] = field(repr=False)   # -> float32 HxWx3 0..255 at this scale's size
    eta_s: float = 0.0          # seconds left, from the work left and the measured speed
    fraction: float = 0.0       # work done, 0..1 (what the editors' bars show)

    def fields(self) -> dict:
        """The protocol's progress fields (docs/protocol.md), also what `stylize --json` prints."""
        return {"stage": self.stage, "scale": int(self.scale), "scales": int(self.scales),
                "iteration": int(self.iteration), "iterations": int(self.iterations),
                "content_loss": float(self.content_loss), "style_loss": float(self.style_loss),
                "tv_loss": float(self.tv_loss), "total_loss": float(self.total_loss),
                "elapsed_s": round(float(self.elapsed_s), 3), "eta_s": round(float(self.eta_s), 3),
                "fraction": round(float(self.fraction), 4)}


class Work:
    """Work done and left of a plan of `sizes` [(h, w)] with `counts` iterations each. `clock` gives
    wall seconds, `cpu_clock` the process's CPU seconds (tests give fake ones)."""

    def __init__(self, sizes, counts, clock=time.monotonic, cpu_clock=time.process_time):
        self.pixels = [float(h) * float(w) for h, w in sizes]
        self.counts = list(counts)
        self.clock, self.cpu_clock = clock, cpu_clock
        self.started = clock()
        self.scale = 0
        self.iterations_done = [0] * len(self.counts)
        self.evaluations_done = [0] * len(self.counts)
        self.set_up = [None] * len(self.counts)     # (CPU s, evaluations) when each scale was set up
        self.cpu_spent = [0.0] * len(self.counts)   # CPU s of each scale's evaluations since then
        self.samples = deque()                      # (wall s, CPU s) of recent events, for the pace
        self.excluded = (0.0, 0.0)                  # wall and CPU s spent outside the job (`outside`)
        self._fraction = 0.0

    @contextmanager
    def outside(self):
        """Time spent in the block is not this job's: a daemon runs a preview job inside the normal
        job's cancel check, and its seconds would otherwise count as the normal job's pace and cost."""
        wall, cpu = self.clock(), self.cpu_clock()
        try:
            yield
        finally:
            self.excluded = (self.excluded[0] + self.clock() - wall, self.excluded[1] + self.cpu_clock() - cpu)

    def _sample(self):
        now = (self.clock() - self.excluded[0], self.cpu_clock() - self.excluded[1])
        self.samples.append(now)
        while len(self.samples) > 2 and now[0] - self.samples[1][0] >= PACE_WINDOW_S:
            self.samples.popleft()
        return now

    def scale_set_up(self, scale, evaluations):
        """Scale `scale`'s targets are computed and its optimizer has made `evaluations` evaluations."""
        self.scale = scale
        self.evaluations_done[scale] = evaluations
        self.set_up[scale] = (self._sample()[1], evaluations)

    def iterated(self, scale, iterations, evaluations):
        """Scale `scale` has now made `iterations` iterations and `evaluations` evaluations in all."""
        cpu = self._sample()[1]
        self.cpu_spent[scale] = cpu - self.set_up[scale][0]
        self.iterations_done[scale], self.evaluations_done[scale] = iterations, evaluations

    def skip_rest(self, scale):
        """The scale stopped early: its remaining iterations are no longer work to do."""
        self.counts[scale] = self.iterations_done[scale]

    def _evaluations_per_iteration(self):
        """Of the current scale once it has made a few iterations (line searches get longer as a
        job goes on), else of the whole job so far."""
        current = self.iterations_done[self.scale]
        if current >= MEASURED_EVALUATIONS:
            return max(1.0, (self.evaluations_done[self.scale] - 1) / current)
        iterations = sum(self.iterations_done)
        setups = self.scale + 1
        evaluations = sum(self.evaluations_done) - setups      # each optimizer's first evaluation is set-up
        return max(1.0, evaluations / iterations) if iterations else 1.0

    def _plan(self):
        """[(pixels, evaluations done, evaluations left)] per scale, set-ups included, by the plan."""
        per_iteration = self._evaluations_per_iteration()
        plan = []
        for k, (pixels, count) in enumerate(zip(self.pixels, self.counts)):
            if k < self.scale or (k == self.scale and self.iterations_done[k] >= count):
                plan.append((pixels, SETUP_EVALUATIONS + count * per_iteration, 0.0))
            elif k == self.scale:
                plan.append((pixels, SETUP_EVALUATIONS + self.iterations_done[k] * per_iteration,
                             (count - self.iterations_done[k]) * per_iteration))
            else:
                plan.append((pixels, 0.0, SETUP_EVALUATIONS + count * per_iteration))
        return plan

    def fraction(self):
        plan = self._plan()
        done = sum(pixels * d for pixels, d, _ in plan)
        left = sum(pixels * l for pixels, _, l in plan)
        self._fraction = max(self._fraction, done / (done + left) if done + left > 0 else 1.0)
        return self._fraction

    def _cost(self):
        """CPU s per evaluation as a function of the pixels (a + b·pixels), or None before a scale
        has made MEASURED_EVALUATIONS evaluations."""
        measured = []
        for k, start in enumerate(self.set_up):
            evaluations = self.evaluations_done[k] - start[1] if start is not None else 0
            if evaluations >= MEASURED_EVALUATIONS and self.cpu_spent[k] > 0:
                measured.append((self.pixels[k], self.cpu_spent[k] / evaluations))
        if not measured:
            return None
        pixels, cost = measured[-1]
        slope = cost / pixels
        earlier = [m for m in measured[:-1] if m[0] != pixels]
        if earlier:                 # the overhead a from the last two sizes, 0 <= a <= cost
            slope = min(max((cost - earlier[-1][1]) / (pixels - earlier[-1][0]), 0.0), slope)
        return lambda p: cost + slope * (p - pixels)

    def eta_s(self):
        plan = self._plan()
        cost = self._cost()
        wall, cpu = self.samples[-1] if self.samples else (0.0, 0.0)
        if cost is None or cpu <= self.samples[0][1]:     # nothing measured yet: the job's pace so far
            done = sum(pixels * d for pixels, d, _ in plan)
            left = sum(pixels * l for pixels, _, l in plan)
            return left * (self.clock() - self.excluded[0] - self.started) / done if done > 0 else 0.0
        pace = (wall - self.samples[0][0]) / (cpu - self.samples[0][1])
        return pace * sum(left * cost(pixels) for pixels, _, left in plan)
