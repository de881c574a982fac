"""Temporal coherence of `batch --frames` (issue 18): flicker and iterations, frames vs independent.

    python3 benchmarks/bench_frames.py [--weights VGG19.h5] [--size 112] [--frames 6] [--shift 2]
                                       [--iterations 60] [--temporal-weights 0,30,100,300]
                                       [--frame-iterations 20,30] [--loss-normalization size|seed]

A synthetic moving shot: a window panning `--shift` pixels per frame across tubingen.jpg (a
smooth random texture when ../shared/data is absent), so the true motion is known. Every frame is
stylized (style starry_night.jpg) with the same iterations, independently (content init, no
temporal term) and as a sequence (init from the warped previous result, temporal term with each
weight). Flicker: the mean absolute difference (0..255) between a result and the previous result
shifted by the true motion, over the pixels both frames see (a 4-pixel border left out); the
same after the DIS flow and its mask (core/temporal.py) is printed too. Iterations: how many a
later frame needs (counted overall, over its scales) until its Gatys loss at the full size
(α content + β style + tv, without the temporal term) reaches the first frame's final one. Without --weights the seeded random test weights are used.
"""

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import engine_server  # noqa: E402,F401  (before numpy: its BLAS threads as the engine has them)
import numpy as np  # noqa: E402
DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "images")
BORDER = 4


