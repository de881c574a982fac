"""Style library benchmark: time from stylize() start to the first iteration, cached vs uncached style.

    python3 benchmarks/bench_library.py [--weights H5] [--sizes 256,512] [--repeats 3]

What it measures (median of --repeats, after one discarded warm-up per size):
  uncached     StyleInput without a key: the style goes through VGG-19 (the baseline)
  cold cache   a library style with no Grams yet: VGG-19 pass + writing the Grams into its record
  warm, disk   Grams read from the record by a fresh StyleLibrary (as after an engine restart)
  warm, memory the same StyleLibrary again (decoded Grams kept in memory)
and a few library operations (add, list, Gram write). The job queue and protocol are not included:
the cache only changes what happens inside stylize() before its first iteration.
Without --weights (or $NEURAL_STYLE_WEIGHTS / the installed file) seeded random weights in the
real layout are used: the arithmetic, and so the timing, is the same as with the real file.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from engine_server.errors import Cancelled  # noqa: E402
from engine_server.images import load_rgb  # noqa: E402
from engine_server.library import StyleLibrary  # noqa: E402
from engine_server.model import VGG19Features  # noqa: E402
from engine_server.stylize import StyleInput, stylize  # noqa: E402
from shared.options import defaults  # noqa: E402
from shared.paths import weights_path  # noqa: E402

IMAGES = "/work/shared/data/images"


def find_weights(explicit, scratch):
    path = weights_path(explicit)
    if os.path.exists(path):
        return path, "real file"
    from tests.support.fake_vgg19 import write_fake_vgg19_weights
    return str(write_fake_vgg19_weights(os.path.join(scratch, "fake_vgg19.h5"), seed=0)), "seeded random (same cost)"


def time_to_first_iteration(model, content, style, options, library=None, key=None):
    """(seconds from the stylize() call to the first progress report, forward passes spent)."""
    first = []

    def on_progress(progress):
        if not first:
            first.append(time.perf_counter())
    passes = model.passes
    started = time.perf_counter()
    try:
        stylize(model, content, [StyleInput(style, key=key)], options, on_progress=on_progress,
                should_cancel=lambda: bool(first), gram_cache=library.gram_cache if library else None)
    except Cancelled:
        pass
    return first[0] - started, model.passes - passes


def median(samples):
    return statistics.median(samples)


def bench_size(model, content, style_pixels, size, repeats, folder):
    options = {**defaults(), "max_size": size, "iterations": 200}
    time_to_first_iteration(model, content, style_pixels, options)            # warm-up: traces
    rows = []
    samples = [time_to_first_iteration(model, content, style_pixels, options) for _ in range(repeats)]
    rows.append(("uncached (baseline)", samples))

    library = StyleLibrary(os.path.join(folder, "size%d" % size))
    cold = []
    for _ in range(repeats):
        style_id = library.add_image(style_pixels, "bench").id
        cold.append(time_to_first_iteration(model, content, library.image(style_id), options, library, style_id))
    rows.append(("cold cache (compute + write Grams)", cold))

    disk = []
    for _ in range(repeats):
        fresh = StyleLibrary(library.folder)
        disk.append(time_to_first_iteration(model, content, fresh.image(style_id), options, fresh, style_id))
    rows.append(("warm cache, read from disk", disk))
    image = library.image(style_id)
    memory = [time_to_first_iteration(model, content, image, options, library, style_id) for _ in range(repeats)]
    rows.append(("warm cache, in memory", memory))
    record_bytes = os.path.getsize(library.path_of(style_id))
    return rows, record_bytes


def bench_operations(style_pixels, folder, repeats):
    library = StyleLibrary(os.path.join(folder, "ops"))
    adds = []
    for n in range(20):
        started = time.perf_counter()
        style_id = library.add_image(style_pixels, "style %d" % n).id
        adds.append(time.perf_counter() - started)
    lists_cold, lists_warm = [], []
    for _ in range(repeats):
        fresh = StyleLibrary(library.folder)
        started = time.perf_counter()
        fresh.list()
        lists_cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        fresh.list()
        lists_warm.append(time.perf_counter() - started)
    puts = []
    rng = np.random.default_rng(0)
    for n, channels in enumerate((64, 128, 256, 512, 512)):     # one size's five style layers
        gram = rng.random((channels, channels), dtype=np.float32)
        started = time.perf_counter()
        library.gram_cache.put(style_id, (256, 256), "layer%d" % n, "max", gram)
        puts.append(time.perf_counter() - started)
    return [("add a %dx%d image" % style_pixels.shape[1::-1], median(adds)),
            ("list 20 styles, fresh StyleLibrary", median(lists_cold)),
            ("list 20 styles, again (stat cache)", median(lists_warm)),
            ("write one size's 5 Grams (5 puts, 2.4 MB)", sum(puts))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--content", default=os.path.join(IMAGES, "content", "golden_gate.jpg"))
    parser.add_argument("--style", default=os.path.join(IMAGES, "style", "starry_night.jpg"))
    parser.add_argument("--sizes", default="256,512", help="max_size values, comma-separated")
    parser.add_argument("--style-side", type=int, default=512, help="longest side of the style image added")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        weights, kind = find_weights(args.weights, scratch)
        model = VGG19Features.load(weights)
        content = load_rgb(args.content)
        style = load_rgb(args.style)
        scale = args.style_side / float(max(style.shape[:2]))
        from engine_server.images import resize
        style = np.clip(np.rint(resize(style, (round(style.shape[0] * scale), round(style.shape[1] * scale)))), 0, 255)
        style = style.astype(np.uint8)
        print("weights: %s (%s); device %s; load average %.1f; cpus %d"
              % (os.path.basename(weights), kind, model.device, os.getloadavg()[0], os.cpu_count()))
        print("content %s %dx%d, style %s %dx%d, median of %d\n"
              % (os.path.basename(args.content), content.shape[1], content.shape[0],
                 os.path.basename(args.style), style.shape[1], style.shape[0], args.repeats))
        print("| max_size | case | submit -> first iteration (s) | VGG-19 passes |")
        print("| ---: | --- | ---: | ---: |")
        for size in (int(s) for s in args.sizes.split(",")):
            rows, record_bytes = bench_size(model, content, style, size, args.repeats, scratch)
            for name, samples in rows:
                print("| %d | %s | %.3f | %d |" % (size, name, median([s[0] for s in samples]), samples[-1][1]))
            print("| %d | style record with its Grams | %.1f MB | |" % (size, record_bytes / 1e6))
        print("\n| library operation | seconds |")
        print("| --- | ---: |")
        for name, seconds in bench_operations(style, scratch, args.repeats):
            print("| %s | %.3f |" % (name, seconds))


if __name__ == "__main__":
    main()
