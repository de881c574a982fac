"""Fitting a job into memory: tile a pass when it would not fit, refuse a job that cannot fit at all.

The estimates are deliberately simple. A forward + backward pass up to conv5_1 in float32 keeps about
PASS_BYTES_PER_PIXEL of activations and gradients alive per pixel of the image it runs on (measured
2.1-3.0 kB at 256-1024 px, docs/benchmarks.md); the optimizer keeps STATE_BYTES_PER_PIXEL per pixel
of the working image (L-BFGS: 2 x 10 history vectors and about 8 more of 3 float32 channels).

A job may use `--job-memory-mib` when the engine was started with it, else half of the memory the
system has available (MemAvailable, or less under `ulimit -v`) when each scale starts. A pass is
tiled when it would not fit what the optimizer leaves of that; a job that would not fit even with the
smallest tiles is refused before any work, with the `out_of_memory` code and what to change.

Host memory must be judged up front: when an allocation fails inside TensorFlow's CPU kernels the
process dies (seen here: a segmentation fault under `ulimit -v`), it does not raise. An
out-of-memory *error* is still caught (fitted.py): the pass is retried in tiles half the size, down
to MIN_CORE pixels (smaller_core), and only then does the job fail.
"""

import logging
import math
import os
import resource

from .errors import EngineError
from .tiling import grid_and_halo

log = logging.getLogger(__name__)

PASS_BYTES_PER_PIXEL = 3000
STATE_BYTES_PER_PIXEL = 4 * 3 * (2 * 10 + 8)
BUDGET_FRACTION = 0.5
MIN_CORE = 64

_job_limit_bytes = None


def set_job_limit(limit_bytes):
    """The memory one job may use (None: half of what is available when each scale starts)."""
    global _job_limit_bytes
    _job_limit_bytes = None if limit_bytes is None else int(limit_bytes)


def _meminfo_bytes(field):
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _own_address_space_bytes():
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def available_bytes():
    """Memory this process can still use: the system's available memory, or less under `ulimit -v`."""
    available = _meminfo_bytes("MemAvailable")
    if available is None and hasattr(os, "sysconf"):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            available = None
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        room = max(0, limit - _own_address_space_bytes())
        available = room if available is None else min(available, room)
    return available


def job_budget(device):
    """Bytes a job may use, or None when unknown (a GPU: its own out-of-memory errors are caught)."""
    if _job_limit_bytes is not None:
        return _job_limit_bytes
    if device.upper().startswith("/GPU"):
        return None
    available = available_bytes()
    return None if available is None else BUDGET_FRACTION * available


def _pass_bytes(height, width):
    return height * width * PASS_BYTES_PER_PIXEL


def _state_bytes(size):
    return size[0] * size[1] * STATE_BYTES_PER_PIXEL


def _smallest_pass_bytes(size, layers):
    grid, halo = grid_and_halo(layers)
    core = max(MIN_CORE, grid)
    return _pass_bytes(min(size[0], core + 2 * halo), min(size[1], core + 2 * halo))


def check_fits(size, layers, device):
    """EngineError(out_of_memory) when a job working at `size` cannot fit even in the smallest tiles."""
    budget = job_budget(device)
    if budget is None:
        return
    need = _state_bytes(size) + _smallest_pass_bytes(size, layers)
    if need > budget:
        raise EngineError("out_of_memory", "a %dx%d working image needs at least %d MiB but the engine may use "
                          "%d MiB for a job; try a smaller max_size%s"
                          % (size[1], size[0], need >> 20, int(budget) >> 20,
                             " or start the engine with a larger --job-memory-mib" if _job_limit_bytes
                             else " or close other programs"))


def tile_core(size, layers, device):
    """None when one pass over an image of `size` fits what the job has left after the optimizer's
    state, else the core side of tiles that do (at least MIN_CORE)."""
    budget = job_budget(device)
    if budget is None:
        return None
    budget -= _state_bytes(size)
    if _pass_bytes(*size) <= budget:
        return None
    grid, halo = grid_and_halo(layers)
    side = math.sqrt(max(0.0, budget) / PASS_BYTES_PER_PIXEL)
    return max(MIN_CORE, int(side - 2 * halo) // grid * grid)


def smaller_core(size, layers, core, error):
    """The next core side to try after `error`, or EngineError(out_of_memory) when none is left."""
    side = max(size) if core is None else core
    grid = grid_and_halo(layers)[0]
    smaller = side // 2 // grid * grid
    if smaller < MIN_CORE:
        raise EngineError("out_of_memory", "the engine ran out of memory at %dx%d pixels even in tiles of %d pixels "
                          "(%s); try a smaller max_size or close other programs"
                          % (size[1], size[0], side, type(error).__name__))
    log.warning("out of memory at %dx%d pixels with %s; retrying in tiles of %d pixels", size[1], size[0],
                "tiles of %d pixels" % core if core else "one pass", smaller)
    return smaller
