"""A job's progress: the `Progress` each iteration reports, and `Work`, which turns the coarse-to-fine
plan into work done (`fraction`) and seconds left (`eta_s`).

The unit of work is one pixel through one objective evaluation (a VGG-19 forward + backward pass
costs about the same per pixel at every size). A scale of k iterations at H x W pixels is
k × e × H·W units, e the L-BFGS evaluations per iteration measured so far (1 until known), plus
SETUP_EVALUATIONS × H·W for its targets and its first evaluation. The speed is measured: seconds
per unit in the current scale once it has made MEASURED_EVALUATIONS evaluations (small images cost
more per pixel, so the latest, largest scale says most about the rest), else since the first scale
was set up (its one-off tracing is not work).

A coarse scale stops once it settles and hands the iterations it did not make to the next scale
(from the content, after 46-66 % of its plan in the jobs measured for issue 14). Once one coarse
scale has settled, the later coarse scales are expected to settle at the same share of their plan
(or now, if they are past it), the rest going on to the next scale. Without this the ETA of 3-scale
512 and 1024 px jobs was 37-49 % short at 25 %: their final scale, at four times the cost per
iteration, ran 2-3x its plan.
"""

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

SETUP_EVALUATIONS = 2.0     # content + style target passes (forward only) and the start's evaluation
MEASURED_EVALUATIONS = 4


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
    precision: str = ""         # what the convolutions compute in now
    precision_note: str = ""    # why a bfloat16 job went on in float32, once it did

    def fields(self) -> dict:
        """The protocol's progress fields (docs/protocol.md), also what `stylize --json` prints."""
        return {"stage": self.stage, "scale": int(self.scale), "scales": int(self.scales),
                "iteration": int(self.iteration), "iterations": int(self.iterations),
                "content_loss": float(self.content_loss), "style_loss": float(self.style_loss),
                "tv_loss": float(self.tv_loss), "total_loss": float(self.total_loss),
                "elapsed_s": round(float(self.elapsed_s), 3), "eta_s": round(float(self.eta_s), 3),
                "fraction": round(float(self.fraction), 4),
                **({"precision": self.precision} if self.precision else {}),
                **({"precision_note": self.precision_note} if self.precision_note else {})}


class Work:
    """Work done and left of a plan of `sizes` [(h, w)] with `counts` iterations each."""

    def __init__(self, sizes, counts, clock=time.monotonic):
        self.pixels = [float(h) * float(w) for h, w in sizes]
        self.counts = list(counts)
        self.clock = clock
        self.started = clock()
        self.scale = 0
        self.iterations_done = [0] * len(self.counts)
        self.evaluations_done = [0] * len(self.counts)
        self.measure_from = None       # clock when the first scale had been set up
        self.units_since = 0.0         # units done since then
        self.scale_from = None         # clock when the current scale had been set up (or its pace changed)
        self.scale_units = 0.0         # units done in the current scale since then
        self.since = (0, 0)            # the current scale's (iterations, evaluations) at that moment
        self.excluded = 0.0            # seconds spent outside the job (`outside`)
        self.settled_share = None      # of its plan, where the last coarse scale that settled did
        self._fraction = 0.0

    def _now(self):
        return self.clock() - self.excluded

    @contextmanager
    def outside(self):
        """Time spent in the block is not this job's: a daemon runs a preview job inside the normal
        job's cancel check, and its seconds would otherwise count as the normal job's speed."""
        started = self.clock()
        try:
            yield
        finally:
            self.excluded += self.clock() - started

    def scale_set_up(self, scale, evaluations):
        """Scale `scale`'s targets are computed and its optimizer has made `evaluations` evaluations."""
        self.scale = scale
        self.evaluations_done[scale] = evaluations
        self.scale_from, self.scale_units = self._now(), 0.0
        self.since = (0, evaluations)
        if self.measure_from is None:
            self.measure_from = self._now()
        else:
            self.units_since += SETUP_EVALUATIONS * self.pixels[scale]

    def iterated(self, scale, iterations, evaluations):
        """Scale `scale` has now made `iterations` iterations and `evaluations` evaluations in all."""
        units = (evaluations - self.evaluations_done[scale]) * self.pixels[scale]
        self.units_since += units
        self.scale_units += units
        self.iterations_done[scale], self.evaluations_done[scale] = iterations, evaluations

    def pace_changed(self):
        """From now on an evaluation costs something else and the optimizer starts afresh (a bfloat16
        job went on in float32): the current scale's speed and evaluations per iteration are measured
        again from here, not averaged with the old ones."""
        self.scale_from, self.scale_units = self._now(), 0.0
        self.since = (self.iterations_done[self.scale], self.evaluations_done[self.scale])

    def stopped_early(self, scale):
        """The scale stopped before its count: a coarse scale's remaining iterations go on to the next
        scale (which reads its count from `counts`), the final scale's are no longer work to do."""
        left = self.counts[scale] - self.iterations_done[scale]
        if scale < len(self.counts) - 1:
            self.settled_share = self.iterations_done[scale] / float(self.counts[scale])
            self.counts[scale + 1] += left
        self.counts[scale] = self.iterations_done[scale]

    def _evaluations_per_iteration(self):
        """Of the current scale (since its pace last changed) once it has made a few iterations (line
        searches get longer as a job goes on), else of the whole job so far."""
        iterations, evaluations = self.since
        current = self.iterations_done[self.scale] - iterations
        if current >= MEASURED_EVALUATIONS:
            return max(1.0, (self.evaluations_done[self.scale] - evaluations) / current)
        iterations = sum(self.iterations_done)
        setups = self.scale + 1
        evaluations = sum(self.evaluations_done) - setups      # each optimizer's first evaluation is set-up
        return max(1.0, evaluations / iterations) if iterations else 1.0

    def _expected_counts(self):
        """The iterations each scale is expected to make: the plan, with the coarse scales from the
        current one on settling as the module doc says."""
        counts = list(self.counts)
        if self.settled_share is None:
            return counts
        for k in range(self.scale, len(counts) - 1):
            expected = min(counts[k], max(self.iterations_done[k], math.ceil(self.settled_share * counts[k])))
            counts[k + 1] += counts[k] - expected
            counts[k] = expected
        return counts

    def _units(self):
        """(done, left) in units, both by the expected counts."""
        per_iteration = self._evaluations_per_iteration()
        done = left = 0.0
        for k, (pixels, count) in enumerate(zip(self.pixels, self._expected_counts())):
            setup = SETUP_EVALUATIONS * pixels
            if k < self.scale or (k == self.scale and self.iterations_done[k] >= count):
                done += setup + count * per_iteration * pixels
            elif k == self.scale:
                done += setup + self.iterations_done[k] * per_iteration * pixels
                left += (count - self.iterations_done[k]) * per_iteration * pixels
            else:
                left += setup + count * per_iteration * pixels
        return done, left

    def fraction(self):
        done, left = self._units()
        self._fraction = max(self._fraction, done / (done + left) if done + left > 0 else 1.0)
        return self._fraction

    def eta_s(self):
        done, left = self._units()
        if self.scale_units >= MEASURED_EVALUATIONS * self.pixels[self.scale]:
            return left * (self._now() - self.scale_from) / self.scale_units
        if self.measure_from is None or self.units_since <= 0:     # nothing measured yet: the job's pace
            return left * (self._now() - self.started) / done if done > 0 else 0.0
        return left * (self._now() - self.measure_from) / self.units_since
