"""Engine core benchmark (not a test): speed of the VGG-19 pass and of the default job.

Prints, in one run on this machine:
1. seconds per objective evaluation (forward + backward) and per L-BFGS iteration at 256 and 512 px;
2. the achieved GFLOP/s of that pass against a TensorFlow 2048x2048 float32 matmul peak measured now;
3. the default job (coarse-to-fine L-BFGS, shared/options.py defaults) against the TensorFlow
   tutorial's recipe (Adam lr 0.02 on 0..1 pixels = 5.1 on 0..255, beta1 0.99, epsilon 0.1/255,
   single scale, clipped to the valid range) optimizing the same objective at the same size: the time
   each needs to reach the baseline's final loss.

    python benchmarks/bench_engine.py [--weights VGG19.h5] [--baseline-steps 1000] [--job-size 256]

Without --weights it writes the seeded random test weights (same layout, same cost per pass;
the loss values then say nothing about picture quality).
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine_server  # noqa: E402,F401  (before numpy: its BLAS threads as the engine has them)
import numpy as np  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "shared", "data", "images")


def load_inputs(size):
    from engine_server.core.images import fit_size, load_rgb, resize

    content_file = os.path.join(DATA, "content", "tubingen.jpg")
    style_file = os.path.join(DATA, "style", "starry_night.jpg")
    if os.path.exists(content_file) and os.path.exists(style_file):
        content, style = load_rgb(content_file), load_rgb(style_file)
    else:
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:768, 0:1024]
        content = np.dstack([x / 4, y / 3, (x + y) / 7]).astype(np.float32) % 255
        style = rng.uniform(0, 255, (600, 800, 3)).astype(np.float32)
    content = np.clip(resize(content, fit_size(content.shape[:2], size)), 0, 255)
    return content, style


def matmul_peak_gflops(n=2048, repeats=10, dtype="float32"):
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_uniform((n, n), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_uniform((n, n), seed=(3, 4)), dtype)
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def interleaved_efficiency(model, sizes, options, rounds):
    """Pass speed against the matmul peak, measured in alternation (matmul, then one pass per size,
    `rounds` times), so that a load change on a shared machine hits both alike. Reports the best pass
    against the best matmul, and per round each pass against that round's matmul."""
    objectives = []
    for size in sizes:
        content, style = load_inputs(size)
        objective = build_objective(model, content, style, options)
        objective.evaluate(content)
        objectives.append((objective, content, pass_flops(content.shape[:2], options)))
    peaks, times = [], [[] for _ in sizes]
    for _ in range(rounds):
        peaks.append(matmul_peak_gflops(repeats=3, dtype=model.precision))
        for index, (objective, content, _) in enumerate(objectives):
            start = time.perf_counter()
            objective.evaluate(content)
            times[index].append(time.perf_counter() - start)
    per_size = []
    for (_, _, flops), seconds in zip(objectives, times):
        rounds_fraction = sorted(flops / t / 1e9 / peak for t, peak in zip(seconds, peaks))
        per_size.append({"best_s": min(seconds), "gflops": flops / min(seconds) / 1e9,
                         "fraction_of_peak": flops / min(seconds) / 1e9 / max(peaks),
                         "median_round_fraction": rounds_fraction[len(rounds_fraction) // 2],
                         "best_round_fraction": rounds_fraction[-1]})
    return {"rounds": rounds, "precision": model.precision, "matmul_peak_gflops": max(peaks), "matmul_round_gflops": peaks, "per_size": per_size}


def pass_flops(size, options):
    """FLOPs of one objective evaluation: convolutions forward + gradient w.r.t. their input
    (no weight gradients: the weights are constants), plus the Gram matrices forward and backward."""
    from engine_server.core.model import CONV_LAYERS, layer_names
    from tests.support.fake_vgg19 import layer_plan

    wanted = layer_names(list(options["style_layers"]) + [options["content_layer"]])
    deepest = max(CONV_LAYERS.index(name) for name in wanted)
    height, width = size
    flops = 0.0
    for name, cin, cout in layer_plan():
        if cin is None:
            height, width = height // 2, width // 2
            continue
        if CONV_LAYERS.index(name) > deepest:
            break
        flops += 2 * (2.0 * height * width * 9 * cin * cout)
        if name in layer_names(options["style_layers"]):
            flops += 2 * (2.0 * height * width * cout * cout)
    return flops


def build_objective(model, content, style, options):
    from engine_server.core.losses import Objective
    from engine_server.core.stylize import StyleInput, _Targets

    targets = _Targets(model, options, None)
    size = content.shape[:2]
    return Objective(model, options, targets.content(content), targets.styles([style], [None], [1.0], size))


def time_size(model, size, options, iterations):
    from engine_server.core.optimize import LBFGS
    from engine_server.core.stylize import PIXEL_BOUNDS

    content, style = load_inputs(size)
    objective = build_objective(model, content, style, options)
    objective.evaluate(content)                          # trace + warm up
    evaluations = []
    for _ in range(3):
        start = time.perf_counter()
        objective.evaluate(content)
        evaluations.append(time.perf_counter() - start)
    shape = content.shape
    optimizer = LBFGS(lambda x: objective.evaluate(x.reshape(shape)), content, bounds=PIXEL_BOUNDS)
    start = time.perf_counter()
    for _ in range(iterations):
        optimizer.step()
    per_iteration = (time.perf_counter() - start) / iterations
    return {"size": "%dx%d" % (shape[1], shape[0]), "s_per_evaluation": min(evaluations),
            "s_per_lbfgs_iteration": per_iteration,
            "evaluations_per_iteration": (optimizer.evaluations - 1) / iterations,
            "gflop_per_evaluation": pass_flops(shape[:2], options) / 1e9,
            "gflops": pass_flops(shape[:2], options) / min(evaluations) / 1e9}


def run_baseline(model, content, style, options, steps):
    """The TensorFlow tutorial's recipe on our objective: Adam, single scale, clipped pixels."""
    from engine_server.core.optimize import Adam

    objective = build_objective(model, content, style, options)
    shape = content.shape
    start, cpu_start = time.perf_counter(), time.process_time()
    optimizer = Adam(lambda x: objective.evaluate(x.reshape(shape)), content, learning_rate=0.02 * 255,
                     beta1=0.99, epsilon=0.1 / 255, bounds=(0.0, 255.0))
    trace = [(time.perf_counter() - start, optimizer.value, time.process_time() - cpu_start)]
    for step in range(1, steps + 1):
        optimizer.step()
        trace.append((time.perf_counter() - start, optimizer.best_value, time.process_time() - cpu_start))
        if step % 50 == 0:
            print("  baseline step %d: loss %.4g at %.1f s" % (step, optimizer.best_value, trace[-1][0]), flush=True)
    return trace


def run_default_job(model, content, style, options):
    from engine_server.core.stylize import StyleInput, stylize

    trace = []
    start, cpu_start = time.perf_counter(), time.process_time()

    def on_progress(progress):
        if progress.scale == progress.scales - 1:       # only the final scale's losses are the same objective
            trace.append((time.perf_counter() - start, progress.total_loss, time.process_time() - cpu_start))

    result = stylize(model, content, [StyleInput(style)], options, on_progress=on_progress)
    return trace, (time.perf_counter() - start, time.process_time() - cpu_start), result


def continue_lbfgs(model, content, style, options, start_image, target, offset_s, max_iterations):
    """More final-scale L-BFGS iterations from the default job's result until the loss reaches `target`."""
    from engine_server.core.optimize import LBFGS
    from engine_server.core.stylize import PIXEL_BOUNDS

    objective = build_objective(model, content, style, options)
    shape = content.shape
    start, cpu_start = time.perf_counter(), time.process_time()

    def elapsed():
        return offset_s[0] + time.perf_counter() - start, offset_s[1] + time.process_time() - cpu_start

    optimizer = LBFGS(lambda x: objective.evaluate(x.reshape(shape)), start_image, bounds=PIXEL_BOUNDS)
    for iteration in range(1, max_iterations + 1):
        optimizer.step()
        if optimizer.best_value <= target:
            return iteration, elapsed()
    return None, elapsed()


def first_time_below(trace, loss):
    """(wall s, process CPU s) of the first trace entry whose best-so-far loss is <= `loss`."""
    best = float("inf")
    for entry in trace:
        best = min(best, entry[1])
        if best <= loss:
            return entry[0], entry[2]
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description="engine core benchmark")
    parser.add_argument("--weights", help="VGG-19 notop .h5 (default: seeded random weights in the same layout)")
    parser.add_argument("--sizes", default="256,512", help="sizes for the per-iteration timing ('' to skip)")
    parser.add_argument("--timing-iterations", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8, help="alternations of matmul and passes for the efficiency")
    parser.add_argument("--precisions", default="float32,bfloat16",
                        help="pass precisions whose efficiency is measured, each against a matmul of its own type")
    parser.add_argument("--job-size", type=int, default=256, help="size of the default-job vs baseline race (0: no race)")
    parser.add_argument("--baseline-steps", type=int, default=1000, help="Adam steps of the baseline (tutorial: 1000)")
    parser.add_argument("--max-extra-iterations", type=int, default=200,
                        help="when the default job does not reach the baseline's loss, continue it this far")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from engine_server.core.model import VGG19Features
    from shared.options import defaults

    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = write_fake_vgg19_weights(os.path.join(tempfile.mkdtemp(), "vgg19_fake.h5"))
    model = VGG19Features.load(weights)
    options = defaults()
    results = {"weights": "given file" if args.weights else "seeded random (test layout)",
               "device": model.device, "tensorflow": tf.__version__, "cpu_count": os.cpu_count(),
               "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    print("device %s, TensorFlow %s, %d CPUs, load average %s" % (
        model.device, tf.__version__, os.cpu_count(), results["load_average"]), flush=True)

    results["sizes"] = []
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    for size in sizes:
        row = time_size(model, size, options, args.timing_iterations)
        results["sizes"].append(row)
        print("%s: %.2f s/evaluation, %.2f s/L-BFGS iteration (%.2f evaluations each), %.1f GFLOP/evaluation"
              % (row["size"], row["s_per_evaluation"], row["s_per_lbfgs_iteration"], row["evaluations_per_iteration"],
                 row["gflop_per_evaluation"]), flush=True)
    results["efficiency"] = []
    for precision in [p for p in args.precisions.split(",") if p] if sizes else []:
        efficiency = interleaved_efficiency(VGG19Features.load(weights, precision=precision), sizes, options,
                                            args.rounds)
        results["efficiency"].append(efficiency)
        for row, fractions in zip(results["sizes"], efficiency["per_size"]):
            print("%s, %s pass: best %.3f s = %.1f GFLOP/s = %.0f%% of the best %s matmul (%.1f GFLOP/s); per "
                  "round, pass vs that round's matmul: median %.0f%%, best %.0f%%" % (
                      row["size"], precision, fractions["best_s"], fractions["gflops"],
                      100 * fractions["fraction_of_peak"], precision, efficiency["matmul_peak_gflops"],
                      100 * fractions["median_round_fraction"], 100 * fractions["best_round_fraction"]), flush=True)

    if not args.job_size:
        return _write(results, args.json)
    content, style = load_inputs(args.job_size)
    job_options = dict(options, max_size=args.job_size)
    baseline = run_baseline(model, content, style, job_options, args.baseline_steps)
    target = baseline[-1][1]
    baseline_time = baseline[-1][0], baseline[-1][2]
    job, job_total, job_image = run_default_job(model, content, style, job_options)
    job_time = first_time_below(job, target)
    extra = None
    if job_time is None and args.max_extra_iterations:
        extra, job_time = continue_lbfgs(model, content, style, job_options, job_image, target, job_total,
                                         args.max_extra_iterations)
        results["race_continued"] = {"extra_final_scale_iterations": extra, "wall_s": job_time[0],
                                     "cpu_s": job_time[1]}
        if extra is None:
            job_time = None
    results["race"] = {"size": args.job_size, "baseline_steps": args.baseline_steps,
                       "baseline_final_loss": target, "baseline_wall_s": baseline_time[0],
                       "baseline_cpu_s": baseline_time[1],
                       "default_job_iterations": options["iterations"], "default_job_wall_s": job_total[0],
                       "default_job_cpu_s": job_total[1], "default_job_final_loss": job[-1][1] if job else None,
                       "default_job_to_baseline_loss_wall_s": job_time[0] if job_time else None,
                       "default_job_to_baseline_loss_cpu_s": job_time[1] if job_time else None,
                       "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None}
    print("race at %d px: baseline (Adam lr 0.02-equivalent, %d steps) final loss %.4g after %.1f s "
          "(%.1f CPU s)" % (args.job_size, args.baseline_steps, target, baseline_time[0], baseline_time[1]),
          flush=True)
    for fraction in (0.25, 0.5, 0.75):
        step = int(fraction * args.baseline_steps)
        print("  baseline after %d steps: loss %.4g at %.1f s" % (step, baseline[step][1], baseline[step][0]))
    print("default job (%d iterations, coarse-to-fine L-BFGS): final loss %.4g after %.1f s (%.1f CPU s)" % (
        options["iterations"], job[-1][1] if job else float("nan"), job_total[0], job_total[1]), flush=True)
    if extra is not None:
        print("  it needed %d more final-scale L-BFGS iterations to reach the baseline's loss" % extra)
    if job_time is None:
        print("the default job did not reach the baseline's final loss", flush=True)
    else:
        print("the default job reached the baseline's final loss after %.1f s (%.1f CPU s): %.1fx sooner "
              "(%.1fx in CPU time); load average now %s" % (
                  job_time[0], job_time[1], baseline_time[0] / job_time[0], baseline_time[1] / job_time[1],
                  results["race"]["load_average_after"]), flush=True)
    return _write(results, args.json)


def _write(results, path):
    if path:
        with open(path, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
