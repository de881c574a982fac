"""Damaged style files are skipped with a warning naming them; damaged packs are refused and change nothing."""

import logging
import os
import struct
import time
import zlib

import numpy as np
import pytest

from engine_server.library import records
from engine_server.library import LibraryError, StyleLibrary
from tests.support.style_images import style_pixels


def make_library(folder, count=3):
    library = StyleLibrary(str(folder))
    infos = [library.add_image(style_pixels(seed), "style %d" % seed) for seed in range(count)]
    return library, infos


def flip_byte(path, offset_from_end=None):
    data = bytearray(open(path, "rb").read())
    offset = len(data) // 2 if offset_from_end is None else len(data) - offset_from_end
    data[offset] ^= 0x40
    with open(path, "wb") as stream:
        stream.write(bytes(data))


def truncate(path, keep_fraction=0.6):
    size = os.path.getsize(path)
    with open(path, "r+b") as stream:
        stream.truncate(int(size * keep_fraction))


def snapshot(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))
            if name != ".lock"}


@pytest.mark.parametrize("damage", [flip_byte, truncate, lambda path: open(path, "wb").close()],
                         ids=["flipped byte", "truncated", "emptied"])
def test_damaged_style_file_is_skipped_and_the_others_load(tmp_path, caplog, damage):
    library, infos = make_library(tmp_path)
    damaged = library.path_of(infos[1].id)
    damage(damaged)
    fresh = StyleLibrary(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        listed = fresh.list()
    assert [info.id for info in listed] == [infos[0].id, infos[2].id]
    assert len(fresh.warnings) == 1 and damaged in fresh.warnings[0]
    assert damaged in caplog.text
    assert np.array_equal(fresh.image(infos[2].id), style_pixels(2).astype(np.float32))
    with pytest.raises(LibraryError) as caught:
        fresh.image(infos[1].id)
    assert caught.value.code == "bad_style" and damaged in caught.value.message


def test_damage_after_listing_is_noticed(tmp_path):
    library, infos = make_library(tmp_path, 2)
    assert len(library.list()) == 2
    flip_byte(library.path_of(infos[0].id))
    assert [info.id for info in library.list()] == [infos[1].id]


def test_stray_files_in_the_folder_are_ignored(tmp_path):
    library, infos = make_library(tmp_path, 1)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "NOT-AN-ID.tfrecord").write_bytes(b"x")
    (tmp_path / ".tmp-123-abc.tfrecord").write_bytes(b"half written")
    assert [info.id for info in StyleLibrary(str(tmp_path)).list()] == [infos[0].id]


def test_temp_files_left_by_a_crash_are_cleared_by_the_next_writer(tmp_path):
    library, infos = make_library(tmp_path, 1)
    old, fresh = tmp_path / ".tmp-aaaa-x.tfrecord", tmp_path / ".tmp-bbbb-y.tfrecord"
    old.write_bytes(b"left by a crash")
    fresh.write_bytes(b"being written right now")
    os.utime(str(old), (time.time() - 7200, time.time() - 7200))
    library.rename(infos[0].id, "renamed")
    assert not old.exists() and fresh.exists()


def test_a_crash_mid_write_leaves_the_old_style(tmp_path, monkeypatch):
    library, infos = make_library(tmp_path, 1)
    before = snapshot(str(tmp_path))

    def disk_full(path, serialized):
        with open(path, "wb") as stream:
            stream.write(b"partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(records, "write_path", disk_full)
    with pytest.raises(LibraryError) as caught:
        library.rename(infos[0].id, "new name")
    assert "No space left" in caught.value.message
    assert snapshot(str(tmp_path)) == before                  # temp file removed, old record intact
    assert StyleLibrary(str(tmp_path)).get(infos[0].id).name == "style 0"


# ---- packs -----------------------------------------------------------------------------------

@pytest.fixture
def pack(tmp_path):
    library, infos = make_library(tmp_path / "source", 3)
    path = str(tmp_path / "pack.tfrecord")
    assert library.export_pack(path, [info.id for info in infos]) == 3
    return path


def write_pack(path, serialized_records):
    records.write_path(path, serialized_records)
    return path


def good_record(seed=5, **changes):
    library = StyleLibrary.__new__(StyleLibrary)
    record = StyleLibrary._new_record(library, style_pixels(seed), "ok", "")
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def png_header_only(width, height):
    """A PNG that claims width x height pixels but carries almost no data (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def malformed_packs(tmp_path, pack):
    def damaged(name, damage):
        path = str(tmp_path / name)
        open(path, "wb").write(open(pack, "rb").read())
        damage(path)
        return path
    first = next(records.read_serialized(pack)).numpy()
    yield "flipped byte", damaged("flipped.tfrecord", flip_byte)
    yield "truncated", damaged("truncated.tfrecord", truncate)
    yield "last record cut", damaged("cut.tfrecord", lambda p: truncate(p, 0.95))
    yield "empty", write_pack(str(tmp_path / "empty.tfrecord"), [])
    yield "not a tfrecord", damaged("text.tfrecord", lambda p: open(p, "w").write("just some text\n" * 20))
    yield "not an Example", write_pack(str(tmp_path / "junk.tfrecord"), [first, b"\xff\x00junk"])
    yield "Example without fields", write_pack(str(tmp_path / "nofields.tfrecord"), [first, records.tf.train.Example().SerializeToString()])
    yield "bad PNG", write_pack(str(tmp_path / "png.tfrecord"), [first, records.encode(good_record(image_png=b"\x89PNG nope"))])
    yield "bomb", write_pack(str(tmp_path / "bomb.tfrecord"),
                             [first, records.encode(good_record(image_png=png_header_only(60000, 60000), height=60000, width=60000))])
    yield "shape lies", write_pack(str(tmp_path / "shape.tfrecord"), [first, records.encode(good_record(height=7))])
    yield "bad id", write_pack(str(tmp_path / "id.tfrecord"), [first, records.encode(good_record(id="../../x"))])
    yield "repeated id", write_pack(str(tmp_path / "dup.tfrecord"), [first, first])
    yield "empty name", write_pack(str(tmp_path / "name.tfrecord"), [first, records.encode(good_record(name=""))])
    yield "missing file", str(tmp_path / "nowhere.tfrecord")


def test_malformed_packs_are_refused_and_change_nothing(tmp_path, pack):
    target, infos = make_library(tmp_path / "target", 2)
    before = snapshot(target.folder)
    for label, path in malformed_packs(tmp_path, pack):
        with pytest.raises(LibraryError) as caught:
            target.import_pack(path)
        assert caught.value.code == "bad_pack", label
        assert path in caught.value.message and "nothing imported" in caught.value.message, label
        assert "\n" not in caught.value.message, label
        assert snapshot(target.folder) == before, label
    assert [info.id for info in StyleLibrary(target.folder).list()] == [info.id for info in infos]
