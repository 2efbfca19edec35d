"""``tfrecord:PREFIX``: a dataset decoded once by ``genrenet prepare`` into TFRecord shards.

``PREFIX.json`` holds the dataset (name, labels, sample rate, files skipped while scanning),
``PREFIX.index.jsonl`` one row per clip (id, file, label, tags, split, group, duration, shard, byte offset, or the
reason it failed to decode), and ``PREFIX-SSSSS-of-NNNNN.tfrecord`` the audio: one ``tf.train.Example`` per clip
with its decoded float32 samples. Clips read their record lazily, by offset, when the pipeline loads them, so
training needs neither mp3 decoding nor memory for audio it has not reached yet.
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
from typing import Optional

import numpy as np

from ...errors import DatasetError
from ..audio import AudioError, resample
from .base import Clip, ClipDataset, finish

RECORD_OVERHEAD = 16  # a TFRecord is a uint64 length, its uint32 CRC, the data and the data's uint32 CRC


def shard_name(prefix: str, shard: int, num_shards: int) -> str:
    """``PREFIX-SSSSS-of-NNNNN.tfrecord``."""
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}.tfrecord"


def encode_record(audio: np.ndarray, sample_rate: int, clip_id: str, label: str) -> bytes:
    """One clip's ``tf.train.Example``: its id, label, sample rate and float32 samples (little-endian bytes)."""
    import tensorflow as tf

    feature = {
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode("utf-8", "surrogateescape")])),
        "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode("utf-8")])),
        "sample_rate": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(sample_rate)])),
        "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[audio.astype("<f4").tobytes()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def decode_record(data: bytes) -> tuple[np.ndarray, int]:
    """``(audio float32, sample_rate)`` of a record written by :func:`encode_record`."""
    import tensorflow as tf

    features = tf.train.Example.FromString(data).features.feature
    audio = np.frombuffer(features["audio"].bytes_list.value[0], "<f4").astype(np.float32)
    return audio, int(features["sample_rate"].int64_list.value[0])


def read_record(shard: str, offset: int) -> bytes:
    """The data of the TFRecord at byte ``offset`` of ``shard`` (local or any file system TF reads, e.g. gs://)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(shard, "rb") as f:
        f.seek(offset)
        header = f.read(12)
        if len(header) < 12:
            raise ValueError(f"no record at byte {offset}")
        (length,) = struct.unpack("<Q", header[:8])
        data = f.read(length)
    if len(data) < length:
        raise ValueError(f"record at byte {offset} is truncated")
    return data


@dataclasses.dataclass
class RecordClip(Clip):
    """A clip whose decoded audio is one record of a prepared shard (or, when it failed to decode while being
    prepared, the reason). ``source`` is the original file, for messages."""

    shard: str = ""
    offset: int = 0
    source: str = ""
    error: Optional[str] = None

    @property
    def name(self) -> str:
        return self.source or self.id

    def load(self, sample_rate: int) -> np.ndarray:
        """The prepared audio at ``sample_rate`` (resampled only when it differs from the prepared rate)."""
        if self.error:
            raise AudioError(self.name, self.error)
        try:
            audio, rate = decode_record(read_record(self.shard, self.offset))
        except Exception as e:  # a shard that was moved, truncated or overwritten
            raise AudioError(self.name, f"cannot read its record in {self.shard} ({type(e).__name__}: {e})") from None
        return resample(audio, rate, sample_rate)


def prepared_clips(clips, log) -> list:
    """The clips ``genrenet prepare`` decoded into its shards; the ones it could not decode are skipped in
    ``log`` (a :class:`~genrenet.data.SkipLog`) with the reason it recorded, as training on the folder skips them."""
    for clip in clips:
        if getattr(clip, "error", None):
            log.skip(clip.name, clip.error)
    return [clip for clip in clips if not getattr(clip, "error", None)]


def worker_shards(shards, num_workers: int, worker_index: int) -> list:
    """The shards worker ``worker_index`` of ``num_workers`` reads: every ``num_workers``-th one, so that the
    workers' parts are disjoint and together hold every shard."""
    if not 0 <= worker_index < num_workers:
        raise DatasetError(f"worker index {worker_index} is not in 0..{num_workers - 1}")
    return sorted(shards)[worker_index::num_workers]


def _read_text(path: str, spec: str) -> str:
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        raise DatasetError(f"{spec}: {path} not found (write it with `genrenet prepare DATA --output PREFIX`)")
    with tf.io.gfile.GFile(path, "r") as f:
        return f.read()


def _clip(row: dict, folder: str) -> RecordClip:
    return RecordClip(id=row["id"], label=row["label"], tags=tuple(row.get("tags") or ()), split=row.get("split"),
                      group=row.get("group"),
                      shard=os.path.join(folder, row["shard"]) if row.get("shard") else "",
                      offset=int(row.get("offset", 0)), source=row.get("file", ""), error=row.get("error"))


def tfrecord_dataset(prefix: str, spec: Optional[str] = None) -> ClipDataset:
    """The dataset ``genrenet prepare`` wrote under ``prefix``, its clips in their original order."""
    spec = spec or f"tfrecord:{prefix}"
    meta = json.loads(_read_text(prefix + ".json", spec))
    rows = [json.loads(line) for line in _read_text(prefix + ".index.jsonl", spec).splitlines() if line.strip()]
    folder = os.path.dirname(prefix)
    clips = [_clip(r, folder) for r in sorted((r for r in rows if "order" in r), key=lambda r: r["order"])]
    if len(clips) != meta["num_clips"]:
        raise DatasetError(f"{spec}: the index lists {len(clips)} clips, the dataset had {meta['num_clips']} "
                           "(an interrupted prepare? run it again)")
    skipped = [tuple(s) for s in meta.get("skipped", [])]
    notes = list(meta.get("notes", [])) + [f"prepared from {meta['spec']} at {meta['sample_rate']} Hz"]
    return finish(meta["name"], spec, clips, skipped, notes, labels=meta["labels"])
