"""One style as one tf.train.Example: encoding, the feature spec, decoding, reading TFRecord files.

This module knows the record format only; where files live, locking and atomic writes are in
`library.py` / `library_files.py`. Arrays are stored as serialized bytes (tf.io.serialize_tensor).
"""

import errno
import re
from dataclasses import dataclass, field
from typing import Dict, Iterator, Tuple

import numpy as np
import tensorflow as tf

FORMAT = b"neural-style/style/1"
ID_PATTERN = re.compile(r"^[0-9a-f]{8,32}$")   # ids become file names, so only these characters
GramKey = Tuple[str, int, int, str, str]        # (model tag, height, width, keras layer, pooling)


class RecordError(ValueError):
    """A record (or a TFRecord file) that cannot be read; str() says what is wrong."""


@dataclass
class StyleRecord:
    id: str
    name: str
    image_png: bytes
    height: int
    width: int
    thumbnail_png: bytes
    credit: str = ""
    added_ms: int = 0
    grams: Dict[GramKey, np.ndarray] = field(default_factory=dict)   # insertion order = oldest first


FEATURES = {
    "format": tf.io.FixedLenFeature([], tf.string),
    "id": tf.io.FixedLenFeature([], tf.string),
    "name": tf.io.FixedLenFeature([], tf.string),
    "image": tf.io.FixedLenFeature([], tf.string),
    "shape": tf.io.FixedLenFeature([3], tf.int64),
    "thumbnail": tf.io.FixedLenFeature([], tf.string),
    "credit": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "added_ms": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    "gram_keys": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
    "grams": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
}
# Listing needs no Grams: a smaller spec skips decoding them.
INFO_FEATURES = {key: spec for key, spec in FEATURES.items() if key not in ("gram_keys", "grams")}


