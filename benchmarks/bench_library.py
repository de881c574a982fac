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
import engine_server  # noqa: E402,F401  (before numpy: its BLAS threads as the engine has them)
import numpy as np  # noqa: E402
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from engine_server.core.errors import Cancelled  # noqa: E402
from engine_server.core.images import load_rgb  # noqa: E402
from engine_server.library import StyleLibrary  # noqa: E402
from engine_server.core.model import VGG19Features  # noqa: E402
from engine_server.core.stylize import StyleInput, stylize  # noqa: E402
from shared.options import defaults, keras_layer_name  # noqa: E402
from shared.paths import weights_path  # noqa: E402

IMAGES = "/work/shared/data/images"


def find_weights(explicit, scratch):
    path = weights_path(explicit)
    if os.path.exists(path):
        return path, "real file"
    from tests.support.fake_vgg19 import write_fake_vgg19_weights
    return str(write_fake_vgg19_weights(os.path.join(scratch, "fake_vgg19.h5"), seed=0)), "seeded random (same cost)"


def time_to_first_iteration(model, content, style, options, library=None, key=None):
    """(seconds from the start to the first progress report, forward passes spent).

    `style` is the image, or a callable returning it (timed too: the library read is part of a job).
    """
    first = []

    def on_progress(progress):
        if not first:
            first.append(time.perf_counter())
    passes = model.passes
    started = time.perf_counter()
    image = style() if callable(style) else style
    try:
        stylize(model, content, [StyleInput(image, key=key)], options, on_progress=on_progress,
                should_cancel=lambda: bool(first), gram_cache=library.gram_cache if library else None)
    except Cancelled:
        pass
    return first[0] - started, model.passes - passes


def median(samples):
    return statistics.median(samples)


def bench_size(model, content, style_pixels, size, scales, repeats, folder):
    """Rows of (case, [(seconds, passes)]); the cases take turns so load changes hit them alike."""
    options = {**defaults(), "max_size": size, "iterations": 200, "scales": scales}
    time_to_first_iteration(model, content, style_pixels, options)            # warm-up: traces
    library = StyleLibrary(os.path.join(folder, "size%d-%d" % (size, scales)))
    warm_id = library.add_image(style_pixels, "warm").id
    time_to_first_iteration(model, content, library.image(warm_id), options, library, warm_id)
    library.gram_cache.flush()
    cases = {"uncached (baseline)": [], "cold cache (compute, write behind)": [],
             "warm cache, read from disk": [], "warm cache, in memory": []}
    rows = list(cases.values())

    def library_job(lib, style_id):
        """As the daemon runs a job naming a library style: read its image, then stylize (both timed)."""
        return time_to_first_iteration(model, content, lambda: lib.image(style_id), options, lib, style_id)

    for _ in range(repeats):
        rows[0].append(time_to_first_iteration(model, content, style_pixels, options))
        cold_id = library.add_image(style_pixels, "cold").id
        rows[1].append(library_job(library, cold_id))
        library.gram_cache.flush()            # the write-behind, outside the timing
        rows[2].append(library_job(StyleLibrary(library.folder), warm_id))   # as after an engine restart
        rows[3].append(library_job(library, warm_id))
    record_bytes = os.path.getsize(library.path_of(warm_id))
    return list(cases.items()), record_bytes


