"""VGG-19 passes over tiles, for images too large for one pass at full resolution.

A Gram matrix and the content loss are sums over feature positions, so both can be accumulated
over tiles. A tile is a *core* block of the image plus a *halo* of context wide enough that every
feature over the core is exactly what the whole image gives: the halo covers the receptive field of
the deepest layer used, and tile edges sit on that layer's pooling grid. Features over the halo are
wrong (the tile's edge is zero-padded) and are never used.

`TiledObjective.evaluate` gives the same loss and gradient as `losses.Objective` in two sweeps:
1. forward over every tile: the Grams of the cores (summed) and the content loss of the cores;
2. forward + backward over every tile of a surrogate whose gradient on the core's features is the
   true one: α·γΣ(F−P)² + β Σ_l w_l ⟨G_core_l, D_l⟩, with D_l = ∂E_l/∂G_l fixed from sweep 1
   (∂⟨G, D⟩/∂f_p = 2 D f_p, the true ∂E_l/∂f_p, because D is symmetric). The tiles' gradients,
   halos included, are added into the image's gradient.
The cost is one extra forward pass per evaluation plus the halos' share of the work.
"""

import contextlib
import threading
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .errors import Cancelled
from .losses import gram
from .model import CONV_LAYERS, layer_names, pixels_per_position


_cancel_scope = threading.local()


@contextlib.contextmanager
def cancel_check(should_cancel):
    """On this thread, within the block, passes call `should_cancel()` between tiles (and fitted.py
    before each evaluation) and raise Cancelled when it is true: one tiled evaluation of a large
    image can take minutes."""
    previous = getattr(_cancel_scope, "check", None)
    _cancel_scope.check = should_cancel
    try:
        yield
    finally:
        _cancel_scope.check = previous


def check_cancel():
    check = getattr(_cancel_scope, "check", None)
    if check is not None and check():
        raise Cancelled()


