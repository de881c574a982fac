"""Gatys style transfer of one content image: targets, coarse-to-fine scales, the optimizer loop.

    stylize(model, content, [StyleInput(image, weight, key)], options,
            on_progress=None, should_cancel=None, gram_cache=None, init_image=None, extra_loss=None)
      -> float32 HxWx3 RGB 0..255 at the working size (longest side <= options["max_size"])

See docs/engine.md for the scales, the Gram rescaling and "preserve colors".
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from shared.options import defaults

from . import colors, fitted, memory, tiling
from .errors import Cancelled, InputError
from .images import fit_size, resize
from .losses import Objective, feature_positions, gram, rescale_gram
from .model import check_size, layer_names, min_side
from .optimize import LBFGS, Adam, SwitchingLBFGS
from .progress import Progress, Work

__all__ = ["Progress", "StyleInput", "losses", "plan_scales", "split_iterations", "stylize"]

log = logging.getLogger(__name__)

# Automatic scales: the first one has a longest side of at least this. Measured (benchmarks.md, issue
# 14): with 128 the job was behind one that starts at 256 px at every loss reached, at 256 and 512 px.
COARSEST_SIDE = 256
MAX_AUTO_SCALES = 4
MAX_STYLE_SIDE = 4096      # style images are never worked on larger than this (memory)
PIXEL_BOUNDS = (0.0, 255.0)
# L-BFGS stops when the loss falls by less than this (relative) three iterations in a row: a coarse
# scale only prepares the next one's start, so it stops as soon as its gains flatten out.
COARSE_FTOL, FINAL_FTOL = 1e-3, 1e-6   # the optimizers keep pixels valid, so the reported loss is the saved image's


@dataclass
class StyleInput:
    image: Any                  # float32 HxWx3 RGB 0..255
    weight: float = 1.0         # blend weight (used when options["style_blend_weights"] is empty)
    key: Optional[str] = None   # set (e.g. a style library id) to let a gram_cache answer for it


def _as_image(array, what):
    image = np.asarray(array, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError("%s must be an HxWx3 RGB array, got shape %s" % (what, tuple(np.shape(array))))
    if not np.isfinite(image).all():
        raise InputError("%s contains NaN or infinite values" % what)
    return np.clip(image, 0.0, 255.0)


def plan_scales(size, options, layers):
    """[(height, width)] from coarse to fine, each about twice the previous, ending at `size`."""
    longest = max(size)
    need = min_side(layers)
    count = int(options.get("scales") or 0)
    if count <= 0:
        count = 1 + max(0, int(math.floor(math.log2(longest / float(COARSEST_SIDE)))))
        count = min(count, MAX_AUTO_SCALES)
    count = max(1, min(count, int(options["iterations"])))
    sizes = [fit_size(size, longest / 2.0 ** (count - 1 - k)) if k < count - 1 else tuple(size)
             for k in range(count)]
    return [s for s in sizes if min(s) >= need] or [tuple(size)]


def split_iterations(total, scales):
    """More iterations where they are cheap: scale k gets a share proportional to 2^(scales-1-k)."""
    shares = [2.0 ** (scales - 1 - k) for k in range(scales)]
    counts = [max(1, int(total * share / sum(shares))) for share in shares]
    counts[0] += total - sum(counts)
    while counts[0] < 1:          # only when total < scales, which plan_scales prevents
        counts[counts.index(max(counts))] -= 1
        counts[0] += 1
    return counts


def blend_weights(styles, options):
    given = tuple(options.get("style_blend_weights") or ())
    if given and len(given) != len(styles):
        raise InputError("style_blend_weights must have one weight per style image (%d), got %d"
                         % (len(styles), len(given)), field="options.style_blend_weights")
    weights = [float(w) for w in (given or [s.weight for s in styles])]
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise InputError("style blend weights must be non-negative numbers with a positive sum, got %s"
                         % (weights,), field="options.style_blend_weights")
    return [w / sum(weights) for w in weights]


class _Targets:
    """Content features and blended, rescaled style Grams for one working size."""

    def __init__(self, model, options, gram_cache, precision=None):
        self.model, self.options, self.gram_cache = model, options, gram_cache
        self.precision = precision or model.precision
        self.pooling = options["pooling"]
        self.content_layer = layer_names([options["content_layer"]])[0]
        self.style_layers = layer_names(options["style_layers"])

    def content(self, content, always=False):
        if not always and float(self.options["content_weight"]) == 0.0:   # saves a forward pass
            return None
        layer, model, pooling, precision = self.content_layer, self.model, self.pooling, self.precision
        return fitted.fitted(content.shape[:2], [layer], model.device,
                             lambda: model.features(content, [layer], pooling, precision)[layer].numpy(),
                             lambda core: tiling.tiled_features(model, content, layer, pooling, core, precision))

    def style_grams(self, image, key):
        """{layer: Gram of the style image at its own size}; asks and fills the cache when keyed."""
        size = tuple(image.shape[:2])
        grams = {}
        if key is not None and self.gram_cache is not None:
            for name in self.style_layers:
                cached = self.gram_cache.get(key, size, name, self.pooling)
                if cached is not None:
                    grams[name] = np.asarray(cached, np.float32)
        missing = [name for name in self.style_layers if name not in grams]
        if missing:
            model, pooling, precision = self.model, self.pooling, self.precision

            def whole():
                features = model.features(image, missing, pooling, precision)
                return {name: gram(features[name]).numpy() for name in missing}

            grams.update(fitted.fitted(size, missing, model.device, whole,
                                       lambda core: tiling.tiled_grams(model, image, missing, pooling, core, precision)))
            for name in missing:
                if key is not None and self.gram_cache is not None:
                    self.gram_cache.put(key, size, name, self.pooling, grams[name])
        return grams

    def style_size(self, image_size, size):
        """The style image's size for an output of `size`: style_scale x its longest side, at most
        MAX_STYLE_SIDE, and at least what the style layers need (a small style_scale at a coarse
        scale would otherwise leave the deepest layer without a position)."""
        longest = min(MAX_STYLE_SIDE, self.options["style_scale"] * max(size))
        need = min_side(self.style_layers)
        style_size = fit_size(image_size, longest)
        while min(style_size) < need:
            longest = max(longest, max(style_size)) * max(1.05, need / float(min(style_size)))
            style_size = fit_size(image_size, longest)
        if longest > self.options["style_scale"] * max(size) + 1:
            log.info("style image used at %dx%d: style_scale %g would leave conv layers without positions",
                     style_size[1], style_size[0], self.options["style_scale"])
        return style_size

    def styles(self, style_images, keys, weights, size):
        """Blend of the styles' Grams, each rescaled to the positions of an output of `size`."""
        blended = {}
        for image, key, weight in zip(style_images, keys, weights):
            style_size = self.style_size(image.shape[:2], size)
            check_size(style_size, self.style_layers)
            grams = self.style_grams(resize(image, style_size), key)
            for name in self.style_layers:
                target = rescale_gram(grams[name], feature_positions(style_size, name), feature_positions(size, name))
                blended[name] = blended.get(name, 0.0) + weight * target
        return blended


