"""A style library on a disk that is really full: saving fails with a clear error, nothing is lost.

The library lives on a 4 MiB tmpfs (mounting needs root, as in CI); the disk is filled with a file
until the kernel answers ENOSPC, then styles are added, renamed and Grams flushed.
"""

import errno
import os
import subprocess

import numpy as np
import pytest

from engine_server.library import LibraryError, StyleLibrary
from tests.support.style_images import style_pixels
from tests.support.skips import skip_or_fail
from tests.test_library_corruption import snapshot


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_or_fail("cannot mount a small tmpfs here (needs root): %s" % mounted.stderr.strip())
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder):
    """Write a file until the disk is full; return its path."""
    path = os.path.join(str(folder), "filler")
    with open(path, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    with open(path, "ab", buffering=0) as stream:      # the last few KiB the first loop left
        try:
            while True:
                stream.write(b"\0" * 512)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return path


def test_a_full_disk_fails_each_save_clearly_and_keeps_the_library(small_disk):
    library_folder = small_disk / "styles"
    library = StyleLibrary(str(library_folder))
    kept = [library.add_image(style_pixels(seed), "style %d" % seed) for seed in range(2)]
    before = snapshot(str(library_folder))
    filler = fill(small_disk)

    with pytest.raises(LibraryError) as adding:
        library.add_image(style_pixels(7, 256, 200), "one too many")
    with pytest.raises(LibraryError) as renaming:
        library.rename(kept[0].id, "a new name")
    for failure in (adding.value, renaming.value):
        assert "No space left on device" in failure.message, failure.message
    assert snapshot(str(library_folder)) == before         # no half-written record, no temp file left

    library.gram_cache.put(kept[1].id, (32, 32), "block1_conv1", "max", np.eye(64, dtype=np.float32))
    library.gram_cache.flush()                             # a write-behind that cannot be written is dropped
    assert snapshot(str(library_folder)) == before

    fresh = StyleLibrary(str(library_folder))
    assert sorted(info.name for info in fresh.list()) == ["style 0", "style 1"]
    assert np.array_equal(fresh.image(kept[1].id), style_pixels(1).astype(np.float32))

    os.unlink(filler)                                      # space again: saving works again
    assert library.rename(kept[0].id, "a new name").name == "a new name"
    assert StyleLibrary(str(library_folder)).get(kept[0].id).name == "a new name"