def grid_and_halo(layers):
    """(pooling grid, halo) in pixels for `layers`: tile edges on multiples of the grid, and a halo
    (a multiple of the grid) covering the deepest layer's receptive field on either side."""
    deepest = max(CONV_LAYERS.index(name) for name in layer_names(layers))
    before = after = 0      # receptive field of one feature, in pixels, beyond its own grid cell
    grid = 1
    for index, name in enumerate(CONV_LAYERS[:deepest + 1]):
        if index and name.endswith("_conv1"):       # a 2x2 pooling, stride 2
            after += grid
            grid *= 2
        before += grid                              # a 3x3 convolution
        after += grid
    extent = max(before, after - (grid - 1))
    return grid, -(-extent // grid) * grid


@dataclass(frozen=True)
class Span:
    """One tile along one axis: the tile [lo, hi) around its core [start, end), in pixels."""
    lo: int
    hi: int
    start: int
    end: int

    def core_in_features(self, grid):
        """(first, last + 1) of the core's feature positions, counted from the tile's first one."""
        return (self.start - self.lo) // grid, self.end // grid - self.lo // grid

    def core_in_image_features(self, grid):
        return self.start // grid, self.end // grid


def spans(length, core, halo):
    return [Span(max(0, start - halo), min(length, start + core + halo), start, min(length, start + core))
            for start in range(0, length, core)]


class TileGrid:
    """The tiles covering an image of `size` (height, width) for the features of `layers`."""

    def __init__(self, size, layers, core):
        self.layers = layer_names(layers)
        self.grid, self.halo = grid_and_halo(self.layers)
        self.core = max(self.grid, int(core) // self.grid * self.grid)
        self.size = (int(size[0]), int(size[1]))
        self.tiles = [(rows, cols) for rows in spans(self.size[0], self.core, self.halo)
                      for cols in spans(self.size[1], self.core, self.halo)]
        self.layer_grids = [pixels_per_position(name) for name in self.layers]

    def cut(self, image, tile):
        rows, cols = tile
        return image[rows.lo:rows.hi, cols.lo:cols.hi]

    def core_bounds(self, tile):
        """int32 (layers, 4): per layer, the core's rows and columns in the tile's feature maps."""
        rows, cols = tile
        return np.array([rows.core_in_features(g) + cols.core_in_features(g) for g in self.layer_grids], np.int32)

    def image_feature_slice(self, tile, layer_index):
        rows, cols = tile
        grid = self.layer_grids[layer_index]
        (r0, r1), (c0, c1) = rows.core_in_image_features(grid), cols.core_in_image_features(grid)
        return slice(r0, r1), slice(c0, c1)


def tile_signature(layer_count):
    """Any tile shape, so that one trace serves every tile."""
    return [tf.TensorSpec([1, None, None, 3], tf.float32), tf.TensorSpec([layer_count, 4], tf.int32)]


def _cores(features, bounds):
    return [f[:, b[0]:b[1], b[2]:b[3], :] for f, b in zip(features, tf.unstack(bounds))]


class _TilePasses:
    """The traced per-tile functions."""

    def __init__(self, model, layers, pooling, precision=None):
        self.model, self.layers, self.pooling, self.precision = model, layer_names(layers), pooling, precision
        self.core_features = tf.function(self._core_features, input_signature=tile_signature(len(self.layers)))
        self.core_grams = tf.function(self._core_grams, input_signature=tile_signature(len(self.layers)))

    def _core_features(self, tile, bounds):
        return _cores(self.model.forward(tile, self.layers, self.pooling, self.precision), bounds)

    def _core_grams(self, tile, bounds):
        return [gram(core) for core in self._core_features(tile, bounds)]

    def run(self, function, grid, image):
        with tf.device(self.model.device):
            for tile in grid.tiles:
                check_cancel()
                yield tile, function(tf.constant(grid.cut(image, tile)[np.newaxis]), tf.constant(grid.core_bounds(tile)))


def tiled_grams(model, image, layers, pooling, core, precision=None):
    """{keras layer name: Gram (N, N) float32} of an HxWx3 image, summed over tiles."""
    grid = TileGrid(image.shape[:2], layers, core)
    passes = _TilePasses(model, grid.layers, pooling, precision)
    sums = [0.0] * len(grid.layers)
    for _, grams in passes.run(passes.core_grams, grid, image):
        sums = [total + g.numpy().astype(np.float64) for total, g in zip(sums, grams)]
    model.passes += 1
    return {name: np.asarray(total, np.float32) for name, total in zip(grid.layers, sums)}


def tiled_features(model, image, layer, pooling, core, precision=None):
    """Features (1, h, w, C) float32 of one layer for an HxWx3 image, assembled from tiles' cores."""
    grid = TileGrid(image.shape[:2], [layer], core)
    passes = _TilePasses(model, grid.layers, pooling, precision)
    result = None
    for tile, (features,) in passes.run(passes.core_features, grid, image):
        features = features.numpy()
        if result is None:
            height, width = (length // grid.layer_grids[0] for length in grid.size)
            result = np.zeros((1, height, width, features.shape[-1]), np.float32)
        rows, cols = grid.image_feature_slice(tile, 0)
        result[:, rows, cols, :] = features
    model.passes += 1
    return result


def tv_value_and_gradient(image):
    """½ Σ of squared differences of neighbouring pixels (as losses.tv_loss) and its gradient."""
    dy = np.diff(image, axis=0)
    dx = np.diff(image, axis=1)
    value = 0.5 * (np.sum(np.square(dy, dtype=np.float64)) + np.sum(np.square(dx, dtype=np.float64)))
    grad = np.zeros_like(image)
    grad[1:] += dy
    grad[:-1] -= dy
    grad[:, 1:] += dx
    grad[:, :-1] -= dx
    return value, grad


class TiledObjective:
    """`losses.Objective` evaluated over tiles with cores of about `core` pixels (same interface)."""

    def __init__(self, objective, core):
        self.objective = objective
        self.model = objective.model
        self.core = core
        self._layers = (objective.content_layer,) + objective.style_layers
        self._passes = _TilePasses(self.model, self._layers, objective.pooling, objective.precision)
        self._content_target = (objective.content_target.numpy() if objective.content_target is not None else None)
        self._style_targets = [t.numpy().astype(np.float64) for t in objective.style_targets]
        self._gradient = tf.function(self._surrogate_gradient, input_signature=tile_signature(len(self._layers)) + [
            tf.TensorSpec([None, None, None, None], tf.float32),
            [tf.TensorSpec(t.shape, tf.float32) for t in self._style_targets], tf.TensorSpec([], tf.float32)])

    def _surrogate_gradient(self, tile, bounds, content_target, coefficients, content_factor):
        with tf.GradientTape() as tape:
            tape.watch(tile)
            cores = self._passes._core_features(tile, bounds)
            surrogate = tf.add_n([tf.reduce_sum(gram(core) * c) for core, c in zip(cores[1:], coefficients)])
            if self._content_target is not None:
                surrogate += content_factor * tf.reduce_sum(tf.square(cores[0] - content_target))
        return tape.gradient(surrogate, tile)

    def _content_tile(self, grid, tile):
        if self._content_target is None:
            return tf.zeros([0, 0, 0, 0])
        rows, cols = grid.image_feature_slice(tile, 0)
        return tf.constant(self._content_target[:, rows, cols, :])

    def evaluate(self, image):
        """image (H, W, 3) float32 0..255 -> (total, gradient (H, W, 3) float32, parts dict)."""
        objective = self.objective
        image = np.asarray(image, np.float32)
        size = image.shape[:2]
        c = objective.coefficients(size)
        grid = TileGrid(size, self._layers, self.core)
        grams = [np.zeros_like(t) for t in self._style_targets]
        content = 0.0
        with tf.device(self.model.device):
            for tile, cores in self._passes.run(self._passes.core_features, grid, image):
                if self._content_target is not None:
                    content += float(tf.reduce_sum(tf.square(cores[0] - self._content_tile(grid, tile))))
                for total, core in zip(grams, cores[1:]):
                    total += gram(core).numpy()
        content *= c.content_scale
        per_layer, coefficients = [], []
        for gram_sum, target, scale, weight in zip(grams, self._style_targets, c.style_scales, c.style_weights):
            scaled = (gram_sum - target) * scale
            per_layer.append(float(np.sum(np.square(scaled))))
            # ∂(weight · E_l)/∂G = 2 · weight · scale² (G − A)
            coefficients.append(tf.constant(weight * 2.0 * scaled * scale, tf.float32))
        tv, grad = tv_value_and_gradient(image)
        tv *= c.tv_scale
        grad *= c.tv_weight * c.tv_scale
        with tf.device(self.model.device):
            for tile in grid.tiles:
                check_cancel()
                rows, cols = tile
                tile_gradient = self._gradient(tf.constant(grid.cut(image, tile)[np.newaxis]),
                                               tf.constant(grid.core_bounds(tile)),
                                               self._content_tile(grid, tile), coefficients,
                                               tf.constant(c.content_weight * c.content_scale, tf.float32))
                grad[rows.lo:rows.hi, cols.lo:cols.hi] += tile_gradient.numpy()[0]
        self.model.passes += 1
        parts = objective.parts(c, content, per_layer, tv)
        return parts["total_loss"], grad, parts
