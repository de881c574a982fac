"""Concurrent writers (threads and processes) on one library folder: every write lands."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

from engine_server.library import records
from engine_server.library import StyleLibrary
from tests.support.style_images import style_pixels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_threads(count, target):
    start = threading.Barrier(count)
    errors = []

    def body(index):
        try:
            start.wait(timeout=30)
            target(index)
        except BaseException as error:       # reported below, never lost in a thread
            errors.append(error)
    threads = [threading.Thread(target=body, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


def test_threads_adding_at_once_all_land(tmp_path):
    added = []

    def add_three(index):
        library = StyleLibrary(str(tmp_path))            # like separate clients of the daemon
        for n in range(3):
            added.append(library.add_image(style_pixels(index * 10 + n), "t%d-%d" % (index, n)).id)
    run_threads(6, add_three)
    listed = StyleLibrary(str(tmp_path)).list()
    assert len(added) == 18 and sorted(info.id for info in listed) == sorted(added)


def test_threads_changing_one_style_lose_no_update(tmp_path):
    library = StyleLibrary(str(tmp_path))
    style = library.add_image(style_pixels(1), "shared")

    def change(index):
        client = StyleLibrary(library.folder)          # each thread its own library object
        if index == 0:
            client.rename(style.id, "renamed while caching")
        else:
            client.gram_cache.put(style.id, (8 * index, 8 * index), "block1_conv1", "max",
                                  np.full((4, 4), index, np.float32))
            client.gram_cache.flush()
    run_threads(6, change)
    record = records.read_one(library.path_of(style.id))
    assert record.name == "renamed while caching"
    assert sorted(key[1] for key in record.grams) == [8, 16, 24, 32, 40]
    for key, gram in record.grams.items():
        assert np.all(gram == key[1] // 8)


WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    sys.path.insert(0, {repo!r})
    from engine_server.library import StyleLibrary
    from tests.support.style_images import style_pixels
    folder, shared_id, who, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    library = StyleLibrary(folder)
    open(go + ".ready%d" % who, "w").close()
    deadline = time.time() + 60
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.005)
    for n in range(4):
        library.add_image(style_pixels(100 * who + n), "process %d style %d" % (who, n))
        library.gram_cache.put(shared_id, (who, n + 1), "block1_conv1", "max", np.full((4, 4), who, np.float32))
        library.gram_cache.flush()
    # left for the write-behind: must still reach the record when the process exits
    library.gram_cache.put(shared_id, (who, 99), "block1_conv1", "max", np.full((4, 4), who, np.float32))
    print("done")
""")


def test_two_processes_adding_and_caching_at_once_all_land(tmp_path):
    library = StyleLibrary(str(tmp_path / "lib"))
    shared = library.add_image(style_pixels(1), "shared")
    go = str(tmp_path / "go")
    script = WRITER.format(repo=REPO)
    processes = [subprocess.Popen([sys.executable, "-c", script, library.folder, shared.id, str(who), go],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
                 for who in (1, 2)]
    try:
        deadline = time.time() + 90
        while not all(os.path.exists(go + ".ready%d" % who) for who in (1, 2)):
            assert time.time() < deadline and all(p.poll() is None for p in processes), \
                [p.communicate() for p in processes if p.poll() is not None]
            time.sleep(0.05)
        open(go, "w").close()                                     # both start writing together
        outputs = [p.communicate(timeout=120) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in processes] == [0, 0], outputs
    names = sorted(info.name for info in StyleLibrary(library.folder).list())
    assert names == sorted(["shared"] + ["process %d style %d" % (who, n) for who in (1, 2) for n in range(4)])
    grams = records.read_one(library.path_of(shared.id)).grams
    assert sorted((key[1], key[2]) for key in grams) == [(who, n) for who in (1, 2) for n in (1, 2, 3, 4, 99)]


def test_lock_directory_fallback_serializes_writers(tmp_path, monkeypatch):
    """Where neither fcntl nor msvcrt exists, a lock directory does the job."""
    from engine_server.library import files as library_files
    monkeypatch.setattr(library_files, "fcntl", None)
    monkeypatch.setattr(library_files, "msvcrt", None)
    library = StyleLibrary(str(tmp_path))
    style = library.add_image(style_pixels(1), "shared")

    def change(index):
        client = StyleLibrary(library.folder)
        client.gram_cache.put(style.id, (index + 1, 1), "block1_conv1", "max", np.zeros((2, 2), np.float32))
        client.gram_cache.flush()
    run_threads(5, change)
    assert sorted(key[1] for key in records.read_one(library.path_of(style.id)).grams) == [1, 2, 3, 4, 5]
    assert not os.path.exists(os.path.join(library.folder, ".lock.d"))


def test_a_busy_library_is_a_clear_error(tmp_path):
    from engine_server.library import files as library_files
    from engine_server.library import LibraryError
    library = StyleLibrary(str(tmp_path), lock_timeout_s=0.2)
    style = library.add_image(style_pixels(1), "one")
    with library_files.FolderLock(library.folder):
        started = time.monotonic()
        try:
            library.rename(style.id, "two")
            raise AssertionError("rename went through a held lock")
        except LibraryError as error:
            assert error.code == "library_busy" and library.folder in error.message
        assert time.monotonic() - started < 5
    assert library.rename(style.id, "two").name == "two"
