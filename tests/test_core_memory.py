"""Fitting jobs into memory: when passes are tiled, when a job is refused, and out-of-memory errors."""

import numpy as np
import pytest
import tensorflow as tf

from engine_server.core import fitted as fitted_passes
from engine_server.core import memory
from engine_server.core import tiling
from engine_server.core.errors import EngineError
from engine_server.core.losses import Objective
from engine_server.core.stylize import StyleInput, stylize
from shared.options import defaults
from tests.test_core_tiling import SIZE, build_objective, random_image

LAYERS = ("block4_conv2", "block1_conv1", "block5_conv1")
MIB = 1 << 20


@pytest.fixture
def job_limit():
    yield memory.set_job_limit
    memory.set_job_limit(None)


def test_a_pass_is_tiled_only_when_it_would_not_fit(job_limit):
    job_limit(400 * MIB)
    assert memory.tile_core((256, 256), LAYERS, "/CPU:0") is None           # 197 MB pass + 22 MB state
    core = memory.tile_core((384, 384), LAYERS, "/CPU:0")                   # 442 MB pass
    assert core == 176
    tile = core + 2 * tiling.grid_and_halo(LAYERS)[1]
    assert tile * tile * memory.PASS_BYTES_PER_PIXEL + 384 * 384 * memory.STATE_BYTES_PER_PIXEL <= 400 * MIB
    job_limit(20 * 1024 * MIB)
    assert memory.tile_core((2048, 2048), LAYERS, "/CPU:0") is None
    assert memory.tile_core((4096, 4096), LAYERS, "/CPU:0") > 1024


def test_a_job_that_cannot_fit_even_in_the_smallest_tiles_is_refused_up_front(job_limit):
    job_limit(400 * MIB)
    memory.check_fits((512, 512), LAYERS, "/CPU:0")
    with pytest.raises(EngineError) as refused:
        memory.check_fits((1024, 1024), LAYERS, "/CPU:0")
    assert refused.value.code == "out_of_memory"
    assert "1024x1024" in refused.value.message and "400 MiB" in refused.value.message
    assert "--job-memory-mib" in refused.value.message


def test_stylize_refuses_before_any_pass(fake_model, job_limit):
    job_limit(64 * MIB)
    passes = fake_model.passes
    with pytest.raises(EngineError) as refused:
        stylize(fake_model, random_image(1, (300, 300)), [StyleInput(random_image(2, (64, 64)))],
                {"iterations": 2, "max_size": 300})
    assert refused.value.code == "out_of_memory"
    assert fake_model.passes == passes


def test_without_a_limit_the_budget_is_half_of_what_is_available():
    available = memory.available_bytes()
    assert available and available > 0
    assert memory.job_budget("/CPU:0") == pytest.approx(0.5 * available, rel=0.2)
    assert memory.job_budget("/GPU:0") is None


def test_stylize_in_tiles_gives_the_untiled_result(fake_model, monkeypatch):
    content, style = random_image(5), random_image(6, (96, 112))
    options = {"iterations": 3, "scales": 1, "max_size": max(SIZE)}
    untiled = stylize(fake_model, content, [StyleInput(style)], options)
    cores = []
    monkeypatch.setattr(memory, "tile_core", lambda size, layers, device: cores.append(size) or 96)
    tiled = stylize(fake_model, content, [StyleInput(style)], options)
    assert SIZE in cores          # the content target, the style Grams and the objective all went through tiles
    assert len(cores) == 3
    # Each evaluation agrees to float rounding (test_core_tiling); over three L-BFGS iterations the
    # line searches carry that rounding on a little (seen: mean 0.002, max 1.1 levels), far below
    # what the iterations themselves changed (mean 4.2, max 30 levels).
    difference = np.abs(tiled - untiled)
    assert difference.mean() < 0.02 and difference.max() < 3.0, (difference.mean(), difference.max())
    assert np.abs(untiled - content).mean() > 1.0


def _out_of_memory(*_):
    raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1,181,203,64]")


def test_an_out_of_memory_error_falls_back_to_tiles_with_the_same_result(fake_model, monkeypatch):
    """As on a GPU, where TensorFlow raises ResourceExhaustedError: the pass is retried in tiles."""
    objective = build_objective(fake_model, defaults())
    image = random_image(7)
    expected = objective.evaluate(image)
    monkeypatch.setattr(memory, "tile_core", lambda size, layers, device: None)
    monkeypatch.setattr(Objective, "evaluate", _out_of_memory)
    fitted = fitted_passes.FittedObjective(objective, SIZE)
    value, grad, _ = fitted.evaluate(image)
    assert fitted.core == 96                                  # half of the longest side, on the pooling grid
    assert value == pytest.approx(expected[0], rel=2e-4)
    assert np.max(np.abs(grad - expected[1])) <= 2e-4 * np.max(np.abs(expected[1]))


def test_out_of_memory_even_in_the_smallest_tiles_is_a_clear_error(fake_model, monkeypatch):
    objective = build_objective(fake_model, defaults())
    monkeypatch.setattr(memory, "tile_core", lambda size, layers, device: None)
    monkeypatch.setattr(Objective, "evaluate", _out_of_memory)
    monkeypatch.setattr(tiling.TiledObjective, "evaluate", _out_of_memory)
    with pytest.raises(EngineError) as failed:
        fitted_passes.FittedObjective(objective, SIZE).evaluate(random_image(7))
    assert failed.value.code == "out_of_memory"
    assert "203x181" in failed.value.message and "max_size" in failed.value.message
