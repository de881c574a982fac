"""Style packs: several styles in one .tfrecord file, to share them (without their Grams)."""

import logging
import os
import secrets
import time
from typing import List, Sequence

from . import files, records
from .entries import MAX_CREDIT_CHARS, LibraryError, StyleInfo, clean_name, decode_png
from .records import RecordError, StyleRecord

log = logging.getLogger(__name__)


def export_pack(library, pack_path: str, ids: Sequence[str]) -> int:
    """Write the chosen styles (without their Grams) into one .tfrecord pack; returns the count."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise LibraryError("bad_pack", "choose at least one style to export", "ids")
    serialized = [records.encode(library._read(style_id, with_grams=False), with_grams=False) for style_id in ids]
    folder = os.path.dirname(os.path.abspath(pack_path))
    if not os.path.isdir(folder):
        raise LibraryError("library_io", "the folder %s for the style pack does not exist" % folder, "path")
    try:
        files.atomic_write(pack_path, lambda temp: records.write_path(temp, serialized))
    except OSError as error:
        raise LibraryError("library_io", "could not write the style pack %s: %s"
                           % (pack_path, error.strerror or error), "path") from None
    return len(serialized)


def import_pack(library, pack_path: str) -> List[StyleInfo]:
    """Add every style of a pack. All-or-nothing: a malformed pack changes nothing.

    A style keeps its id (so ids stay the same across machines) unless this library already has
    that id: with the same image it is already here and is not duplicated; with another image
    the imported style gets a new id.
    """
    incoming = read_pack(pack_path)
    written, result = [], []
    now_ms = int(time.time() * 1000)
    with library._lock():
        try:
            for index, record in enumerate(incoming):
                path = library.path_of(record.id)
                if os.path.exists(path):
                    existing = library._existing_or_none(record.id)
                    if existing is not None and existing.image_png == record.image_png:
                        result.append(StyleInfo.of(existing))
                        continue
                    while os.path.exists(library.path_of(record.id)):
                        record.id = secrets.token_hex(8)
                record.added_ms = now_ms + index    # the library lists them in the pack's order
                record.grams = {}
                library._write(record)
                written.append(library.path_of(record.id))
                result.append(StyleInfo.of(record))
        except BaseException:
            for path in written:         # roll back: the import is all or nothing
                try:
                    files.remove_durably(path)
                except OSError:
                    log.warning("could not roll back %s after a failed import", path)
            raise
    return result


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
                image = decode_png(record.image_png, "the image")
                decode_png(record.thumbnail_png, "the thumbnail")
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
