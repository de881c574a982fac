"""Preview benchmark (not a test; issue 16.3). Prints, in one run on this machine:

1. a 160 px, 30-iteration preview job on an idle engine: time from submit to its first picture and
   to its result (median of --rounds);
2. the same while a 512 px full job runs in the engine (from another client): the preview pauses it
   and runs first; the ratio to (1), and the full job's progress after the previews (it goes on);
3. the idle figures again, measured after (2), so a change of the machine's load shows;
4. with --fresh N, N rounds of fresh engines (each case its own engine): the first preview
   of a client that connects at the welcome (no warm-up then), 1.5 s after it (the warm-up has
   begun and gives way), after the warm-up is done, and 1.5 s after with options the warm-up does
   not cover (avg pooling: its own trace); a client's hello and round trips during the warm-up.

    python benchmarks/bench_preview.py [--weights VGG19.h5] [--rounds 5] [--fresh 0] [--full-scales 0]

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


def preview_round(client, image, style, options=None):
    started = time.monotonic()
    job = client.submit(image, [style], dict(PREVIEW, **(options or {})), priority="preview")
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


def round_trips(client, seconds):
    """The longest status and list_styles round trips over `seconds` (the engine's loop and library)."""
    longest = {"status": 0.0, "list_styles": 0.0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in longest:
            started = time.monotonic()
            getattr(client, name)()
            longest[name] = max(longest[name], time.monotonic() - started)
        time.sleep(0.05)
    return longest


def warm_up_done(engine):
    with open(os.path.join(engine.home, "state", "neural-style", "engine.log"), encoding="utf-8") as log:
        return "warm-up done" in log.read()


def warmed_up(engine, timeout=120.0):
    """Seconds until the engine logs the end of its warm-up (None: it did not within `timeout`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if warm_up_done(engine):
            return time.monotonic() - started
        time.sleep(0.1)
    return None


DURING_WARM_UP_S = 1.5     # after the welcome: the warm-up (1 s after the last client left) is tracing


def fresh_round(weights, content, style):
    """One round of the fresh-engine cases (see the module doc); -> printed lines."""
    from tests.support.engine_fixture import running_engine, short_temp_dir
    lines = []
    cases = (("at the welcome", 0.0, {}), ("%.1f s after the welcome" % DURING_WARM_UP_S, DURING_WARM_UP_S, {}),
             ("after the warm-up", None, {}), ("avg pooling %.1f s after the welcome" % DURING_WARM_UP_S,
                                               DURING_WARM_UP_S, {"pooling": "avg"}))
    for name, delay, options in cases:
        home = short_temp_dir()
        endpoint = "ipc://" + os.path.join(home, "engine.sock")
        started = time.monotonic()
        with running_engine(endpoint, weights, home=home) as engine:
            welcome = time.monotonic() - started
            waited = warmed_up(engine) if delay is None else time.sleep(delay)
            connecting = time.monotonic()
            with Client(endpoint, autostart=False) as artist:
                connected = time.monotonic() - connecting
                first, total = preview_round(artist, content, style, options)
            if delay is None:
                name += " (logged %s)" % ("%.2f s after the welcome" % waited if waited is not None else "never")
        lines.append("fresh engine (welcome after %.1f s), preview %s: connect %.3f s, first picture %.2f s, "
                     "result %.2f s" % (welcome, name, connected, first, total))
        if delay == 0.0:
            lines.append(loop_during_warm_up(weights))
    return lines


def loop_during_warm_up(weights, seconds=3.0):
    """A fresh engine left alone for DURING_WARM_UP_S (its warm-up has begun), then a client: how long
    its hello took, and the longest status and list_styles round trips in the next `seconds`."""
    from tests.support.engine_fixture import running_engine, short_temp_dir
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    with running_engine(endpoint, weights, home=home) as engine:
        time.sleep(DURING_WARM_UP_S)
        connecting = time.monotonic()
        with Client(endpoint, autostart=False) as client:
            connected = time.monotonic() - connecting
            longest = round_trips(client, seconds)
        with open(os.path.join(engine.home, "state", "neural-style", "engine.log"), encoding="utf-8") as log:
            ended = [line.split(": ", 1)[-1].strip() for line in log if "warm-up" in line]
    return ("fresh engine, a client %.1f s after the welcome: hello %.3f s, then for %.0f s the longest status "
            "%.3f s, list_styles %.3f s (%s)" % (DURING_WARM_UP_S, connected, seconds, longest["status"],
                                                 longest["list_styles"], "; ".join(ended) or "no warm-up"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fresh", type=int, default=0, help="rounds of the fresh-engine cases (then only those)")
    parser.add_argument("--full-scales", type=int, default=0,
                        help="the full job's scales (0: automatic, its first scale is 256 px; 1: 512 px from the start)")
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
    if args.fresh:
        for index in range(args.fresh):
            for line in fresh_round(weights, content, style):
                print("round %d: %s" % (index + 1, line), flush=True)
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
        return
    with running_engine(endpoint, weights, home=home):
        with Client(endpoint, autostart=False) as artist, Client(endpoint, autostart=False) as other:
            cold = preview_round(artist, content, style)
            print("first preview on a fresh engine: first picture %.2f s, result %.2f s (includes tracing)"
                  % cold)
            idle_before = rounds(artist, content, style, args.rounds)
            print(describe("idle engine:", *idle_before))
            full = other.submit(full_image, [style], dict(FULL, scales=args.full_scales))
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
