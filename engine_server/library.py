"""The style library: the artist's styles, one TFRecord file per style in the user's data folder.

Each file `<id>.tfrecord` holds one tf.train.Example (see library_records.py) with the image, a
thumbnail, name, credit, time added and the Gram matrices already computed for it. The file name
is the id (lowercase hex), never the name: names are free text. Writes are atomic and
read-modify-writes hold a folder lock, so concurrent writers (threads, processes) lose nothing.
A damaged file is skipped with a warning naming it; the other styles still load.
"""

import atexit
import hashlib
import io
import logging
import os
import secrets
import time
import threading
import unicodedata
import warnings
import weakref
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from . import images   # the engine's safe image-file loader
from . import library_files as files
from . import library_records as records
from .errors import EngineError
from .library_records import ID_PATTERN, RecordError, StyleRecord

log = logging.getLogger(__name__)

SUFFIX = ".tfrecord"
MAX_STYLE_SIDE = 4096          # larger images are scaled down when added: style_scale rarely needs more
THUMBNAIL_SIDE = 128
MAX_NAME_CHARS = 200
MAX_CREDIT_CHARS = 2000
MAX_GRAM_BYTES = 16 * 2**20    # per style (~6 sizes of the default layers); the oldest sizes are dropped beyond it


class LibraryError(EngineError):
    """codes: style_not_found, bad_style, bad_pack, library_busy, library_io."""

    def __init__(self, code: str, message: str, field: Optional[str] = None):
        super().__init__(code, message, field)


@dataclass(frozen=True)
class StyleInfo:
    id: str
    name: str
    width: int
    height: int
    credit: str
    added: float          # unix time
    thumbnail_png: bytes

    def to_dict(self, with_thumbnail: bool = True) -> dict:
        info = asdict(self)
        if not with_thumbnail:
            del info["thumbnail_png"]
        return info

    @classmethod
    def of(cls, record: StyleRecord) -> "StyleInfo":
        return cls(record.id, record.name, record.width, record.height, record.credit,
                   record.added_ms / 1000.0, record.thumbnail_png)


def clean_name(name, what: str = "name", limit: int = MAX_NAME_CHARS, allow_empty: bool = False) -> str:
    """Free Unicode text (quotes, slashes allowed), trimmed; no control characters."""
    if not isinstance(name, str):
        raise LibraryError("bad_style", "the style %s must be text, got %s" % (what, type(name).__name__), what)
    name = unicodedata.normalize("NFC", name).strip()
    if not name and not allow_empty:
        raise LibraryError("bad_style", "the style %s is empty" % what, what)
    if len(name) > limit:
        raise LibraryError("bad_style", "the style %s has %d characters, at most %d are allowed"
                           % (what, len(name), limit), what)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in name) or \
            (what == "name" and any(ch in name for ch in "\n\t")):
        raise LibraryError("bad_style", "the style %s contains control characters" % what, what)
    return name


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _to_rgb_uint8(pixels) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 (alpha composited over white), uint8 or float 0..255."""
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise LibraryError("bad_style", "the style image must be HxW with 1, 3 or 4 channels, got shape %s"
                           % (array.shape,), "image")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise LibraryError("bad_style", "the style image must hold finite numbers 0..255", "image")
        array = np.clip(np.rint(array.astype(np.float32)), 0, 255).astype(np.uint8)
    if array.shape[2] == 4:
        alpha = array[:, :, 3:].astype(np.float32) / 255.0
        array = np.rint(array[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def _decode_png(data: bytes, what: str) -> np.ndarray:
    """RGB uint8 from PNG bytes stored in a record. The size is checked before any pixel is
    decoded: no side over MAX_STYLE_SIDE (what add_image stores), so a decompression bomb in a
    shared pack costs nothing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                width, height = image.size
                if max(width, height) > MAX_STYLE_SIDE:
                    raise RecordError("%s is %dx%d pixels, more than the %d-pixel side a style may have"
                                      % (what, width, height, MAX_STYLE_SIDE))
                return np.asarray(image.convert("RGB"))
    except RecordError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RecordError("%s is not a readable PNG" % what) from None


