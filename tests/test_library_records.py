"""Style records on disk: every field round-trips through a real TFRecord file."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from engine_server.library import records
from engine_server.core.errors import EngineError
from engine_server.library import LibraryError, StyleLibrary, THUMBNAIL_SIDE
from tests.support.style_images import style_pixels

AWKWARD_NAMES = [
    'Van Gogh "Starry Night"',
    "../../etc/passwd",
    "a/b\\c:d*e?f<g>h|",
    "名前 — ナイト 🌌",
    "'; DROP TABLE styles; --",
    ".hidden",
    "CON",
]


def test_every_field_round_trips(tmp_path):
    pixels = style_pixels(1, 48, 64)
    library = StyleLibrary(str(tmp_path))
    added = library.add_image(pixels, "Wave", credit="Hokusai, 1831\nvia Wikimedia")

    fresh = StyleLibrary(str(tmp_path))        # nothing kept in memory
    [info] = fresh.list()
    assert info == added
    assert (info.name, info.credit, info.width, info.height) == ("Wave", "Hokusai, 1831\nvia Wikimedia", 64, 48)
    assert abs(info.added - added.added) < 1e-6 and info.added > 1.7e9
    assert np.array_equal(fresh.image(info.id), pixels.astype(np.float32))
    assert fresh.image(info.id).dtype == np.float32
    thumbnail = Image.open(io.BytesIO(info.thumbnail_png))
    assert thumbnail.format == "PNG" and max(thumbnail.size) <= THUMBNAIL_SIDE
    assert sorted(os.listdir(str(tmp_path))) == [".lock", info.id + ".tfrecord"]


def test_record_with_grams_round_trips_through_tfrecord(tmp_path):
    rng = np.random.default_rng(0)
    grams = {("tag", 32, 48, "block1_conv1", "max"): rng.random((64, 64), dtype=np.float32),
             ("tag", 16, 24, "block2_conv1", "avg"): rng.random((128, 128), dtype=np.float32)}
    record = records.StyleRecord(id="0123456789abcdef", name="ü/\"x\"", image_png=b"png", height=3, width=4,
                                 thumbnail_png=b"thumb", credit="c", added_ms=1234567890123, grams=grams)
    path = str(tmp_path / "one.tfrecord")
    records.write_path(path, [records.encode(record)])
    back = records.read_one(path)
    for field in ("id", "name", "image_png", "height", "width", "thumbnail_png", "credit", "added_ms"):
        assert getattr(back, field) == getattr(record, field), field
    assert list(back.grams) == list(grams)
    for key in grams:
        assert back.grams[key].dtype == np.float32 and np.array_equal(back.grams[key], grams[key])
    assert records.read_one(path, with_grams=False).grams == {}


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_names_are_kept_and_never_become_paths(tmp_path, name):
    library = StyleLibrary(str(tmp_path / "lib"))
    info = library.add_image(style_pixels(2), name)
    assert StyleLibrary(str(tmp_path / "lib")).get(info.id).name == name
    assert sorted(os.listdir(str(tmp_path))) == ["lib"]                 # nothing escaped the folder
    assert sorted(os.listdir(str(tmp_path / "lib"))) == [".lock", info.id + ".tfrecord"]
    renamed = library.rename(info.id, name + " / 2")
    assert StyleLibrary(str(tmp_path / "lib")).get(info.id).name == renamed.name == name + " / 2"


def test_gray_rgba_and_float_images_become_rgb(tmp_path):
    library = StyleLibrary(str(tmp_path))
    gray = library.add_image(np.full((40, 64), 100, np.uint8), "gray")
    assert np.array_equal(library.image(gray.id), np.full((40, 64, 3), 100, np.float32))
    rgba = np.zeros((40, 64, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :32, 3] = 255                        # left half opaque red, right half transparent
    info = library.add_image(rgba, "rgba")
    image = library.image(info.id)
    assert image[0, 0].tolist() == [255, 0, 0] and image[0, 63].tolist() == [255, 255, 255]
    floats = library.add_image(style_pixels(3).astype(np.float32), "floats")
    assert np.array_equal(library.image(floats.id), style_pixels(3).astype(np.float32))


@pytest.mark.parametrize("name, field", [("", "name"), ("   ", "name"), ("a\nb", "name"), ("x" * 201, "name"),
                                         (None, "name")])
def test_bad_names_are_refused_with_a_field(tmp_path, name, field):
    library = StyleLibrary(str(tmp_path))
    with pytest.raises(LibraryError) as caught:
        library.add_image(style_pixels(1), name)
    assert caught.value.field == field and isinstance(caught.value, EngineError)
    assert library.list() == []


def test_unknown_and_malicious_ids_are_not_found(tmp_path):
    library = StyleLibrary(str(tmp_path))
    library.add_image(style_pixels(1), "one")
    for style_id in ("0123456789abcdef", "../x", "", "ABCDEF0123456789", None, "0123456789abcdef\n"):
        for call in (library.get, library.image, library.remove, lambda i: library.rename(i, "n")):
            with pytest.raises(LibraryError) as caught:
                call(style_id)
            assert caught.value.code == "style_not_found"
    assert len(library.list()) == 1


def test_remove(tmp_path):
    library = StyleLibrary(str(tmp_path))
    keep = library.add_image(style_pixels(1), "keep")
    gone = library.add_image(style_pixels(2), "gone")
    library.remove(gone.id)
    assert [info.id for info in StyleLibrary(str(tmp_path)).list()] == [keep.id]
    assert [info.id for info in library.list()] == [keep.id]


def test_add_file_uses_the_file_name(tmp_path):
    path = tmp_path / "my style.png"
    Image.fromarray(style_pixels(4)).save(str(path))
    library = StyleLibrary(str(tmp_path / "lib"))
    info = library.add_file(str(path), credit="me")
    assert (info.name, info.credit) == ("my style", "me")
    assert np.array_equal(library.image(info.id), style_pixels(4).astype(np.float32))
    with pytest.raises(EngineError):
        library.add_file(str(tmp_path / "missing.png"))
