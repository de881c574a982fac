"""Preview benchmark (not a test; issue 16.3). Prints, in one run on this machine:

1. a 160 px, 30-iteration preview job on an idle engine: time from submit to its first picture and
   to its result (median of --rounds);
2. the same while a 512 px full job runs in the engine (from another client): the preview pauses it
   and runs first; the ratio to (1), and the full job's progress after the previews (it goes on);
3. the idle figures again, measured after (2), so a change of the machine's load shows.

    python benchmarks/bench_preview.py [--weights VGG19.h5] [--rounds 5]

Without --weights it writes the seeded random test weights (same layout and cost). The machine is
shared: the load average is printed with the figures.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from shared.client import Client  # noqa: E402
from shared.protocol import Pixels, StyleRef  # noqa: E402

PREVIEW = {"iterations": 30, "max_size": 160, "preview_interval_s": 0.25}
FULL = {"iterations": 10000, "max_size": 512, "preview_interval_s": 2.0}


def gradient(side, channels=4, seed=0):
    rows = []
    for y in range(side):
        row = bytearray()
        for x in range(side):
            row += bytes(((x * 255 // side + seed) % 256, (y * 255 // side) % 256, ((x + y) * 3 + seed) % 256,
                          255)[:channels])
        rows.append(bytes(row))
    return Pixels(side, side, channels, "u8", b"".join(rows))


def preview_round(client, image, style):
    started = time.monotonic()
    job = client.submit(image, [style], PREVIEW, priority="preview")
    first = None
    for event in job.events():
        if event.type == "progress" and event.pixels is not None and first is None:
            first = time.monotonic() - started
        if event.is_final:
            assert event.type == "result", event.header
    return first, time.monotonic() - started


def rounds(client, image, style, count):
    results = [preview_round(client, image, style) for _ in range(count)]
    return [r[0] for r in results], [r[1] for r in results]


def describe(name, firsts, totals):
    return ("%-34s first picture median %.2f s (min %.2f, max %.2f), result median %.2f s"
            % (name, statistics.median(firsts), min(firsts), max(firsts), statistics.median(totals)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from tests.support.engine_fixture import running_engine, short_temp_dir

    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = str(write_fake_vgg19_weights(os.path.join(home, "vgg19.h5"), seed=0))
    content, style = gradient(160), StyleRef.pixels(gradient(128, 3, seed=90), name="bench")
    full_image = gradient(512)
    print("load average before: %.2f %.2f %.2f on %d CPUs" % (os.getloadavg() + (os.cpu_count(),)))
    with running_engine(endpoint, weights, home=home):
        with Client(endpoint, autostart=False) as artist, Client(endpoint, autostart=False) as other:
            cold = preview_round(artist, content, style)
            print("first preview on a fresh engine: first picture %.2f s, result %.2f s (includes tracing)"
                  % cold)
            idle_before = rounds(artist, content, style, args.rounds)
            print(describe("idle engine:", *idle_before))
            full = other.submit(full_image, [style], FULL)
            while True:      # two progress events apart in time: the full job's pace before the previews
                event = full.poll(600)
                if event.type == "progress" and event.header["iteration"] >= 3:
                    break
            before = event.header["iteration"]
            pace = event.header["elapsed_s"] / before
            busy = rounds(artist, content, style, args.rounds)
            print(describe("with a 512 px full job running:", *busy))
            after = None
            deadline = time.monotonic() + 600
            while after is None and time.monotonic() < deadline:
                event = full.poll(1.0)
                if event is not None and event.type == "progress" and event.header["iteration"] > before:
                    after = event.header["iteration"]
            print("512 px full job: %.2f s per iteration before the previews; at iteration %d before them, "
                  "%s after" % (pace, before, after if after is not None else "no progress"))
            full.cancel()
            full.wait(600)
            idle_after = rounds(artist, content, style, args.rounds)
            print(describe("idle engine again:", *idle_after))
    idle_first = statistics.median(idle_before[0] + idle_after[0])
    idle_total = statistics.median(idle_before[1] + idle_after[1])
    print("ratio busy/idle: first picture %.2f, result %.2f"
          % (statistics.median(busy[0]) / idle_first, statistics.median(busy[1]) / idle_total))
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
