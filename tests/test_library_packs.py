"""Style packs between two library folders: export, import, the id policy."""

import os

import numpy as np
import pytest

from engine_server.library import records
from engine_server.library import LibraryError, StyleLibrary
from tests.support.style_images import style_pixels


def test_export_then_import_into_another_library(tmp_path):
    source = StyleLibrary(str(tmp_path / "alice"))
    first = source.add_image(style_pixels(1), 'Ölbild "1"', credit="Alice")
    second = source.add_image(style_pixels(2, 64, 40), "two/slashes")
    source.add_image(style_pixels(3), "not exported")
    source.gram_cache.put(first.id, (32, 48), "block1_conv1", "max", np.eye(64, dtype=np.float32))
    source.gram_cache.flush()
    assert len(records.read_one(source.path_of(first.id)).grams) == 1
    pack = str(tmp_path / "pack.tfrecord")
    assert source.export_pack(pack, [second.id, first.id, second.id]) == 2     # repeats written once
    assert [records.decode(r, with_grams=False).id for r in records.read_serialized(pack)] == [second.id, first.id]
    assert all(records.decode(r).grams == {} for r in records.read_serialized(pack))   # packs carry no Grams

    target = StyleLibrary(str(tmp_path / "bob"))
    imported = target.import_pack(pack)
    assert [info.id for info in imported] == [second.id, first.id]                     # ids kept
    listed = {info.id: info for info in StyleLibrary(target.folder).list()}
    assert set(listed) == {first.id, second.id}
    for original, seed in ((first, 1), (second, 2)):
        copy = listed[original.id]
        assert (copy.name, copy.credit, copy.width, copy.height, copy.thumbnail_png) == \
            (original.name, original.credit, original.width, original.height, original.thumbnail_png)
        assert copy.added >= original.added            # "added" is when it came into this library
    assert np.array_equal(target.image(second.id), style_pixels(2, 64, 40).astype(np.float32))


def test_importing_the_same_pack_twice_does_not_duplicate(tmp_path):
    source = StyleLibrary(str(tmp_path / "a"))
    info = source.add_image(style_pixels(1), "one")
    pack = str(tmp_path / "pack.tfrecord")
    source.export_pack(pack, [info.id])
    target = StyleLibrary(str(tmp_path / "b"))
    target.import_pack(pack)
    target.rename(info.id, "my name for it")
    again = target.import_pack(pack)
    assert [(i.id, i.name) for i in again] == [(info.id, "my name for it")]
    assert len(target.list()) == 1


def test_id_collision_with_another_image_gets_a_new_id(tmp_path):
    source = StyleLibrary(str(tmp_path / "a"))
    info = source.add_image(style_pixels(1), "from the pack")
    pack = str(tmp_path / "pack.tfrecord")
    source.export_pack(pack, [info.id])
    target = StyleLibrary(str(tmp_path / "b"))
    mine = target.add_image(style_pixels(9), "mine")
    os.rename(target.path_of(mine.id), target.path_of(info.id))   # same id, different image
    record = records.read_one(target.path_of(info.id))
    record.id = info.id
    records.write_path(target.path_of(info.id), [records.encode(record)])

    [imported] = target.import_pack(pack)
    assert imported.id != info.id and imported.name == "from the pack"
    assert target.get(info.id).name == "mine"                       # the existing style is untouched
    assert np.array_equal(target.image(imported.id), style_pixels(1).astype(np.float32))


def test_export_refuses_unknown_ids_and_writes_nothing(tmp_path):
    source = StyleLibrary(str(tmp_path / "a"))
    info = source.add_image(style_pixels(1), "one")
    pack = str(tmp_path / "pack.tfrecord")
    with pytest.raises(LibraryError) as caught:
        source.export_pack(pack, [info.id, "00000000deadbeef"])
    assert caught.value.code == "style_not_found" and "00000000deadbeef" in caught.value.message
    with pytest.raises(LibraryError):
        source.export_pack(pack, [])
    with pytest.raises(LibraryError) as caught:
        source.export_pack(str(tmp_path / "no" / "such" / "pack.tfrecord"), [info.id])
    assert caught.value.code == "library_io"
    assert not os.path.exists(pack) and sorted(os.listdir(str(tmp_path))) == ["a"]


def test_a_failed_import_rolls_back_what_it_wrote(tmp_path, monkeypatch):
    source = StyleLibrary(str(tmp_path / "a"))
    ids = [source.add_image(style_pixels(seed), "s%d" % seed).id for seed in range(3)]
    pack = str(tmp_path / "pack.tfrecord")
    source.export_pack(pack, ids)
    target = StyleLibrary(str(tmp_path / "b"))
    kept = target.add_image(style_pixels(7), "kept")
    real_write, calls = records.write_path, []

    def full_disk_on_third(path, serialized):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(path, serialized)
    monkeypatch.setattr(records, "write_path", full_disk_on_third)
    with pytest.raises(LibraryError) as caught:
        target.import_pack(pack)
    assert "No space left" in caught.value.message
    assert [info.id for info in StyleLibrary(target.folder).list()] == [kept.id]
    assert sorted(os.listdir(target.folder)) == [".lock", kept.id + ".tfrecord"]


def test_imported_styles_keep_the_packs_order_within_one_millisecond(tmp_path, monkeypatch):
    from engine_server.library import packs
    mine = StyleLibrary(str(tmp_path / "mine"))
    ids = [mine.add_image(style_pixels(n), name).id for n, name in enumerate(["zebra", "apple"])]
    mine.export_pack(str(tmp_path / "p.tfrecord"), ids)
    monkeypatch.setattr(packs.time, "time", lambda: 1700000000.0)     # the whole import in one millisecond
    theirs = StyleLibrary(str(tmp_path / "theirs"))
    theirs.import_pack(str(tmp_path / "p.tfrecord"))
    assert [info.name for info in theirs.list()] == ["zebra", "apple"]