def _bytes(*values: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(*values: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def gram_key_text(key: GramKey) -> bytes:
    tag, height, width, layer, pooling = key
    return ("%s|%dx%d|%s|%s" % (tag, height, width, layer, pooling)).encode("utf-8")


def parse_gram_key(text: bytes) -> GramKey:
    try:
        tag, size, layer, pooling = text.decode("utf-8").rsplit("|", 3)
        height, width = (int(n) for n in size.split("x"))
    except ValueError:
        raise RecordError("a Gram key %r is not 'tag|HxW|layer|pooling'" % text[:80]) from None
    return tag, height, width, layer, pooling


def encode(record: StyleRecord, with_grams: bool = True) -> bytes:
    """The serialized tf.train.Example for `record`."""
    features = {
        "format": _bytes(FORMAT),
        "id": _bytes(record.id.encode("ascii")),
        "name": _bytes(record.name.encode("utf-8")),
        "image": _bytes(record.image_png),
        "shape": _ints(record.height, record.width, 3),
        "thumbnail": _bytes(record.thumbnail_png),
        "credit": _bytes(record.credit.encode("utf-8")),
        "added_ms": _ints(record.added_ms),
    }
    if with_grams and record.grams:
        keys = list(record.grams)
        features["gram_keys"] = _bytes(*(gram_key_text(key) for key in keys))
        features["grams"] = _bytes(*(tf.io.serialize_tensor(np.asarray(record.grams[key], np.float32)).numpy()
                                     for key in keys))
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _text(value, what: str) -> str:
    try:
        return value.numpy().decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError("its %s is not UTF-8 text" % what) from None


def decode(serialized, with_grams: bool = True) -> StyleRecord:
    """A StyleRecord from one serialized Example (bytes or a scalar string tensor).

    Checks the structure (format marker, id, shape, Gram arrays); image bytes are checked by the
    caller that decodes them.
    """
    try:
        parsed = tf.io.parse_single_example(serialized, FEATURES if with_grams else INFO_FEATURES)
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        missing = re.search(r"Feature: (\w+) \(data type: \w+\) is required", str(error))
        if missing:
            raise RecordError("it is not a style record: the feature %r is missing" % missing.group(1)) from None
        raise RecordError("it is not a style record (not a tf.train.Example with the style features)") from None
    if parsed["format"].numpy() != FORMAT:
        raise RecordError("its format is %r, expected %r" % (parsed["format"].numpy()[:40], FORMAT))
    style_id = _text(parsed["id"], "id")
    if not ID_PATTERN.fullmatch(style_id):
        raise RecordError("its id %r is not 8-32 lowercase hex digits" % style_id[:40])
    height, width, channels = (int(n) for n in parsed["shape"].numpy())
    if height < 1 or width < 1 or channels != 3:
        raise RecordError("its shape %dx%dx%d is not a positive HxWx3" % (height, width, channels))
    record = StyleRecord(
        id=style_id, name=_text(parsed["name"], "name"),
        image_png=parsed["image"].numpy(), height=height, width=width,
        thumbnail_png=parsed["thumbnail"].numpy(), credit=_text(parsed["credit"], "credit"),
        added_ms=int(parsed["added_ms"].numpy()))
    if with_grams:
        record.grams = _decode_grams(parsed["gram_keys"].numpy(), parsed["grams"].numpy())
    return record


def _decode_grams(keys, blobs) -> Dict[GramKey, np.ndarray]:
    if len(keys) != len(blobs):
        raise RecordError("it has %d Gram keys but %d Gram arrays" % (len(keys), len(blobs)))
    grams = {}
    for key_text, blob in zip(keys, blobs):
        key = parse_gram_key(key_text)
        try:
            gram = tf.io.parse_tensor(blob, tf.float32).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            raise RecordError("its Gram %s is not a serialized float32 tensor" % key_text.decode("utf-8", "replace")) from None
        if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
            raise RecordError("its Gram %s has shape %s, expected a square matrix"
                              % (key_text.decode("utf-8", "replace"), gram.shape))
        grams[key] = gram
    return grams


def read_serialized(path: str) -> Iterator[bytes]:
    """Serialized records of a TFRecord file; RecordError (naming the record number) on a CRC
    failure or truncation, after yielding the intact records before it."""
    index = 0
    try:
        for serialized in tf.data.TFRecordDataset(path):
            yield serialized
            index += 1
    except tf.errors.DataLossError as error:
        detail = getattr(error, "message", str(error)).split("\n")[0]
        kind = "is truncated" if "truncated" in detail else "fails its CRC check"
        raise RecordError("record %d %s" % (index + 1, kind)) from None
    except (tf.errors.NotFoundError, tf.errors.PermissionDeniedError, tf.errors.FailedPreconditionError) as error:
        raise RecordError("it cannot be read (%s)" % getattr(error, "message", str(error)).split("\n")[0][:200]) from None


def read_one(path: str, with_grams: bool = True) -> StyleRecord:
    """The single style record of a per-style file."""
    records = list(read_serialized(path))
    if len(records) != 1:
        raise RecordError("it holds %d records, expected exactly 1" % len(records))
    return decode(records[0], with_grams=with_grams)


def read_many(paths, with_grams: bool = False) -> Dict[str, object]:
    """{path: StyleRecord or RecordError} for many per-style files.

    One TFRecordDataset over all files (creating a dataset per file costs ~35 ms); after a
    data-loss error the files from the last good one on are read one by one, so the damaged file
    is named and every other one still loads.
    """
    paths = list(paths)
    serialized: Dict[str, list] = {path: [] for path in paths}
    last_good = 0
    if paths:
        dataset = tf.data.Dataset.from_tensor_slices(paths).interleave(
            lambda path: tf.data.TFRecordDataset(path).map(lambda record: (path, record)), cycle_length=1)
        index_of = {path.encode("utf-8"): index for index, path in enumerate(paths)}
        try:
            for path, record in dataset:
                last_good = index_of[path.numpy()]
                serialized[paths[last_good]].append(record)
            last_good = len(paths)
        except tf.errors.OpError:
            pass
    results: Dict[str, object] = {}
    for index, path in enumerate(paths):
        try:
            found = serialized[path] if index < last_good else list(read_serialized(path))
            if len(found) != 1:
                raise RecordError("it holds %d records, expected exactly 1" % len(found))
            results[path] = decode(found[0], with_grams=with_grams)
        except RecordError as error:
            results[path] = error
    return results


def write_path(path: str, serialized_records) -> None:
    """Write serialized Examples to `path` with tf.io.TFRecordWriter (path is a temp file).
    TensorFlow reports a failed write (a full disk: ResourceExhaustedError) as its own error type;
    it is raised as the OSError every caller handles."""
    try:
        with tf.io.TFRecordWriter(path) as writer:
            for serialized in serialized_records:
                writer.write(serialized)
    except tf.errors.OpError as error:
        reason = error.message.rsplit("; ", 1)[-1]
        code = errno.ENOSPC if "No space left" in reason else errno.EIO
        raise OSError(code, reason, path) from None
