"""The Gram cache: Gram matrices of library styles, kept in each style's record so a style used
again costs no VGG-19 pass."""

import atexit
import hashlib
import logging
import threading
import weakref
from typing import Dict, Optional, Tuple

import numpy as np

from . import records
from .entries import LibraryError, file_signature
from .records import RecordError

log = logging.getLogger(__name__)


def weights_tag(weights_path: str) -> str:
    """A short fingerprint of a weights file: Grams computed with other weights are not reused."""
    digest = hashlib.sha256()
    with open(weights_path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class GramCache:
    """Gram matrices of library styles, persisted in each style's record (see architecture.md).

    `key` is the library id. put() keeps the Gram in memory at once and writes it to the record
    shortly after, on a background thread (stylize puts one Gram per layer in a burst: one file
    rewrite instead of five, and none on the path to the first iteration). flush() writes now;
    the daemon calls it after a job and at shutdown, and it also runs at interpreter exit.
    Failures to save are logged, never raised: the cache only saves time.
    """

    MEMORY_STYLES = 4      # decoded Grams kept in memory for the most recently used styles
    FLUSH_DELAY_S = 3.0       # after the burst of puts at a job's start, not in the middle of it

    def __init__(self, library, model_tag: str = ""):
        self.library = library
        self.model_tag = model_tag
        self._memory: Dict[str, Tuple[tuple, Dict]] = {}
        self._pending: Dict[str, Dict] = {}
        self._guard = threading.Lock()          # _memory, _pending, _timer
        self._timer: Optional[threading.Timer] = None
        _LIVE_CACHES.add(self)

    def _key(self, size, layer, pooling) -> records.GramKey:
        height, width = (int(n) for n in size)
        return (self.model_tag, height, width, str(layer), str(pooling))

    def _grams_of(self, style_id: str) -> Optional[Dict]:
        try:
            path = self.library.path_of(style_id)
        except LibraryError:
            return None
        signature = file_signature(path)
        if signature is None:
            return None
        with self._guard:
            cached = self._memory.get(style_id)
        if cached and cached[0] == signature:
            return cached[1]
        try:
            grams = records.read_one(path).grams
        except RecordError as error:
            log.warning("Grams of style file %s not read: %s", path, error)
            return None
        self._remember(style_id, signature, grams)
        return grams

    def _remember(self, style_id: str, signature: tuple, grams: Dict) -> None:
        with self._guard:
            self._memory.pop(style_id, None)
            self._memory[style_id] = (signature, grams)
            while len(self._memory) > self.MEMORY_STYLES:
                self._memory.pop(next(iter(self._memory)))

    def get(self, key, size, layer, pooling):
        if not key:
            return None
        gram_key = self._key(size, layer, pooling)
        with self._guard:
            pending = self._pending.get(key, {}).get(gram_key)
        if pending is not None:
            return pending
        grams = self._grams_of(key)
        return None if grams is None else grams.get(gram_key)

    def put(self, key, size, layer, pooling, gram) -> None:
        if not key:
            return
        gram = np.array(gram.numpy() if hasattr(gram, "numpy") else gram, dtype=np.float32)
        with self._guard:
            self._pending.setdefault(key, {})[self._key(size, layer, pooling)] = gram
            if self._timer is None:
                self._timer = threading.Timer(self.FLUSH_DELAY_S, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Write every pending Gram into its style's record (one rewrite per style)."""
        with self._guard:
            pending, self._pending = self._pending, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for style_id, grams in pending.items():
            try:
                with self.library._lock():
                    record = self.library._read(style_id)
                    for gram_key, gram in grams.items():
                        record.grams.pop(gram_key, None)
                        record.grams[gram_key] = gram
                    self._trim(record.grams)
                    self.library._write(record)
                    signature = file_signature(self.library.path_of(style_id))
                self._remember(style_id, signature, record.grams)
            except (LibraryError, OSError) as error:
                log.warning("Grams of style %s not cached: %s", style_id, getattr(error, "message", error))

    def _trim(self, grams: Dict) -> None:
        """Drop the oldest cached sizes beyond the per-style budget, whole (all layers of a size and
        pooling together: a size missing one layer would cost a VGG-19 pass anyway); the newest stays."""
        def size_of(key):
            tag, height, width, _layer, pooling = key
            return (tag, height, width, pooling)
        total = sum(gram.nbytes for gram in grams.values())
        while total > self.library.max_gram_bytes and len({size_of(key) for key in grams}) > 1:
            oldest = size_of(next(iter(grams)))
            for key in [key for key in grams if size_of(key) == oldest]:
                total -= grams.pop(key).nbytes

    def forget(self, style_id: str) -> None:
        with self._guard:
            self._memory.pop(style_id, None)
            self._pending.pop(style_id, None)


_LIVE_CACHES: "weakref.WeakSet[GramCache]" = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for cache in list(_LIVE_CACHES):
        cache.flush()