def bench_style_targets(model, style_pixels, sides, repeats, folder):
    """What the cache replaces, without the rest of stylize(): the five style Grams of a style image
    at a given size, computed (one VGG-19 pass) vs taken from the cache (memory, disk)."""
    from engine_server.core.images import fit_size, resize
    from engine_server.core.losses import gram
    layers = [keras_layer_name(name) for name in defaults()["style_layers"]]
    library = StyleLibrary(os.path.join(folder, "targets"))
    style_id = library.add_image(style_pixels, "targets").id
    rows = []
    for side in sides:
        size = fit_size(style_pixels.shape[:2], side)
        image = resize(style_pixels.astype(np.float32), size)
        model.features(image, layers)                                   # warm-up
        computed, memory, disk = [], [], []
        for _ in range(repeats):
            started = time.perf_counter()
            features = model.features(image, layers)
            grams = {name: gram(features[name]).numpy() for name in layers}
            computed.append(time.perf_counter() - started)
        for name in layers:
            library.gram_cache.put(style_id, size, name, "max", grams[name])
        library.gram_cache.flush()
        for _ in range(repeats):
            started = time.perf_counter()
            assert all(library.gram_cache.get(style_id, size, name, "max") is not None for name in layers)
            memory.append(time.perf_counter() - started)
            fresh = StyleLibrary(library.folder)
            started = time.perf_counter()
            assert all(fresh.gram_cache.get(style_id, size, name, "max") is not None for name in layers)
            disk.append(time.perf_counter() - started)
        rows.append(("%dx%d" % (size[1], size[0]), median(computed), median(disk), median(memory),
                     os.path.getsize(library.path_of(style_id)) / 1e6))
    return rows


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
    rng = np.random.default_rng(0)
    grams = [rng.random((channels, channels), dtype=np.float32) for channels in (64, 128, 256, 512, 512)]
    started = time.perf_counter()
    for n, gram in enumerate(grams):                            # one size's five style layers
        library.gram_cache.put(style_id, (256, 256), "layer%d" % n, "max", gram)
    put_seconds = time.perf_counter() - started
    library.gram_cache.flush()
    flush_seconds = time.perf_counter() - started - put_seconds
    return [("add a %dx%d image" % style_pixels.shape[1::-1], median(adds)),
            ("list 20 styles, fresh StyleLibrary", median(lists_cold)),
            ("list 20 styles, again (stat cache)", median(lists_warm)),
            ("5 puts of one size's Grams (2.4 MB; in memory)", put_seconds),
            ("writing them into the record (flush: read, merge, write, fsync)", flush_seconds)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--content", default=os.path.join(IMAGES, "content", "golden_gate.jpg"))
    parser.add_argument("--style", default=os.path.join(IMAGES, "style", "starry_night.jpg"))
    parser.add_argument("--sizes", default="256,512", help="max_size values, comma-separated")
    parser.add_argument("--scales", default="0,1", help="scales values (0 = automatic), comma-separated")
    parser.add_argument("--style-side", type=int, default=512, help="longest side of the style image added")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target-sides", default="256,512,1024",
                        help="style sizes for the Gram-targets table, comma-separated")
    parser.add_argument("--skip-first-iteration", action="store_true", help="only the Gram-targets and operations tables")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        weights, kind = find_weights(args.weights, scratch)
        model = VGG19Features.load(weights)
        content = load_rgb(args.content)
        style = load_rgb(args.style)
        scale = args.style_side / float(max(style.shape[:2]))
        from engine_server.core.images import resize
        style = np.clip(np.rint(resize(style, (round(style.shape[0] * scale), round(style.shape[1] * scale)))), 0, 255)
        style = style.astype(np.uint8)
        print("weights: %s (%s); device %s; load average %.1f; cpus %d"
              % (os.path.basename(weights), kind, model.device, os.getloadavg()[0], os.cpu_count()))
        print("content %s %dx%d, style %s %dx%d, median of %d\n"
              % (os.path.basename(args.content), content.shape[1], content.shape[0],
                 os.path.basename(args.style), style.shape[1], style.shape[0], args.repeats))
        print("| max_size | scales | case | submit -> first iteration (s) | VGG-19 passes |")
        print("| ---: | ---: | --- | ---: | ---: |")
        for size in ([] if args.skip_first_iteration else (int(s) for s in args.sizes.split(","))):
            for scales in (int(s) for s in args.scales.split(",")):
                rows, record_bytes = bench_size(model, content, style, size, scales, args.repeats, scratch)
                for name, samples in rows:
                    print("| %d | %s | %s | %.3f | %d |" % (size, scales or "auto", name,
                                                          median([s[0] for s in samples]), samples[-1][1]))
                print("| %d | %s | style record with its Grams | %.1f MB | |"
                      % (size, scales or "auto", record_bytes / 1e6))
                sys.stdout.flush()
        print("\n| style size | 5 Grams computed (VGG-19 pass) s | cached, from disk s | cached, in memory s "
              "| record size after MB |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for row in bench_style_targets(model, style, [int(s) for s in args.target_sides.split(",")],
                                       args.repeats, scratch):
            print("| %s | %.3f | %.3f | %.4f | %.1f |" % row)
        print("\n| library operation | seconds |")
        print("| --- | ---: |")
        for name, seconds in bench_operations(style, scratch, args.repeats):
            print("| %s | %.3f |" % (name, seconds))


if __name__ == "__main__":
    main()