def _load_file(path: str) -> np.ndarray:
    """RGBA float 0..255 from an image file through the engine's safe loader (InputError if unusable)."""
    rgb, alpha = images.load_image(path, "style image")
    if alpha is None:
        return rgb
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def _signature(path: str) -> Optional[tuple]:
    """(mtime, size, inode): files are only ever replaced whole, so an unchanged signature means unchanged content."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def weights_tag(weights_path: str) -> str:
    """A short fingerprint of a weights file: Grams computed with other weights are not reused."""
    digest = hashlib.sha256()
    with open(weights_path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class StyleLibrary:
    """The styles in one folder. Safe to share between threads; other processes may use the same folder."""

    def __init__(self, folder: Optional[str] = None, model_tag: str = "", lock_timeout_s: float = 30.0,
                 max_gram_bytes: int = MAX_GRAM_BYTES):
        if folder is None:
            from shared.paths import library_dir
            folder = library_dir()
        self.folder = os.path.abspath(folder)
        self.model_tag = model_tag
        self.lock_timeout_s = lock_timeout_s
        self.max_gram_bytes = max_gram_bytes
        self.warnings: List[str] = []        # damaged files met by the last list()
        self._info_cache: Dict[str, Tuple[tuple, StyleInfo]] = {}
        self.gram_cache = GramCache(self, model_tag)

    # ---- files -------------------------------------------------------------------------------
    def _ensure_folder(self) -> None:
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
        except OSError as error:
            raise LibraryError("library_io", "cannot create the style library folder %s: %s"
                               % (self.folder, error.strerror)) from None

    def path_of(self, style_id) -> str:
        if not isinstance(style_id, str) or not ID_PATTERN.fullmatch(style_id):
            raise LibraryError("style_not_found", "no style has the id %r (ids are 8-32 lowercase hex digits)"
                               % (style_id,), "id")
        return os.path.join(self.folder, style_id + SUFFIX)

    def _lock(self):
        self._ensure_folder()
        return _LibraryLock(self.folder, self.lock_timeout_s)

    def _write(self, record: StyleRecord) -> None:
        serialized = records.encode(record)
        try:
            files.atomic_write(self.path_of(record.id), lambda temp: records.write_path(temp, [serialized]))
        except OSError as error:
            raise LibraryError("library_io", "could not save style %s in %s: %s (the library is unchanged)"
                               % (record.id, self.folder, error.strerror or error)) from None

    def _read(self, style_id: str, with_grams: bool = True) -> StyleRecord:
        path = self.path_of(style_id)
        if not os.path.exists(path):
            raise LibraryError("style_not_found", "no style has the id %s" % style_id, "id")
        try:
            record = records.read_one(path, with_grams=with_grams)
        except RecordError as error:
            raise LibraryError("bad_style", "the style file %s is damaged: %s" % (path, error), "id") from None
        if record.id != style_id:
            raise LibraryError("bad_style", "the style file %s holds the id %s" % (path, record.id), "id")
        return record

    # ---- reading -----------------------------------------------------------------------------
    def list(self) -> List[StyleInfo]:
        """All readable styles, oldest first; damaged files are skipped and named in self.warnings."""
        self.warnings = []
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise LibraryError("library_io", "cannot read the style library folder %s: %s"
                               % (self.folder, error.strerror)) from None
        infos, unread = [], {}
        for name in names:
            style_id, suffix = os.path.splitext(name)
            if suffix != SUFFIX or not ID_PATTERN.fullmatch(style_id):
                continue
            path = os.path.join(self.folder, name)
            signature = _signature(path)
            if signature is None:
                continue                     # removed meanwhile
            cached = self._info_cache.get(path)
            if cached and cached[0] == signature:
                infos.append(cached[1])
            else:
                unread[path] = (style_id, signature)
        for path, result in records.read_many(unread).items():
            style_id, signature = unread[path]
            if isinstance(result, StyleRecord) and result.id != style_id:
                result = RecordError("it holds the id %s" % result.id)
            if isinstance(result, RecordError):
                if os.path.exists(path):
                    message = "style file %s skipped: %s" % (path, result)
                    log.warning(message)
                    self.warnings.append(message)
                continue
            info = StyleInfo.of(result)
            self._info_cache[path] = (signature, info)
            infos.append(info)
        return sorted(infos, key=lambda info: (info.added, info.name.casefold(), info.id))

    def get(self, style_id: str) -> StyleInfo:
        return StyleInfo.of(self._read(style_id, with_grams=False))

    def image(self, style_id: str) -> np.ndarray:
        """The style image as np.float32 HxWx3 RGB 0..255.

        A job reads the image and then asks the Gram cache: the record is read once for both.
        """
        before = _signature(self.path_of(style_id))
        record = self._read(style_id, with_grams=True)
        if before is not None and _signature(self.path_of(style_id)) == before:
            self.gram_cache._remember(style_id, before, record.grams)
        try:
            pixels = _decode_png(record.image_png, "its image")
        except RecordError as error:
            raise LibraryError("bad_style", "the style file %s is damaged: %s"
                               % (self.path_of(style_id), error), "id") from None
        return pixels.astype(np.float32)

    # ---- adding ------------------------------------------------------------------------------
    def add_image(self, pixels, name: str, credit: str = "") -> StyleInfo:
        """Add an image (HxWx3 RGB uint8, or float 0..255; gray and RGBA are converted)."""
        name = clean_name(name)
        credit = clean_name(credit, "credit", MAX_CREDIT_CHARS, allow_empty=True)
        record = self._new_record(_to_rgb_uint8(pixels), name, credit)
        with self._lock():
            while os.path.exists(self.path_of(record.id)):
                record.id = secrets.token_hex(8)
            self._write(record)
        return StyleInfo.of(record)

    def add_file(self, path: str, name: Optional[str] = None, credit: str = "") -> StyleInfo:
        pixels = _load_file(path)
        if name is None:
            name = os.path.splitext(os.path.basename(path))[0] or "style"
        return self.add_image(pixels, name, credit)

    def _new_record(self, rgb: np.ndarray, name: str, credit: str) -> StyleRecord:
        image = Image.fromarray(rgb, "RGB")
        if max(image.size) > MAX_STYLE_SIDE:
            image.thumbnail((MAX_STYLE_SIDE, MAX_STYLE_SIDE), Image.LANCZOS)
        thumbnail = image.copy()
        thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.LANCZOS)
        return StyleRecord(id=secrets.token_hex(8), name=name, image_png=_png(image),
                           height=image.height, width=image.width, thumbnail_png=_png(thumbnail),
                           credit=credit, added_ms=int(time.time() * 1000))

    # ---- changing ----------------------------------------------------------------------------
    def rename(self, style_id: str, name: str) -> StyleInfo:
        name = clean_name(name)
        with self._lock():
            record = self._read(style_id)
            record.name = name
            self._write(record)
        return StyleInfo.of(record)

    def remove(self, style_id: str) -> None:
        path = self.path_of(style_id)
        with self._lock():
            try:
                files.remove_durably(path)
            except FileNotFoundError:
                raise LibraryError("style_not_found", "no style has the id %s" % style_id, "id") from None
            except OSError as error:
                raise LibraryError("library_io", "could not remove style %s: %s" % (style_id, error.strerror)) from None
        self._info_cache.pop(path, None)
        self.gram_cache.forget(style_id)

    # ---- packs -------------------------------------------------------------------------------
    def export_pack(self, pack_path: str, ids: Sequence[str]) -> int:
        """Write the chosen styles (without their Grams) into one .tfrecord pack; returns the count."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise LibraryError("bad_pack", "choose at least one style to export", "ids")
        serialized = [records.encode(self._read(style_id, with_grams=False), with_grams=False) for style_id in ids]
        folder = os.path.dirname(os.path.abspath(pack_path))
        if not os.path.isdir(folder):
            raise LibraryError("library_io", "the folder %s for the style pack does not exist" % folder, "path")
        try:
            files.atomic_write(pack_path, lambda temp: records.write_path(temp, serialized))
        except OSError as error:
            raise LibraryError("library_io", "could not write the style pack %s: %s"
                               % (pack_path, error.strerror or error), "path") from None
        return len(serialized)

    def import_pack(self, pack_path: str) -> List[StyleInfo]:
        """Add every style of a pack. All-or-nothing: a malformed pack changes nothing.

        A style keeps its id (so ids stay the same across machines) unless this library already has
        that id: with the same image it is already here and is not duplicated; with another image
        the imported style gets a new id.
        """
        incoming = read_pack(pack_path)
        written, result = [], []
        with self._lock():
            try:
                for record in incoming:
                    path = self.path_of(record.id)
                    if os.path.exists(path):
                        existing = self._existing_or_none(record.id)
                        if existing is not None and existing.image_png == record.image_png:
                            result.append(StyleInfo.of(existing))
                            continue
                        while os.path.exists(self.path_of(record.id)):
                            record.id = secrets.token_hex(8)
                    record.added_ms = int(time.time() * 1000)
                    record.grams = {}
                    self._write(record)
                    written.append(self.path_of(record.id))
                    result.append(StyleInfo.of(record))
            except BaseException:
                for path in written:         # roll back: the import is all or nothing
                    try:
                        files.remove_durably(path)
                    except OSError:
                        log.warning("could not roll back %s after a failed import", path)
                raise
        return result

    def _existing_or_none(self, style_id: str) -> Optional[StyleRecord]:
        try:
            return self._read(style_id, with_grams=False)
        except LibraryError:
            return None


