"""Issue 14 benchmark (not a test): precision race, default job vs the tutorial's Adam, honest ETA.

1. `--precision-sizes 256,512`: the default job in float32 and in bfloat16, one after the other on
   the same machine; the time each needs to reach the worse of the two final losses (each job's
   own final-scale losses).
2. `--race-sizes 256,512`: the default job (`--race-precision`, the product's default `auto`)
   against the TensorFlow tutorial's Adam (lr 0.02 on 0..1 = 5.1 on 0..255, beta1 0.99, epsilon
   0.1/255, single scale, clipped; `--adam-precision`, float32 like the tutorial) on the same objective. At
   256 px the objective is `seed`, style weight 10, content weight 1, TV 0 (the issue's setting);
   at 512 px the defaults. Adam runs until it reaches the job's final loss or `--adam-budget-s`;
   when it does not get there, the ratio printed is a lower bound ("> x"). Also printed: the ratio
   had the job stopped after 25/50/75 % of its final-scale iterations (how it falls as a job goes on).
   `--race-scales N` runs the job on N scales instead of the automatic plan.
3. During each default job: the ETA reported at 25/50/75 % of the work against the time that was
   really left.
4. `--switch-sizes 256,512`: the default job in bfloat16 as the product runs it (on to float32 at
   its first failed line search) against the same job without that switch (the benchmark tells its
   model it has no float32 weights), one after the other; `--switch-float32` adds the float32 job.

    python benchmarks/bench_look.py [--weights VGG19.h5] [--precision-sizes 256,512] [--race-sizes 256,512]
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_engine import build_objective, first_time_below, load_inputs  # noqa: E402


def load():
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def default_job(model, content, style, options, seen=None):
    """(trace [(wall s, final-scale loss, CPU s)], total wall s, result, eta checks, total CPU s).
    `seen` (a dict) gets the first progress that says why the precision changed."""
    from engine_server.core.stylize import StyleInput, stylize

    trace, events = [], []
    start, cpu_start = time.perf_counter(), time.process_time()

    def on_progress(progress):
        now = time.perf_counter() - start
        events.append((now, progress.fraction, progress.eta_s))
        if seen is not None and progress.precision_note and "note" not in seen:
            seen.update(note=progress.precision_note, wall_s=now, cpu_s=time.process_time() - cpu_start,
                        iteration=progress.iteration)
        if progress.scale == progress.scales - 1:
            trace.append((now, progress.total_loss, time.process_time() - cpu_start))

    result = stylize(model, content, [StyleInput(style)], options, on_progress=on_progress)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    checks = []
    for share in (0.25, 0.5, 0.75):
        now, fraction, eta = next(e for e in events if e[1] >= share)
        checks.append({"fraction": fraction, "eta_s": eta, "real_left_s": total - now,
                       "error": eta / (total - now) - 1.0 if total > now else None})
    return trace, total, result, checks, cpu


def adam(model, content, style, options, target, budget_s, max_steps):
    from engine_server.core.optimize import Adam

    objective = build_objective(model, content, style, options)
    shape = content.shape
    start, cpu_start = time.perf_counter(), time.process_time()
    optimizer = Adam(lambda x: objective.evaluate(x.reshape(shape)), content, learning_rate=0.02 * 255,
                     beta1=0.99, epsilon=0.1 / 255, bounds=(0.0, 255.0))
    trace = []      # (wall s, CPU s, best loss) after each step
    for step in range(1, max_steps + 1):
        optimizer.step()
        now = time.perf_counter() - start
        trace.append((now, time.process_time() - cpu_start, float(optimizer.best_value)))
        if optimizer.best_value <= target:
            return {"reached": True, "steps": step, "wall_s": now, "cpu_s": time.process_time() - cpu_start,
                    "loss": optimizer.best_value, "trace": trace}
        if now > budget_s:
            break
        if step % 50 == 0:
            print("    adam step %d: %.4g at %.0f s (target %.4g)" % (step, optimizer.best_value, now, target),
                  flush=True)
    return {"reached": False, "steps": step, "wall_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu_start, "loss": optimizer.best_value, "trace": trace}


def ratios_along(job_trace, adam_trace):
    """The race's wall ratio had the job stopped after 25/50/75/100 % of its final-scale iterations:
    [(share, job wall s, job loss, Adam's wall s to that loss or None)]."""
    rows = []
    for share in (0.25, 0.5, 0.75, 1.0):
        wall, loss, _ = job_trace[max(0, int(round(share * len(job_trace))) - 1)]
        reached = next((a_wall for a_wall, _, a_loss in adam_trace if a_loss <= loss), None)
        rows.append((share, wall, loss, reached))
    return rows


def switch_race(weights, size, with_float32):
    """The bfloat16 default job with and without its float32 finish (and float32 alone)."""
    from engine_server.core.model import VGG19Features
    from shared.options import defaults

    content, style = load_inputs(size)
    options = dict(defaults(), max_size=size)
    if size <= 256:
        options.update(loss_normalization="seed", style_weight=10.0, content_weight=1.0, tv_weight=0.0)
    stuck = VGG19Features.load(weights, precision="bfloat16")
    stuck.can_compute_in = lambda precision: precision == "bfloat16"      # the job before the switch
    runs = [("bfloat16, no switch", stuck), ("bfloat16 -> float32", VGG19Features.load(weights, precision="bfloat16"))]
    if with_float32:
        runs.append(("float32", VGG19Features.load(weights, precision="float32")))
    rows = []
    # Each job reports losses in the precision it computes in; the results are also judged in float32.
    judge = build_objective(runs[-1][1] if with_float32 else VGG19Features.load(weights, precision="float32"),
                            content, style, options)
    for name, model in runs:
        seen, load_before = {}, load()
        trace, total, result, _, cpu = default_job(model, content, style, options, seen)
        exact = judge.evaluate(result)[0]
        rows.append({"job": name, "final_loss": trace[-1][1], "float32_loss": exact, "wall_s": total, "cpu_s": cpu,
                     "switch": seen, "load": [load_before, load()], "trace": trace})
        print("switch race %d px (%s): %s: final loss %.5g (in float32: %.5g), %.1f s, %.1f CPU s, load %s -> %s; %s"
              % (size, options["loss_normalization"], name, trace[-1][1], exact, total, cpu, load_before, load(),
                 seen or "no switch"), flush=True)
    target = rows[0]["final_loss"]
    for row in rows[1:]:
        reached = next(((w, c) for w, loss, c in row["trace"] if loss <= target), None)
        row["to_no_switch_loss"] = reached
        print("  %s reaches the no-switch job's final loss %.5g after %s (wall s, CPU s); it took %.1f s, %.1f CPU s"
              % (row["job"], target, reached, rows[0]["wall_s"], rows[0]["cpu_s"]), flush=True)
    for row in rows:
        del row["trace"]
    return {"size": size, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description="issue 14 benchmark")
    parser.add_argument("--weights")
    parser.add_argument("--precision-sizes", default="256,512")
    parser.add_argument("--race-sizes", default="256,512")
    parser.add_argument("--race-precision", default="auto", help="the default job's (the product's default)")
    parser.add_argument("--race-scales", type=int, default=0, help="the job's scales (0: automatic, the default)")
    parser.add_argument("--adam-precision", default="float32", help="the tutorial's Adam's (the tutorial: float32)")
    parser.add_argument("--precision-iterations", default="",
                        help="iterations of the precision race's jobs per size, e.g. '200,60' (default: the default)")
    parser.add_argument("--adam-budget-factor", type=float, default=6.0,
                        help="stop Adam after this many times the default job's time (enough to decide >= 5x)")
    parser.add_argument("--adam-steps", type=int, default=1000)
    parser.add_argument("--switch-sizes", default="")
    parser.add_argument("--switch-float32", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from engine_server.core.model import VGG19Features
    from shared.options import defaults

    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = write_fake_vgg19_weights(os.path.join(tempfile.mkdtemp(), "vgg19_fake.h5"))
    models = {}

    def model_for(precision):
        if precision not in models:
            models[precision] = VGG19Features.load(weights, precision=precision)
        return models[precision]

    results = {"cpu_count": os.cpu_count(), "load_start": load(), "precision": [], "race": [], "switch": []}
    print("CPUs %d, load %s" % (os.cpu_count(), load()), flush=True)
    for size in [int(s) for s in args.switch_sizes.split(",") if s]:
        results["switch"].append(switch_race(weights, size, args.switch_float32))
    for size in [int(s) for s in args.race_sizes.split(",") if s]:
        content, style = load_inputs(size)
        options = dict(defaults(), max_size=size)
        if size <= 256:
            options.update(loss_normalization="seed", style_weight=10.0, content_weight=1.0, tv_weight=0.0)
        options["scales"] = args.race_scales
        model = model_for(args.race_precision)
        load_before = load()
        trace, total, _, checks, cpu = default_job(model, content, style, options)
        target = trace[-1][1]
        print("race %d px (%s, %s): default job final loss %.5g in %.1f s, %.1f CPU s (load %s); eta checks %s" % (
            size, options["loss_normalization"], model.precision, target, total, cpu, load(),
            ", ".join("%.0f%%: %.1f s vs %.1f s" % (100 * c["fraction"], c["eta_s"], c["real_left_s"])
                      for c in checks)), flush=True)
        adam_model = model_for(args.adam_precision)
        baseline = adam(adam_model, content, style, options, target, args.adam_budget_factor * total, args.adam_steps)
        ratio, cpu_ratio = baseline["wall_s"] / total, baseline["cpu_s"] / cpu
        print("  adam (%s): %s after %d steps, %.1f s, %.1f CPU s (loss %.5g): %s%.2fx wall, %.2fx CPU (load %s)" % (
            adam_model.precision, "reached it" if baseline["reached"] else "had NOT reached it", baseline["steps"],
            baseline["wall_s"], baseline["cpu_s"], baseline["loss"], "" if baseline["reached"] else "> ", ratio,
            cpu_ratio, load()), flush=True)
        along = ratios_along(trace, baseline.pop("trace"))
        print("  had the job stopped after a share of its final-scale iterations: " + ", ".join(
            "%.0f%%: %.5g at %.1f s, %s" % (100 * share, loss, wall, "%.2fx" % (reached / wall) if reached else "-")
            for share, wall, loss, reached in along), flush=True)
        results["race"].append({"size": size, "options": {k: options[k] for k in (
            "loss_normalization", "style_weight", "content_weight", "tv_weight")}, "precision": model.precision,
            "adam_precision": adam_model.precision, "job_final_loss": target, "job_s": total, "job_cpu_s": cpu,
            "eta_checks": checks, "adam": baseline, "ratio": ratio, "cpu_ratio": cpu_ratio,
            "ratio_is_lower_bound": not baseline["reached"], "load_before": load_before, "load_after": load(),
            "scales": args.race_scales, "ratios_along": along})
    precision_iterations = [int(n) for n in args.precision_iterations.split(",") if n]
    for index, size in enumerate([int(s) for s in args.precision_sizes.split(",") if s]):
        content, style = load_inputs(size)
        options = dict(defaults(), max_size=size)
        if index < len(precision_iterations):
            options["iterations"] = precision_iterations[index]
        runs = {}
        for precision in ("float32", "bfloat16"):
            model = model_for(precision)
            trace, total, _, checks, _ = default_job(model, content, style, options)
            runs[precision] = (trace, total)
            print("  %d px %s: final loss %.5g in %.1f s (load %s); eta checks %s" % (
                size, precision, trace[-1][1], total, load(),
                ", ".join("%.0f%%: %.1f s vs %.1f s" % (100 * c["fraction"], c["eta_s"], c["real_left_s"])
                          for c in checks)), flush=True)
            results.setdefault("eta", []).append({"size": size, "precision": precision, "checks": checks})
        target = max(runs[p][0][-1][1] for p in runs)
        row = {"size": size, "iterations": options["iterations"], "target_loss": target, "load_after": load()}
        for precision, (trace, total) in runs.items():
            reached = first_time_below(trace, target)
            row[precision] = {"final_loss": trace[-1][1], "job_s": total, "to_target_s": reached[0]}
        results["precision"].append(row)
        print("precision race %d px: to loss %.5g float32 %.1f s, bfloat16 %.1f s (load %s)" % (
            size, target, row["float32"]["to_target_s"], row["bfloat16"]["to_target_s"], load()), flush=True)

    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
