"""A job naming a library style reuses the Grams cached in its record: no VGG-19 pass for the style."""

import os
import time

import numpy as np
import pytest

from engine_server.library import records
from engine_server.library import StyleLibrary
from engine_server.core.model import VGG19Features
from engine_server.core.stylize import StyleInput, stylize
from shared.options import defaults, keras_layer_name
from tests.support.style_images import style_pixels

OPTIONS = {**defaults(), "iterations": 2, "max_size": 64, "scales": 2, "optimizer": "adam"}
LAYERS = [keras_layer_name(name) for name in OPTIONS["style_layers"]]


@pytest.fixture(scope="module")
def model(fake_weights):
    return VGG19Features.load(fake_weights)


def run(model, library, style_id, options=OPTIONS, use_cache=True):
    """(result, forward passes spent) for a 64x48 content and the library style `style_id`."""
    before = model.passes
    content = style_pixels(50, 48, 64).astype(np.float32)
    style = StyleInput(library.image(style_id), key=style_id if use_cache else None)
    result = stylize(model, content, [style], options, gram_cache=library.gram_cache if use_cache else None)
    return result, model.passes - before


def test_cached_grams_spare_the_style_passes_and_persist(tmp_path, model):
    library = StyleLibrary(str(tmp_path))
    style_id = library.add_image(style_pixels(1, 64, 64), "cached").id

    uncached_result, uncached_passes = run(model, library, style_id, use_cache=False)
    first_result, first_passes = run(model, library, style_id)          # computes and stores the Grams
    library.gram_cache.flush()
    assert first_passes == uncached_passes
    grams = records.read_one(library.path_of(style_id)).grams
    sizes = sorted({key[1:3] for key in grams})
    assert len(sizes) == 2                                               # one style size per scale
    assert sorted(grams) == sorted(("", h, w, layer, "max") for h, w in sizes for layer in LAYERS)

    stored = open(library.path_of(style_id), "rb").read()
    reopened = StyleLibrary(str(tmp_path))                               # as a restarted engine would
    second_result, second_passes = run(model, reopened, style_id)
    assert second_passes == first_passes - 2                             # the two style passes are gone
    np.testing.assert_allclose(second_result, first_result, atol=1e-3)
    np.testing.assert_allclose(first_result, uncached_result, atol=1e-3)
    assert open(library.path_of(style_id), "rb").read() == stored        # a pure hit writes nothing


def test_a_new_size_or_pooling_adds_grams_and_keeps_the_old(tmp_path, model):
    library = StyleLibrary(str(tmp_path))
    style_id = library.add_image(style_pixels(2, 64, 64), "sizes").id
    run(model, library, style_id, {**OPTIONS, "scales": 1})
    run(model, library, style_id, {**OPTIONS, "scales": 1, "style_scale": 0.5})
    run(model, library, style_id, {**OPTIONS, "scales": 1, "pooling": "avg"})
    library.gram_cache.flush()
    keys = records.read_one(library.path_of(style_id)).grams
    assert sorted({(key[1], key[2], key[4]) for key in keys}) == [(32, 32, "max"), (64, 64, "avg"), (64, 64, "max")]
    _, passes = run(model, library, style_id, {**OPTIONS, "scales": 1, "style_scale": 0.5})
    _, uncached = run(model, library, style_id, {**OPTIONS, "scales": 1, "style_scale": 0.5}, use_cache=False)
    assert passes == uncached - 1


def test_grams_of_other_weights_are_not_reused(tmp_path, model):
    library = StyleLibrary(str(tmp_path), model_tag="weights-a")
    style_id = library.add_image(style_pixels(3, 64, 64), "tagged").id
    _, first = run(model, library, style_id)
    library.gram_cache.flush()
    _, same_tag = run(model, StyleLibrary(str(tmp_path), model_tag="weights-a"), style_id)
    _, other_tag = run(model, StyleLibrary(str(tmp_path), model_tag="weights-b"), style_id)
    assert same_tag == first - 2 and other_tag == first


def test_cache_keeps_the_newest_grams_within_its_budget(tmp_path):
    library = StyleLibrary(str(tmp_path), max_gram_bytes=3 * 64 * 64 * 4)
    style_id = library.add_image(style_pixels(4), "budget").id
    for n in range(5):
        library.gram_cache.put(style_id, (n + 1, n + 1), "block1_conv1", "max", np.full((64, 64), n, np.float32))
        library.gram_cache.flush()
    grams = records.read_one(library.path_of(style_id)).grams
    assert [key[1] for key in grams] == [3, 4, 5]
    for layer in ("block2_conv1", "block3_conv1"):                      # a size leaves whole, all layers
        library.gram_cache.put(style_id, (6, 6), layer, "max", np.zeros((32, 32), np.float32))
    library.gram_cache.flush()
    assert [key[1:4] for key in records.read_one(library.path_of(style_id)).grams] == \
        [(4, 4, "block1_conv1"), (5, 5, "block1_conv1"), (6, 6, "block2_conv1"), (6, 6, "block3_conv1")]
    assert library.gram_cache.get(style_id, (1, 1), "block1_conv1", "max") is None
    assert np.all(library.gram_cache.get(style_id, (5, 5), "block1_conv1", "max") == 4)


def test_cache_misses_never_fail_a_job(tmp_path):
    library = StyleLibrary(str(tmp_path))
    cache = library.gram_cache
    assert cache.get(None, (8, 8), "block1_conv1", "max") is None
    assert cache.get("../../etc", (8, 8), "block1_conv1", "max") is None
    assert cache.get("00000000deadbeef", (8, 8), "block1_conv1", "max") is None
    cache.put("00000000deadbeef", (8, 8), "block1_conv1", "max", np.eye(4, dtype=np.float32))   # removed style
    cache.flush()
    assert library.list() == [] and not os.path.exists(library.path_of("00000000deadbeef"))


def test_puts_are_answered_at_once_and_written_shortly_after(tmp_path):
    library = StyleLibrary(str(tmp_path))
    style_id = library.add_image(style_pixels(5), "later").id
    stored = open(library.path_of(style_id), "rb").read()
    for n, layer in enumerate(LAYERS):
        library.gram_cache.put(style_id, (16, 16), layer, "max", np.full((2, 2), n, np.float32))
    assert open(library.path_of(style_id), "rb").read() == stored         # nothing written yet
    assert np.all(library.gram_cache.get(style_id, (16, 16), LAYERS[2], "max") == 2)
    deadline = time.monotonic() + 20
    while open(library.path_of(style_id), "rb").read() == stored:
        assert time.monotonic() < deadline, "the pending Grams were never written"
        time.sleep(0.05)
    time.sleep(0.2)
    grams = records.read_one(library.path_of(style_id)).grams
    assert sorted(key[3] for key in grams) == sorted(LAYERS)             # one rewrite with all five
    assert np.all(StyleLibrary(str(tmp_path)).gram_cache.get(style_id, (16, 16), LAYERS[4], "max") == 4)
