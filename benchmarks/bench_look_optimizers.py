"""Issue 14 benchmark (not a test): optimizers per evaluation on one objective, single scale.

The tutorial's Adam (lr 5.1 on 0..255, beta1 0.99, epsilon 0.1/255), the engine's projected L-BFGS
(history 10, as shipped; `lbfgs100`: history 100), scipy's L-BFGS-B (an independent yardstick, when
scipy is installed; `scipy10`: maxcor 10) and `torch100`: optim.lbfgs as jcjohnson/neural-style
calls it (history 100, no line search, step 1, the first step min(1, 1/|g|_1)), clipped to 0..255.
All start from the content at 256 px on the issue's objective (`seed`, style 10, content 1, TV 0).
Prints the best loss after 10..200 evaluations, and the wall and CPU seconds.

    python benchmarks/bench_look_optimizers.py [--precision float32] [--methods adam,lbfgs10,scipy10]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine_server  # noqa: E402,F401  (before numpy: its BLAS threads as the engine has them)
import numpy as np  # noqa: E402

from benchmarks.bench_engine import build_objective, load_inputs  # noqa: E402

MARKS = (10, 20, 30, 50, 75, 100, 150, 200, 300)


def torch_lbfgs(fun, x0, history, budget):
    """optim.lbfgs without a line search (jcjohnson/neural-style's call), projected into 0..255."""
    x = x0.ravel().astype(np.float32)
    _, g, _ = fun(x)
    g = np.asarray(g, np.float64).ravel()
    pairs = []
    for k in range(budget - 1):
        q = -g
        alphas = []
        for s, y in reversed(pairs):
            a = np.dot(s, q) / np.dot(y, s)
            q = q - a * y
            alphas.append(a)
        if pairs:
            q = q * np.dot(pairs[-1][0], pairs[-1][1]) / np.dot(pairs[-1][1], pairs[-1][1])
        for (s, y), a in zip(pairs, reversed(alphas)):
            q = q + (a - np.dot(y, q) / np.dot(y, s)) * s
        t = min(1.0, 1.0 / np.abs(g).sum()) if k == 0 else 1.0
        new = np.clip(x + t * q, 0, 255).astype(np.float32)
        _, new_g, _ = fun(new)
        new_g = np.asarray(new_g, np.float64).ravel()
        s, y = (new - x).astype(np.float64), new_g - g
        if np.dot(s, y) > 1e-10:
            pairs = (pairs + [(s, y)])[-history:]
        x, g = new, new_g


def run(method, objective, content, budget):
    from engine_server.core.optimize import LBFGS, Adam

    shape, trace = content.shape, []
    start, cpu = time.perf_counter(), time.process_time()

    def fun(x):
        value, grad, parts = objective.evaluate(np.asarray(x, np.float32).reshape(shape))
        trace.append(float(value))
        return value, grad, parts

    note = ""
    if method == "adam":
        optimizer = Adam(fun, content, learning_rate=0.02 * 255, beta1=0.99, epsilon=0.1 / 255)
        while len(trace) < budget:
            optimizer.step()
    elif method.startswith("lbfgs"):
        optimizer = LBFGS(fun, content, history=int(method[5:] or 10), bounds=(0.0, 255.0), ftol=0)
        iterations = 0
        while len(trace) < budget and not optimizer.converged:
            optimizer.step()
            iterations += 1
        note = "%d iterations, %d line-search failures" % (iterations, optimizer.line_search_failures)
    elif method.startswith("scipy"):
        from scipy.optimize import minimize

        def fun64(x):
            value, grad, _ = fun(x)
            return float(value), np.asarray(grad, np.float64).ravel()

        result = minimize(fun64, content.ravel().astype(np.float64), jac=True, method="L-BFGS-B",
                          bounds=[(0, 255)] * content.size,
                          options=dict(maxcor=int(method[5:] or 10), maxfun=budget, maxiter=budget, ftol=0, gtol=0))
        note = "%d iterations" % result.nit
    elif method.startswith("torch"):
        torch_lbfgs(fun, content, int(method[5:] or 100), budget)
    best = np.minimum.accumulate(trace)
    print("%-9s %s  wall %.1f s, CPU %.1f s, load %.1f  %s" % (
        method, " ".join("%d:%.4g" % (k, best[k - 1]) for k in MARKS if k <= len(best)),
        time.perf_counter() - start, time.process_time() - cpu, os.getloadavg()[0], note), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description="issue 14: optimizers per evaluation")
    parser.add_argument("--weights")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--methods", default="adam,lbfgs10,lbfgs100,scipy10,torch100")
    parser.add_argument("--evaluations", type=int, default=200)
    args = parser.parse_args(argv)

    from engine_server.core.model import VGG19Features
    from shared.options import defaults

    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = write_fake_vgg19_weights(os.path.join(tempfile.mkdtemp(), "vgg19_fake.h5"))
    model = VGG19Features.load(weights, precision=args.precision)
    content, style = load_inputs(args.size)
    options = dict(defaults(), max_size=args.size, loss_normalization="seed", style_weight=10.0,
                   content_weight=1.0, tv_weight=0.0)
    objective = build_objective(model, content, style, options)
    objective.evaluate(content)                  # trace
    print("%d px, %s, CPUs %d, load %s" % (args.size, model.precision, os.cpu_count(), os.getloadavg()), flush=True)
    for method in args.methods.split(","):
        run(method, objective, content, args.evaluations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
