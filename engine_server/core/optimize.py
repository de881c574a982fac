"""Optimizers over the pixels: L-BFGS (two-loop recursion, strong-Wolfe line search) and Adam.

Both work on a flat float32 NumPy vector and a function `fun(x) -> (value, gradient, extras)`.
One `step()` is one iteration, so the caller can check cancellation and report progress between
iterations. Both remember the best point evaluated (`best_x`, `best_value`, `best_extras`).
No randomness: the same start gives the same result on the same device.
"""

import logging

import numpy as np

log = logging.getLogger(__name__)


class _Tracker:
    def __init__(self, fun, x0):
        self._fun = fun
        self.evaluations = 0
        self.best_x, self.best_value, self.best_extras = None, np.inf, None
        self.x = np.asarray(x0, np.float32).ravel().copy()
        self.value, self.grad, self.extras = self.evaluate(self.x)

    def evaluate(self, x):
        value, grad, extras = self._fun(x)
        self.evaluations += 1
        grad = np.asarray(grad, np.float32).ravel()
        if np.isfinite(value) and value < self.best_value:
            self.best_x, self.best_value, self.best_extras = x.copy(), value, extras
        return value, grad, extras


def _dot(a, b):
    """Accumulated in float64: float32 sums over a megapixel's components lose the digits that the
    curvature pairs (sᵀy, yᵀy) and the line search's slopes depend on."""
    return float(np.dot(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def _cubic_minimum(x1, f1, g1, x2, f2, g2, low, high):
    """Minimizer of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to [low, high]."""
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    square = d1 * d1 - g1 * g2
    if square >= 0:
        d2 = np.sqrt(square) * (1.0 if x2 >= x1 else -1.0)
        t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        if np.isfinite(t):
            return min(max(t, low), high)
    return (low + high) / 2.0


class LBFGS(_Tracker):
    """Limited-memory BFGS. `history` pairs (s, y); line search: strong Wolfe (Nocedal & Wright
    3.5/3.6) with cubic interpolation, at most `max_evaluations` function values per iteration.

    `converged` is None while progress is possible, else why it stopped: "stationary" (no descent
    direction), "no decrease" (the loss fell by less than `ftol` relative in `patience` iterations
    in a row) or "line search failed" (no acceptable step even from ever shorter restarts). A failed
    line search is retried within the same step from a steepest-descent step ten times shorter, up
    to `restarts` times (counted in `line_search_failures` and logged), so it costs no iteration.

    With `bounds` (low, high) it is a projected L-BFGS: variables held at a bound by their gradient
    are frozen for the step, trial points are projected into the box, and the line search works on
    the projected path (its slope counts only the components that were not clipped). Pixels then
    stay valid, so the loss reported is the loss of the image that is saved."""

    def __init__(self, fun, x0, history=10, max_evaluations=8, c1=1e-4, c2=0.9, bounds=None,
                 ftol=1e-6, patience=3, restarts=4):
        self.bounds = bounds
        if bounds is not None:
            x0 = np.clip(np.asarray(x0, np.float32), bounds[0], bounds[1])
        super().__init__(fun, x0)
        self.history, self.max_evaluations, self.c1, self.c2 = history, max_evaluations, c1, c2
        self.ftol, self.patience, self.restarts = ftol, patience, restarts
        self._s, self._y, self._rho = [], [], []
        self._restart_scale = 1.0
        self._flat_steps = 0
        self.converged = None
        self.line_search_failures = 0

    def _direction(self, grad):
        q = -grad
        alphas = []
        for s, y, rho in zip(reversed(self._s), reversed(self._y), reversed(self._rho)):
            a = rho * _dot(s, q)
            q -= a * y
            alphas.append(a)
        if self._s:
            q *= _dot(self._s[-1], self._y[-1]) / _dot(self._y[-1], self._y[-1])
        for (s, y, rho), a in zip(zip(self._s, self._y, self._rho), reversed(alphas)):
            b = rho * _dot(y, q)
            q += (a - b) * s
        return q

    def _active(self):
        """Variables sitting on a bound with the gradient pushing them outwards."""
        if self.bounds is None:
            return None
        low, high = self.bounds
        return ((self.x <= low) & (self.grad > 0)) | ((self.x >= high) & (self.grad < 0))

    def _point(self, t, direction):
        """x + t d, projected into the box; and the mask of components that were not clipped."""
        x = (self.x + t * direction).astype(np.float32)
        if self.bounds is None:
            return x, None
        inside = (x >= self.bounds[0]) & (x <= self.bounds[1])
        return np.clip(x, self.bounds[0], self.bounds[1]), inside

    def step(self):
        """One iteration: a successful line search, or `converged` set (then it does nothing)."""
        if self.converged:
            return
        for attempt in range(self.restarts + 1):
            outcome = self._try_step()
            if outcome != "failed":
                return
            self.line_search_failures += 1
            if attempt == self.restarts:
                break
            self._s, self._y, self._rho = [], [], []
            self._restart_scale *= 0.1
            log.info("line search found no acceptable step; retrying from a steepest-descent step of %.3g "
                     "(RMS pixels)", self._restart_scale)
        self.converged = "line search failed"

    def _try_step(self):
        active = self._active()
        free_grad = self.grad if active is None else np.where(active, np.float32(0), self.grad)
        direction = self._direction(free_grad)
        if active is not None:
            direction[active] = 0
        slope = _dot(free_grad, direction)
        if not slope < 0:               # not a descent direction: forget the curvature pairs
            self._s, self._y, self._rho = [], [], []
            direction, slope = -free_grad, -_dot(free_grad, free_grad)
        if slope == 0:
            self.converged = "stationary"
            return "converged"
        if self._s:
            t = 1.0
        else:                           # steepest descent: move the pixels by about 1 (RMS) on 0..255
            t = self._restart_scale / max(float(np.sqrt(np.mean(np.square(self.grad, dtype=np.float64)))), 1e-30)
        t, value, grad, extras = self._line_search(direction, slope, t)
        if t is None:
            return "failed"
        self._restart_scale = 1.0       # the next restart starts from the full step again
        x, _ = self._point(t, direction)
        s = x - self.x
        y = grad - self.grad
        sy = _dot(s, y)
        if sy > 1e-10 * _dot(y, y):
            self._s.append(s)
            self._y.append(y)
            self._rho.append(1.0 / sy)
            if len(self._s) > self.history:
                del self._s[0], self._y[0], self._rho[0]
        decrease = self.value - value
        self._flat_steps = self._flat_steps + 1 if decrease <= self.ftol * max(abs(self.value), 1e-30) else 0
        self.x = x
        self.value, self.grad, self.extras = value, grad, extras
        if self._flat_steps >= self.patience:
            self.converged = "no decrease"
        return "moved"

    def _trial(self, t, direction):
        """f, gradient, extras and the slope of the (projected) search path at step t."""
        x, inside = self._point(t, direction)
        value, grad, extras = self.evaluate(x)
        slope = _dot(grad, direction if inside is None else np.where(inside, direction, np.float32(0)))
        return value, grad, extras, slope

    def _line_search(self, direction, slope0, t):
        f0 = self.value
        previous = (0.0, f0, slope0, None, None)
        evaluations = 0
        while evaluations < self.max_evaluations:
            value, grad, extras, slope = self._trial(t, direction)
            evaluations += 1
            current = (t, value, slope, grad, extras)
            if not np.isfinite(value) or value > f0 + self.c1 * t * slope0 or (
                    evaluations > 1 and value >= previous[1]):
                return self._zoom(previous, current, direction, f0, slope0, evaluations)
            if abs(slope) <= -self.c2 * slope0:
                return t, value, grad, extras
            if slope >= 0:
                return self._zoom(current, previous, direction, f0, slope0, evaluations)
            # Still going down: extrapolate (cubic through the last two points, within [1.5t, 10t]).
            next_t = _cubic_minimum(previous[0], previous[1], previous[2], t, value, slope, 1.5 * t, 10.0 * t)
            previous, t = current, next_t
        t, value, slope, grad, extras = previous
        return (t, value, grad, extras) if grad is not None else (None, None, None, None)

    def _zoom(self, low, high, direction, f0, slope0, evaluations):
        """Shrink [low, high] (low: the lower value) until the strong Wolfe conditions hold."""
        while evaluations < self.max_evaluations:
            a, b = sorted((low[0], high[0]))
            width = b - a
            if np.isfinite(high[1]):
                t = _cubic_minimum(low[0], low[1], low[2], high[0], high[1], high[2],
                                   a + 0.1 * width, b - 0.1 * width)
            else:
                t = (a + b) / 2.0
            value, grad, extras, slope = self._trial(t, direction)
            evaluations += 1
            current = (t, value, slope, grad, extras)
            if not np.isfinite(value) or value > f0 + self.c1 * t * slope0 or value >= low[1]:
                high = current
            else:
                if abs(slope) <= -self.c2 * slope0:
                    return t, value, grad, extras
                if slope * (high[0] - low[0]) >= 0:
                    high = low
                low = current
        # Out of evaluations: take the best sufficient-decrease point found, if any.
        if low[3] is not None:
            return low[0], low[1], low[3], low[4]
        return None, None, None, None


class SwitchingLBFGS:
    """L-BFGS on `fun` until its first failed line search, then, once, L-BFGS on the function that
    `switch(stuck_optimizer)` returns, from the best point so far and with a fresh history (the
    curvature pairs came from the other function). Made for a bfloat16 objective whose noise stalls
    L-BFGS near convergence: it goes on in float32 (stylize). Otherwise it behaves as `LBFGS`."""

    def __init__(self, fun, x0, switch, **options):
        self._switch, self._options = switch, options
        self.optimizer = LBFGS(fun, x0, **{**options, "restarts": 0})
        self._evaluations_before = 0
        self.switched = False

    def __getattr__(self, name):        # x, extras, best_x, converged, ...: the current optimizer's
        return getattr(self.__dict__["optimizer"], name)

    @property
    def evaluations(self):
        return self._evaluations_before + self.optimizer.evaluations

    def step(self):
        self.optimizer.step()
        if self.switched or self.optimizer.converged != "line search failed":
            return
        fun = self._switch(self.optimizer)
        self.switched = True
        self._evaluations_before += self.optimizer.evaluations
        self.optimizer = LBFGS(fun, self.optimizer.best_x, **self._options)
        self.optimizer.step()


class Adam(_Tracker):
    """Adam on the pixels, optionally projected back into [low, high] after every step."""

    converged = None       # Adam has no test of its own; the iterations decide

    def __init__(self, fun, x0, learning_rate=2.0, beta1=0.9, beta2=0.999, epsilon=1e-8, bounds=(0.0, 255.0)):
        super().__init__(fun, x0)
        self.learning_rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.bounds = bounds
        self._m = np.zeros_like(self.x)
        self._v = np.zeros_like(self.x)
        self._t = 0

    def step(self):
        self._t += 1
        g = self.grad
        self._m = self.beta1 * self._m + (1 - self.beta1) * g
        self._v = self.beta2 * self._v + (1 - self.beta2) * g * g
        m_hat = self._m / (1 - self.beta1 ** self._t)
        v_hat = self._v / (1 - self.beta2 ** self._t)
        x = self.x - (self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)).astype(np.float32)
        if self.bounds is not None:
            x = np.clip(x, self.bounds[0], self.bounds[1])
        self.x = x.astype(np.float32)
        self.value, self.grad, self.extras = self.evaluate(self.x)