def stylize(model, content, styles, options, on_progress=None, should_cancel=None, gram_cache=None,
            init_image=None, extra_loss=None, clock=time.monotonic):
    """Optimize an image to have `content`'s content and the styles' style (see the module doc).
    `clock` (seconds) times the progress; tests give a fake one."""
    options = {**defaults(), **dict(options or {})}
    started = clock()
    content = _as_image(content, "content image")
    if not styles:
        raise InputError("at least one style image is needed", field="styles")
    style_images = [_as_image(s.image, "style image %d" % (i + 1)) for i, s in enumerate(styles)]
    weights = blend_weights(styles, options)
    layers = layer_names(options["style_layers"]) + layer_names([options["content_layer"]])
    if len(options["style_layer_weights"]) != len(options["style_layers"]):
        raise InputError("style_layer_weights must have one weight per style layer (%d), got %d"
                         % (len(options["style_layers"]), len(options["style_layer_weights"])),
                         field="options.style_layer_weights")
    work_size = tuple(content.shape[:2])
    if max(work_size) > options["max_size"]:
        work_size = fit_size(work_size, options["max_size"])
    check_size(work_size, layers)
    memory.check_fits(work_size, layers, model.device)
    full_content = resize(content, work_size)

    keys = [s.key for s in styles]
    color_source = None
    if options["preserve_colors"]:
        # Luminance-only transfer; the Grams then depend on this content, so the cache is not used.
        content_y = colors.luminance(full_content)
        style_images = [colors.gray_rgb(colors.match_luminance(colors.luminance(s), content_y)) for s in style_images]
        color_source, full_content = full_content, colors.gray_rgb(content_y)
        keys = [None] * len(keys)

    if init_image is not None:
        start = resize(_as_image(init_image, "init image"), work_size)
        if color_source is not None:
            start = colors.gray_rgb(colors.luminance(start))
    elif options["init"] == "noise":
        start = np.random.default_rng(options["seed"]).uniform(0.0, 255.0, work_size + (3,)).astype(np.float32)
    else:
        start = full_content

    sizes = plan_scales(work_size, options, layers)
    counts = split_iterations(int(options["iterations"]), len(sizes))
    total_iterations = sum(counts)
    targets = _Targets(model, options, gram_cache)

    def finish(pixels):
        pixels = np.clip(resize(pixels, work_size), 0.0, 255.0)
        return colors.combine(pixels, color_source) if color_source is not None else pixels

    x = base = resize(start, sizes[0])
    done = 0
    # A bfloat16 job's L-BFGS stalls on the objective's rounding noise near convergence; at its first
    # failed line search the job goes on in float32 (benchmarks.md, issue 14).
    state = {"precision": model.precision, "note": ""}
    work = Work(sizes, counts, clock)

    def cancel_point():
        if should_cancel is not None:
            with work.outside():        # a daemon may run a preview job in there
                if should_cancel():
                    raise Cancelled()

    for scale, size in enumerate(sizes):
        count = work.counts[scale]      # a coarse scale that settled early handed on its rest
        final = scale == len(sizes) - 1
        # Upsample what the coarser scale changed, onto the start at this size: the start's fine
        # detail (the content's, by default) is kept instead of being blurred away.
        previous_change = x - base
        base = resize(start, size)
        x = np.clip(base + resize(previous_change, size), 0.0, 255.0)
        cancel_point()
        shape = size + (3,)

        def function(precision, shape=shape, size=size):
            # After a switch the targets are float32 too (uncached: a cache holds the model's precision).
            job_targets = targets if precision == model.precision else _Targets(model, options, None, precision)
            objective = fitted.FittedObjective(Objective(
                model, options, job_targets.content(resize(full_content, size)),
                job_targets.styles(style_images, keys if job_targets is targets else [None] * len(keys), weights, size),
                final_size=work_size, precision=precision), size)

            def fun(flat):
                value, grad, parts = objective.evaluate(flat.reshape(shape))
                if extra_loss is not None:   # a term on the pixels, e.g. core/temporal.py: image -> (value, grad, parts)
                    more, more_grad, more_parts = extra_loss(flat.reshape(shape))
                    value, grad = value + more, grad + more_grad
                    parts = {**parts, **more_parts, "total_loss": value}
                return value, grad, parts
            return fun

        lbfgs = dict(bounds=PIXEL_BOUNDS, ftol=FINAL_FTOL if final else COARSE_FTOL)
        if options["optimizer"] == "adam":
            optimizer = Adam(function(state["precision"]), x, learning_rate=float(options["learning_rate"]))
        elif state["precision"] != "float32" and model.can_compute_in("float32"):
            def switch(stuck, function=function, scale=scale):
                state.update(precision="float32", note="%s until a failed line search at iteration %d (scale %d/%d, "
                             "loss %.6g); float32 since" % (model.precision, done + 1, scale + 1, len(sizes),
                                                            stuck.best_value))
                log.info("job goes on in float32: %s", state["note"])
                return function("float32")
            optimizer = SwitchingLBFGS(function(state["precision"]), x, switch, **lbfgs)
        else:
            optimizer = LBFGS(function(state["precision"]), x, **lbfgs)
        work.scale_set_up(scale, optimizer.evaluations)
        log.info("scale %d/%d: %dx%d, %d iterations", scale + 1, len(sizes), size[1], size[0], count)

        def report(stage, optimizer=optimizer, shape=shape, scale=scale):
            if on_progress is None:
                return
            parts = optimizer.extras
            current = optimizer.x

            def image(current=current, shape=shape):
                pixels = np.clip(current.reshape(shape), 0.0, 255.0)
                return colors.combine(pixels, resize(color_source, shape[:2])) if color_source is not None else pixels

            on_progress(Progress(stage, scale, len(sizes), done, total_iterations, parts["content_loss"],
                                 parts["style_loss"], parts["tv_loss"], parts["total_loss"], clock() - started,
                                 image, eta_s=work.eta_s(), fraction=work.fraction(),
                                 precision=state["precision"], precision_note=state["note"]))

        for iteration in range(1, count + 1):
            cancel_point()
            precision = state["precision"]
            optimizer.step()
            done += 1
            work.iterated(scale, iteration, optimizer.evaluations)
            if state["precision"] != precision:
                work.pace_changed()     # after this step: its float32 tracing is not the new pace
            report("optimize")
            if optimizer.converged and iteration < count:
                left = count - iteration
                work.stopped_early(scale)
                if not final:       # a coarse scale only prepares a start: the next scale gets the rest
                    log.info("scale %d/%d (%dx%d) settled after %d of %d iterations (%s); %d more for the next",
                             scale + 1, len(sizes), size[1], size[0], iteration, count, optimizer.converged, left)
                    break
                log.info("converged after %d of %d iterations at the final scale (%s)", iteration, count,
                         optimizer.converged)
                done += left
                report("converged")
                break
        x = optimizer.best_x.reshape(shape)
    return finish(x)


def losses(model, content, styles, candidate, options):
    """The loss parts of `candidate` (HxWx3 0..255) under `options`, all images at their own size
    (styles' Grams rescaled to the candidate's size); content is resized to the candidate's size."""
    options = {**defaults(), **dict(options or {})}
    candidate = _as_image(candidate, "candidate image")
    size = tuple(candidate.shape[:2])
    layers = layer_names(options["style_layers"]) + layer_names([options["content_layer"]])
    check_size(size, layers)
    style_images = [_as_image(s.image, "style image %d" % (i + 1)) for i, s in enumerate(styles)]
    weights = blend_weights(styles, options)
    targets = _Targets(model, {**options, "style_scale": 1.0}, None)
    blended = {}
    for image, weight in zip(style_images, weights):
        check_size(image.shape[:2], targets.style_layers)
        grams = targets.style_grams(image, None)
        for name in targets.style_layers:
            target = rescale_gram(grams[name], feature_positions(image.shape[:2], name), feature_positions(size, name))
            blended[name] = blended.get(name, 0.0) + weight * target
    objective = Objective(model, options, targets.content(resize(_as_image(content, "content image"), size), always=True),
                          blended, final_size=size)
    _, _, parts = objective.evaluate(candidate)
    return parts
