"""Crash-safe file writes and an inter-process folder lock, for the style library.

Atomic write: write a temp file in the same folder, flush + fsync it, os.replace() it over the
target, fsync the folder. A crash or a full disk leaves either the old file or the new one.
The lock (fcntl.flock on POSIX, msvcrt.locking on Windows, a lock directory elsewhere) guards
read-modify-write sequences between threads and processes; plain readers need no lock because
files are only ever replaced whole.
"""

import errno
import os
import secrets
import time

try:
    import fcntl
except ImportError:          # Windows
    fcntl = None
try:
    import msvcrt
except ImportError:          # POSIX
    msvcrt = None

TEMP_PREFIX = ".tmp-"
LOCK_NAME = ".lock"
STALE_LOCK_DIR_S = 120.0     # only for the lock-directory fallback: a crashed holder's lock expires


class LockTimeout(Exception):
    pass


def fsync_folder(folder: str) -> None:
    """Make a rename/unlink in `folder` durable (not possible, nor needed, on Windows)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, write_to) -> None:
    """Call write_to(temp_path) to fill a temp file next to `path`, then swap it in atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(folder, "%s%s-%s" % (TEMP_PREFIX, secrets.token_hex(6), os.path.basename(path)))
    try:
        write_to(temp)
        fsync_file(temp)
        _replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise
    fsync_folder(folder)


def _replace(source: str, target: str, attempts: int = 20) -> None:
    """os.replace; on Windows a reader holding `target` open makes it fail for a moment: retry."""
    for attempt in range(attempts):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def remove_durably(path: str) -> None:
    os.remove(path)
    fsync_folder(os.path.dirname(os.path.abspath(path)))


def remove_stale_temp_files(folder: str, older_than_s: float = 3600.0) -> None:
    """Temp files left by a crash in the middle of a write (never the ones being written now)."""
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(TEMP_PREFIX):
            path = os.path.join(folder, name)
            try:
                if now - os.stat(path).st_mtime > older_than_s:
                    os.remove(path)
            except OSError:
                pass


class FolderLock:
    """Exclusive lock on a folder, shared by threads and processes: `with FolderLock(folder): ...`.

    Not reentrant: never take it again inside a `with` block of the same lock.
    """

    def __init__(self, folder: str, timeout_s: float = 30.0):
        self.folder = folder
        self.timeout_s = timeout_s
        self._fd = None
        self._lock_dir = None

    def __enter__(self):
        deadline = time.monotonic() + self.timeout_s
        delay = 0.002
        while not self._try_acquire():
            if time.monotonic() >= deadline:
                raise LockTimeout("the folder %s stayed locked by another writer for %.0f s"
                                  % (self.folder, self.timeout_s))
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return self

    def __exit__(self, *exc_info):
        if self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            elif msvcrt is not None:
                os.lseek(self._fd, 0, os.SEEK_SET)
                msvcrt.locking(self._fd, msvcrt.LK_UNLCK, 1)
            os.close(self._fd)
            self._fd = None
        if self._lock_dir is not None:
            os.rmdir(self._lock_dir)
            self._lock_dir = None

    def _try_acquire(self) -> bool:
        path = os.path.join(self.folder, LOCK_NAME)
        if fcntl is None and msvcrt is None:
            return self._try_lock_dir(path + ".d")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
                return False
            raise
        self._fd = fd
        return True

    def _try_lock_dir(self, path: str) -> bool:
        try:
            os.mkdir(path)
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime > STALE_LOCK_DIR_S:
                    os.rmdir(path)
            except OSError:
                pass
            return False
        self._lock_dir = path
        return True