def shot(size, count, shift):
    from engine_server.core.images import load_rgb, resize

    height, width = size, size
    path = os.path.join(DATA, "content", "tubingen.jpg")
    if os.path.exists(path):
        big = load_rgb(path, "content")
        big = resize(big, (height, int(round(big.shape[1] * height / big.shape[0])))).clip(0, 255)
    else:
        rng = np.random.default_rng(0)
        noise = rng.uniform(0, 255, (height // 8, (width + shift * count) // 8 + 1, 3)).astype(np.float32)
        big = resize(noise, (height, (width + shift * count) // 8 * 8 + 8)).clip(0, 255)
    return [big[:, k * shift:k * shift + width].copy() for k in range(count)]


def style_image(size):
    from engine_server.core.images import fit_size, load_rgb, resize

    path = os.path.join(DATA, "style", "starry_night.jpg")
    if os.path.exists(path):
        image = load_rgb(path, "style")
        return resize(image, fit_size(image.shape[:2], size)).clip(0, 255)
    return np.random.default_rng(1).uniform(0, 255, (size, size, 3)).astype(np.float32)


def gatys(parts, options):
    return (options["content_weight"] * parts["content_loss"] + options["style_weight"] * parts["style_loss"]
            + options["tv_weight"] * parts["tv_loss"])


def run(model, frames, style, options, temporal_weight, frame_iterations=None):
    """[(result, [Gatys loss after each iteration])] for each frame; temporal_weight None: independent."""
    from engine_server.core.stylize import StyleInput, stylize
    from engine_server.core.temporal import Sequence
    from engine_server.cli.style_args import RunGramCache

    cache = RunGramCache()
    sequence = Sequence(temporal_weight or 0.0, options)
    out = []
    for content in frames:
        curve = []
        init, extra = sequence.prepare(content) if temporal_weight is not None else (None, None)
        frame_options = options
        if init is not None:          # as batch --frames: one scale, --frame-iterations
            frame_options = {**options, "scales": 1, "iterations": frame_iterations or options["iterations"]}
        result = stylize(model, content, [StyleInput(style, key="s")], frame_options, gram_cache=cache,
                         init_image=init, extra_loss=extra,
                         on_progress=lambda progress: curve.append(
                             (progress.iteration, gatys(progress_parts(progress), options))
                             if progress.scale == progress.scales - 1 else (progress.iteration, None)))
        sequence.done(result)
        out.append((result, curve))
    return out


def progress_parts(progress):
    return {"content_loss": progress.content_loss, "style_loss": progress.style_loss, "tv_loss": progress.tv_loss}


def flicker_true(results, shift):
    """Mean |r_k - r_{k-1} shifted| over the overlap (true motion), per consecutive pair."""
    values = []
    for previous, current in zip(results, results[1:]):
        a = current[BORDER:-BORDER, BORDER:-BORDER - shift]
        b = previous[BORDER:-BORDER, BORDER + shift:-BORDER]
        values.append(float(np.mean(np.abs(a - b))))
    return values


def flicker_flow(frames, results):
    from engine_server.core.temporal import compensated_difference, consistency, optical_flow

    values = []
    for k in range(1, len(frames)):
        backward = optical_flow(frames[k - 1], frames[k])
        forward = optical_flow(frames[k], frames[k - 1])
        values.append(compensated_difference(results[k - 1], results[k], backward, consistency(backward, forward)))
    return values


def iterations_to_reach(curve, target):
    """The first iteration (overall) whose loss, at the final scale, is <= target."""
    for iteration, value in curve:
        if value is not None and value <= target:
            return iteration
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--shift", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--temporal-weights", default="0,10,30,100,300,1000")
    parser.add_argument("--frame-iterations", default="",
                        help="also run the default weight with these iterations for frames 2.. (e.g. 20,30)")
    parser.add_argument("--loss-normalization", default="size", choices=("size", "seed"))
    args = parser.parse_args(argv)
    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = os.path.join("/tmp", "bench-frames-vgg19.h5")
        if not os.path.exists(weights):
            write_fake_vgg19_weights(weights, seed=0)
    from engine_server.core.model import VGG19Features
    from shared.options import defaults

    model = VGG19Features.load(weights)
    from shared.options import TEMPORAL_WEIGHT as DEFAULT_TEMPORAL_WEIGHT

    options = {**defaults(), "iterations": args.iterations, "max_size": args.size,
               "loss_normalization": args.loss_normalization}
    frames = shot(args.size, args.frames, args.shift)
    style = style_image(args.size)
    rows = []
    cases = [("independent", None)] + [("frames, temporal weight %g" % float(w), float(w))
                                       for w in args.temporal_weights.split(",") if w.strip()]
    cases += [("frames, temporal weight %g, %s iterations after the first" % (DEFAULT_TEMPORAL_WEIGHT, n),
               DEFAULT_TEMPORAL_WEIGHT, int(n))
              for n in args.frame_iterations.split(",") if n.strip()]
    first_loss = None
    for case in cases:
        label, weight, frame_iterations = (case + (None,))[:3]
        started = time.monotonic()
        out = run(model, frames, style, options, weight, frame_iterations)
        seconds = time.monotonic() - started
        results = [result for result, _ in out]
        curves = [curve for _, curve in out]
        if first_loss is None:
            first_loss = curves[0][-1][1]
        reach = [iterations_to_reach(curve, first_loss) for curve in curves[1:]]
        row = {"case": label, "flicker_true": float(np.mean(flicker_true(results, args.shift))),
               "flicker_flow": float(np.mean(flicker_flow(frames, results))),
               "first_frame_loss": curves[0][-1][1],
               "later_final_loss_mean": float(np.mean([c[-1][1] for c in curves[1:]])),
               "iterations_to_first_loss": reach, "seconds": round(seconds, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    from engine_server.core.temporal import optical_flow

    started = time.monotonic()
    for _ in range(20):
        optical_flow(frames[0], frames[1])
    print("\nDIS flow, %dx%d: %.1f ms per flow (mean of 20)" % (args.size, args.size,
                                                              (time.monotonic() - started) / 20 * 1000))
    base = rows[0]["flicker_true"]
    print("\n| case | flicker (true motion) | ratio vs independent | flicker (DIS flow, masked) | later frames: "
          "iterations to the first frame's loss | s |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for row in rows:
        print("| %s | %.2f | %.2fx | %.2f | %s | %.0f |" % (
            row["case"], row["flicker_true"], base / row["flicker_true"], row["flicker_flow"],
            ", ".join("-" if r is None else str(r) for r in row["iterations_to_first_loss"]), row["seconds"]))


if __name__ == "__main__":
    main()
