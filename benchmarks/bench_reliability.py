"""Reliability benchmark (not a test): 16 clients push tiny jobs through one engine until 200
results have come back, and the engine's RSS is sampled along the way. Prints JSON:
results, queue_full refusals, wall time, jobs/s, latency (submit -> result) p50/p95/max,
foreign events (must be 0), and the engine's RSS after every 20 results.

    python benchmarks/bench_reliability.py [--weights VGG19.h5] [--jobs 200] [--clients 16] [--max-queue 6]

Without --weights it writes the seeded random test weights (same layout and cost).
The job is the load test's: 32 x (16..31) px RGB u8, 2 iterations, max_size 32.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.support.engine_fixture import running_engine, short_temp_dir  # noqa: E402
from tests.support.proc_memory import rss_kb  # noqa: E402
from tests.test_reliability_load import run_load  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-queue", type=int, default=6)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="nse-bench-")
    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = write_fake_vgg19_weights(os.path.join(scratch, "vgg19.h5"), seed=0)
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    try:
        with running_engine(endpoint, weights, home=home,
                            extra_args=("--client-timeout", "30", "--max-queue", str(args.max_queue))) as engine:
            pid = engine.process.pid
            rss_samples = [(0, rss_kb(pid))]

            def on_result(stats):
                # called by the client threads; sample once per 20 results
                if stats.results % 20 == 0 and stats.results != rss_samples[-1][0]:
                    rss_samples.append((stats.results, rss_kb(pid)))

            started = time.monotonic()
            stats = run_load(endpoint, clients=args.clients, jobs=args.jobs, on_result=on_result)
            elapsed = time.monotonic() - started
            rss_samples.append((stats.results, rss_kb(pid)))
            alive = engine.process.poll() is None
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)

    latencies = sorted(stats.latencies)
    after_warm = [kb for count, kb in rss_samples if count >= 40]
    report = {
        "clients": args.clients, "max_queue": args.max_queue,
        "results": stats.results, "queue_full": stats.refused,
        "failures": stats.failures, "foreign_events": len(stats.foreign_events), "hung_clients": stats.hung,
        "engine_alive": alive,
        "wall_s": round(elapsed, 1), "jobs_per_s": round(stats.results / elapsed, 2),
        "latency_s": {"p50": round(statistics.median(latencies), 2),
                      "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
                      "max": round(latencies[-1], 2)},
        "rss_mib_by_results": [(count, round(kb / 1024, 1)) for count, kb in rss_samples],
        # after the first 40 results (TensorFlow's graphs for the 16 image sizes exist by then):
        # the spread of the samples, and the mean of the later half minus the mean of the earlier half
        "rss_spread_after_40_results_mib": round((max(after_warm) - min(after_warm)) / 1024, 1),
        "rss_trend_mib": round((statistics.mean(after_warm[len(after_warm) // 2:])
                                - statistics.mean(after_warm[:len(after_warm) // 2])) / 1024, 1),
    }
    print(json.dumps(report))
    return 0 if alive and not stats.failures and not stats.foreign_events and not stats.hung else 1


if __name__ == "__main__":
    sys.exit(main())
