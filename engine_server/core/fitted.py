"""Passes that fit: an evaluation in one pass or in tiles, whichever the memory policy (memory.py)
allows, retried in smaller tiles after an out-of-memory error (a GPU's ResourceExhaustedError, a
MemoryError)."""

import logging

import tensorflow as tf

from . import memory
from .tiling import TiledObjective, check_cancel

log = logging.getLogger(__name__)

OUT_OF_MEMORY = (tf.errors.ResourceExhaustedError, MemoryError)


def fitted(size, layers, device, whole, tiled):
    """whole() when one pass fits, else tiled(core); smaller tiles after each out-of-memory error."""
    core = memory.tile_core(size, layers, device)
    while True:
        try:
            return whole() if core is None else tiled(core)
        except OUT_OF_MEMORY as error:
            core = memory.smaller_core(size, layers, core, error)


class FittedObjective:
    """An Objective evaluated in one pass or in tiles, whichever fits; it remembers what worked."""

    def __init__(self, objective, size):
        self.objective = objective
        self.size = tuple(size)
        self.layers = (objective.content_layer,) + objective.style_layers
        self.core = memory.tile_core(self.size, self.layers, objective.model.device)
        self._current = self._build()

    def _build(self):
        if self.core is None:
            return self.objective
        log.info("%dx%d pixels: passes in tiles of %d pixels", self.size[1], self.size[0], self.core)
        return TiledObjective(self.objective, self.core)

    def evaluate(self, image):
        check_cancel()
        while True:
            try:
                return self._current.evaluate(image)
            except OUT_OF_MEMORY as error:
                self.core = memory.smaller_core(self.size, self.layers, self.core, error)
                self._current = self._build()
