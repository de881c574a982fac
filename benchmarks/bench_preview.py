"""Preview benchmark (not a test; issue 16.3). Prints, in one run on this machine:

1. a 160 px, 30-iteration preview job on an idle engine: time from submit to its first picture and
   to its result (median of --rounds);
2. the same while a 512 px full job runs in the engine (from another client): the preview pauses it
   and runs first; the ratio to (1), and the full job's progress after the previews (it goes on);
3. the idle figures again, measured after (2), so a change of the machine's load shows;
4. with --fresh N, N rounds of fresh engines (each case its own engine): the time to the welcome;
   the longest status and list_styles round trips during the engine's first seconds (its warm-up);
   the first preview submitted at the welcome (during the warm-up), after the warm-up is done, and
   with options the warm-up does not cover (avg pooling: its own trace).

    python benchmarks/bench_preview.py [--weights VGG19.h5] [--rounds 5] [--fresh 0]

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


def fresh_round(weights, content, style):
    """One round of the fresh-engine cases (see the module doc); -> printed lines."""
    from tests.support.engine_fixture import running_engine, short_temp_dir
    lines = []
    for case in ("at welcome", "after warm-up", "avg pooling at welcome"):
        home = short_temp_dir()
        endpoint = "ipc://" + os.path.join(home, "engine.sock")
        started = time.monotonic()
        with running_engine(endpoint, weights, home=home) as engine:
            welcome = time.monotonic() - started
            with Client(endpoint, autostart=False) as artist:
                if case == "after warm-up":
                    waited = warmed_up(engine)
                    first, total = preview_round(artist, content, style)
                    lines.append("fresh engine, preview after the warm-up (logged done %s s after the welcome): "
                                 "first picture %.2f s, result %.2f s"
                                 % ("%.2f" % waited if waited is not None else "never", first, total))
                    continue
                options = {"pooling": "avg"} if "avg" in case else {}
                first, total = preview_round(artist, content, style, options)
                lines.append("fresh engine, %s preview at the welcome (welcome after %.2f s): first picture %.2f s, "
                             "result %.2f s" % ("an avg-pooling" if options else "a", welcome, first, total))
        if case == "at welcome":
            lines.append(loop_during_warm_up(weights))
    return lines


def loop_during_warm_up(weights, limit=10.0):
    """A fresh engine left to warm up: its longest status and list_styles round trips in its first
    second (before the warm-up) and then until the warm-up is done (at most `limit` s)."""
    from tests.support.engine_fixture import running_engine, short_temp_dir
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    with running_engine(endpoint, weights, home=home) as engine:
        with Client(endpoint, autostart=False) as client:
            first = round_trips(client, 1.0)
            started, during = time.monotonic(), {"status": 0.0, "list_styles": 0.0}
            while not warm_up_done(engine) and time.monotonic() - started < limit:
                for name, seconds in round_trips(client, 0.2).items():
                    during[name] = max(during[name], seconds)
            waited = time.monotonic() - started
    return ("fresh engine left alone: longest round trip in its first second: status %.3f s, list_styles %.3f s; "
            "then until the warm-up was done (%s): status %.3f s, list_styles %.3f s"
            % (first["status"], first["list_styles"], "%.1f s later" % waited if waited < limit else "not seen",
               during["status"], during["list_styles"]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fresh", type=int, default=0, help="rounds of the fresh-engine cases (then only those)")
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
