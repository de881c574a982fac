"""The style library: the artist's styles, one TFRecord file per style in the user's data folder.

Each file `<id>.tfrecord` holds one tf.train.Example (see records.py) with the image, a
thumbnail, name, credit, time added and the Gram matrices already computed for it. The file name
is the id (lowercase hex), never the name: names are free text. Writes are atomic and
read-modify-writes hold a folder lock, so concurrent writers (threads, processes) lose nothing.
A damaged file is skipped with a warning naming it; the other styles still load.
"""

import logging
import os
import secrets
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from . import files, packs, records
from .entries import (MAX_CREDIT_CHARS, MAX_STYLE_SIDE, SUFFIX, THUMBNAIL_SIDE, LibraryError, StyleInfo,
                      clean_name, decode_png, load_file, png_bytes, file_signature, to_rgb_uint8)
from .gram_cache import GramCache
from .records import ID_PATTERN, RecordError, StyleRecord

log = logging.getLogger(__name__)

MAX_GRAM_BYTES = 16 * 2**20    # per style (~6 sizes of the default layers); the oldest sizes are dropped beyond it


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
            signature = file_signature(path)
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
        before = file_signature(self.path_of(style_id))
        record = self._read(style_id, with_grams=True)
        if before is not None and file_signature(self.path_of(style_id)) == before:
            self.gram_cache._remember(style_id, before, record.grams)
        try:
            pixels = decode_png(record.image_png, "its image")
        except RecordError as error:
            raise LibraryError("bad_style", "the style file %s is damaged: %s"
                               % (self.path_of(style_id), error), "id") from None
        return pixels.astype(np.float32)

    # ---- adding ------------------------------------------------------------------------------
    def add_image(self, pixels, name: str, credit: str = "") -> StyleInfo:
        """Add an image (HxWx3 RGB uint8, or float 0..255; gray and RGBA are converted)."""
        name = clean_name(name)
        credit = clean_name(credit, "credit", MAX_CREDIT_CHARS, allow_empty=True)
        record = self._new_record(to_rgb_uint8(pixels), name, credit)
        with self._lock():
            while os.path.exists(self.path_of(record.id)):
                record.id = secrets.token_hex(8)
            self._write(record)
        return StyleInfo.of(record)

    def add_file(self, path: str, name: Optional[str] = None, credit: str = "") -> StyleInfo:
        pixels = load_file(path)
        if name is None:
            name = os.path.splitext(os.path.basename(path))[0] or "style"
        return self.add_image(pixels, name, credit)

    def _new_record(self, rgb: np.ndarray, name: str, credit: str) -> StyleRecord:
        image = Image.fromarray(rgb, "RGB")
        if max(image.size) > MAX_STYLE_SIDE:
            image.thumbnail((MAX_STYLE_SIDE, MAX_STYLE_SIDE), Image.LANCZOS)
        thumbnail = image.copy()
        thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.LANCZOS)
        return StyleRecord(id=secrets.token_hex(8), name=name, image_png=png_bytes(image),
                           height=image.height, width=image.width, thumbnail_png=png_bytes(thumbnail),
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

    # ---- packs (packs.py) --------------------------------------------------------------------
    def export_pack(self, pack_path: str, ids: Sequence[str]) -> int:
        """Write the chosen styles (without their Grams) into one .tfrecord pack; returns the count."""
        return packs.export_pack(self, pack_path, ids)

    def import_pack(self, pack_path: str) -> List[StyleInfo]:
        """Add every style of a pack, all or nothing (see packs.import_pack)."""
        return packs.import_pack(self, pack_path)

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