class _LibraryLock:
    """FolderLock with library errors; also clears temp files left by an earlier crash."""

    def __init__(self, folder: str, timeout_s: float):
        self._lock = files.FolderLock(folder, timeout_s)

    def __enter__(self):
        try:
            self._lock.__enter__()
        except files.LockTimeout as error:
            raise LibraryError("library_busy", "the style library is busy: %s" % error) from None
        files.remove_stale_temp_files(self._lock.folder)
        return self

    def __exit__(self, *exc_info):
        self._lock.__exit__(*exc_info)


def read_pack(pack_path: str) -> List[StyleRecord]:
    """Every style of a pack, fully checked; LibraryError('bad_pack') for anything malformed."""
    def refuse(reason: str):
        return LibraryError("bad_pack", "the style pack %s was refused (nothing imported): %s" % (pack_path, reason), "path")

    if not os.path.isfile(pack_path):
        raise refuse("no such file")
    incoming, seen = [], set()
    try:
        for number, serialized in enumerate(records.read_serialized(pack_path), 1):
            try:
                record = records.decode(serialized, with_grams=False)
                record.name = clean_name(record.name)
                record.credit = clean_name(record.credit, "credit", MAX_CREDIT_CHARS, allow_empty=True)
                image = _decode_png(record.image_png, "the image")
                _decode_png(record.thumbnail_png, "the thumbnail")
            except (RecordError, LibraryError) as error:
                raise refuse("record %d: %s" % (number, getattr(error, "message", error)))
            if image.shape[:2] != (record.height, record.width):
                raise refuse("record %d: its image is %dx%d but its shape says %dx%d"
                             % (number, image.shape[1], image.shape[0], record.width, record.height))
            if record.id in seen:
                raise refuse("record %d repeats the id %s" % (number, record.id))
            seen.add(record.id)
            incoming.append(record)
    except RecordError as error:
        raise refuse(str(error)) from None
    if not incoming:
        raise refuse("it holds no styles")
    return incoming


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

    def __init__(self, library: StyleLibrary, model_tag: str = ""):
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
        signature = _signature(path)
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
                    signature = _signature(self.library.path_of(style_id))
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
