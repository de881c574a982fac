"""Full-resolution passes at any size (not a test): seconds per evaluation and peak memory at 1, 4 and
16 megapixels, tiled as the engine chooses, and a 4096x4096 RGBA layer stylized at full resolution
through the engine.

    python benchmarks/bench_tiles.py [--weights VGG19.h5] [--sizes 1024,2048,4096] [--job 4096]
                                     [--job-iterations 4] [--json FILE]

Each size runs in its own process, so that its peak RSS (VmHWM) is its own. One evaluation is one
forward + backward pass of the whole objective (an L-BFGS iteration costs 1.0-1.3 of them). The
first evaluation (tracing) is not timed. Without --weights the seeded random test weights are used
(same layout, same arithmetic per pass).
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def status_mb(pid, field):
    from tests.support.proc_memory import peak_rss_kb, rss_kb

    return (rss_kb if field == "VmRSS" else peak_rss_kb)(pid) / 1024.0


def one_size(weights, side, mode):
    """In a fresh process: time evaluations at side x side, as the engine would run them ("auto"), in
    one pass ("untiled") or in tiles of a given core side (a number)."""
    import numpy as np

    from engine_server.core import memory
    from engine_server.core.losses import Objective
    from engine_server.core.model import VGG19Features
    from engine_server.core.stylize import _Targets
    from shared.options import defaults

    model = VGG19Features.load(weights)
    options = defaults()
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (side, side, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (512, 512, 3)).astype(np.float32)
    idle = status_mb(os.getpid(), "VmRSS")
    targets = _Targets(model, options, None)
    started = time.perf_counter()
    objective = Objective(model, options, targets.content(image),
                          targets.styles([style], [None], [1.0], (side, side)))
    targets_s = time.perf_counter() - started
    if mode != "auto":
        memory.tile_core = lambda size, layers, device: None if mode == "untiled" else int(mode)
    fitted = memory.FittedObjective(objective, (side, side))
    fitted.evaluate(image)
    started = time.perf_counter()
    fitted.evaluate(image)
    seconds = time.perf_counter() - started
    tiles = None
    if fitted.core is not None:
        from engine_server.core.tiling import TileGrid
        tiles = len(TileGrid((side, side), fitted.layers, fitted.core).tiles)
    print(json.dumps({"side": side, "megapixels": side * side / 1e6, "mode": mode,
                      "core": fitted.core, "tiles": tiles, "targets_s": targets_s, "s_per_evaluation": seconds,
                      "idle_rss_mb": idle, "peak_rss_mb": status_mb(os.getpid(), "VmHWM"),
                      "job_budget_mb": (memory.job_budget(model.device) or 0) / 2**20}))


def run_child(args_list):
    run = subprocess.run([sys.executable, os.path.abspath(__file__)] + args_list, capture_output=True, text=True)
    if run.returncode != 0:
        return {"failed": run.returncode, "stderr": run.stderr[-1500:]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def big_job(weights, side, iterations):
    """A side x side RGBA u8 layer through a real engine at max_size = side (full resolution)."""
    from shared.client import Client
    from shared.protocol import Pixels, StyleRef
    from tests.support.engine_fixture import running_engine, short_temp_dir

    home = short_temp_dir("nsb-")
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    row = bytes((x * 5) % 256 for x in range(side * 4))
    data = b"".join(row[(y * 4) % 1024:] + row[:(y * 4) % 1024] for y in range(side))
    with running_engine(endpoint, weights, home=home) as engine:
        idle = status_mb(engine.process.pid, "VmRSS")
        with Client(endpoint, autostart=False) as client:
            client.connect()
            style = StyleRef.pixels(Pixels(64, 64, 3, "u8", bytes(range(256)) * 48))
            started = time.perf_counter()
            job = client.submit(Pixels(side, side, 4, "u8", data), [style],
                                {"iterations": iterations, "max_size": side, "preview_interval_s": 60})
            progress = []
            for event in job.events():
                if event.type == "progress":
                    progress.append((time.perf_counter() - started, event.header.get("iteration"),
                                     event.header.get("scale")))
            final = job.final
            elapsed = time.perf_counter() - started
        peak = status_mb(engine.process.pid, "VmHWM")
        log = open(os.path.join(home, "state", "neural-style", "engine.log")).read()
    return {"side": side, "iterations": iterations, "result": final.type,
            "result_size": [final.pixels.width, final.pixels.height] if final.pixels is not None else None,
            "message": final.header.get("message"), "seconds": elapsed, "progress": progress,
            "engine_idle_rss_mb": idle, "engine_peak_rss_mb": peak,
            "tiling_log": [line for line in log.splitlines() if "passes in tiles" in line]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights")
    parser.add_argument("--sizes", default="1024,2048,4096")
    parser.add_argument("--compare", default="1024:untiled,1024:512",
                        help="size:mode pairs also timed, to compare (mode: untiled or a tile core side)")
    parser.add_argument("--job", type=int, default=4096, help="side of the layer stylized at full resolution (0: skip)")
    parser.add_argument("--job-iterations", type=int, default=4)
    parser.add_argument("--json")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = os.path.join("/tmp", "bench-tiles-vgg19.h5")
        if not os.path.exists(weights):
            write_fake_vgg19_weights(weights, seed=0)
    if args.one_size:
        return one_size(weights, args.one_size, args.mode)
    report = {"load_average_start": os.getloadavg(), "sizes": []}
    runs = [(int(s), "auto") for s in args.sizes.split(",") if s]
    runs += [(int(pair.split(":")[0]), pair.split(":")[1]) for pair in args.compare.split(",") if pair]
    for side, mode in sorted(runs):
        row = run_child(["--weights", weights, "--one-size", str(side), "--mode", mode])
        report["sizes"].append(row)
        print(json.dumps(row), flush=True)
    if args.job:
        report["job"] = big_job(weights, args.job, args.job_iterations)
        print(json.dumps(report["job"]), flush=True)
    report["load_average_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
