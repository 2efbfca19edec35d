"""``prepare``: decode and resample a dataset once, on Apache Beam, into TFRecord shards (``tfrecord:PREFIX``).

The dataset spec is resolved where the command runs; the workers read its files (they must see the same paths)
and decode them with genrenet's decoder. Clip ``k`` goes to shard ``k mod N``, in dataset order within its shard;
the index gives each clip its shard and byte offset, or the reason its file failed to decode.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Optional

from ..errors import AudioError, DatasetError
from .beamio import FileSystems, beam, copy_to, is_local, local_file, pipeline_options, read_text, write_bytes
from .audio import load_audio
from .sources import load_dataset
from .sources.tfrecord import RECORD_OVERHEAD, encode_record, shard_name

CLIPS_PER_SHARD = 100  # 30-s clips at 22050 Hz: ~260 MB of float32 audio per shard


def _clip_row(order: int, clip) -> dict:
    return {"order": order, "id": clip.id, "file": clip.path, "label": clip.label, "tags": list(clip.tags),
            "split": clip.split,
            "group": clip.group, "read": os.path.abspath(clip.path) if is_local(clip.path) else clip.path}


class DecodeClip(beam.DoFn):
    """Clip row → ``(shard, (order, record, row + duration))``, or the row with ``error`` on ``failed``."""

    def __init__(self, sample_rate: int, num_shards: int):
        self.sample_rate, self.num_shards = sample_rate, num_shards

    def process(self, row):
        row = dict(row)
        try:
            with local_file(row.pop("read")) as local:
                audio = load_audio(local, self.sample_rate)
        except AudioError as e:
            yield beam.pvalue.TaggedOutput("failed", dict(row, error=e.reason))
            return
        except Exception as e:  # a remote read that fails: reported, never the end of the job
            yield beam.pvalue.TaggedOutput("failed", dict(row, error=f"cannot read ({type(e).__name__}: {e})"))
            return
        record = encode_record(audio, self.sample_rate, row["id"], row["label"])
        yield row["order"] % self.num_shards, (row["order"], record, dict(row, duration=len(audio) / self.sample_rate))


class WriteShard(beam.DoFn):
    """``(shard, clips)`` → the shard file (clips in dataset order) and one index row per clip with its offset."""

    def __init__(self, prefix: str, num_shards: int):
        self.prefix, self.num_shards = prefix, num_shards

    def process(self, item):
        import tensorflow as tf

        shard, clips = item
        clips = sorted(clips, key=lambda c: c[0])
        path = shard_name(self.prefix, shard, self.num_shards)
        rows, offset = [], 0
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "shard.tfrecord")
            with tf.io.TFRecordWriter(local) as writer:
                for _, record, row in clips:
                    writer.write(record)
                    rows.append(dict(row, shard=os.path.basename(path), offset=offset))
                    offset += len(record) + RECORD_OVERHEAD
            copy_to(local, path)
        yield from rows


def prepare(spec: str, output: str, *, sample_rate: int = 22050, runner: str = "DirectRunner", beam_args=(),
            num_shards: Optional[int] = None) -> dict:
    """Decode the clips of data spec ``spec`` at ``sample_rate`` into ``OUTPUT-SSSSS-of-NNNNN.tfrecord``,
    ``OUTPUT.index.jsonl`` and ``OUTPUT.json``; returns the dataset's metadata (``OUTPUT.json``)."""
    dataset = load_dataset(spec)
    if any(c.path is None for c in dataset.clips):
        raise DatasetError(f"{spec}: its clips are made in memory and need no preparation (prepare reads files)")
    if num_shards is not None and num_shards < 1:
        raise DatasetError(f"num_shards must be at least 1, not {num_shards}")
    num_shards = num_shards or max(1, -(-len(dataset.clips) // CLIPS_PER_SHARD))
    clip_list = output + ".clips.jsonl"  # the work list, read by the workers (a large list does not fit a job graph)
    write_bytes(clip_list, "".join(json.dumps(_clip_row(i, c)) + "\n" for i, c in enumerate(dataset.clips)).encode())
    with beam.Pipeline(options=pipeline_options(runner, beam_args)) as p:
        decoded = (p | "Clips" >> beam.io.ReadFromText(clip_list) | "Parse" >> beam.Map(json.loads)
                   | "Spread" >> beam.Reshuffle()
                   | "Decode" >> beam.ParDo(DecodeClip(sample_rate, num_shards)).with_outputs("failed", main="ok"))
        written = decoded.ok | "ByShard" >> beam.GroupByKey() | "Write" >> beam.ParDo(WriteShard(output, num_shards))
        ((written, decoded.failed) | "Index" >> beam.Flatten() | "Json" >> beam.Map(json.dumps)
         | "WriteIndex" >> beam.io.WriteToText(output + ".index", file_name_suffix=".jsonl", num_shards=1,
                                               shard_name_template=""))
    FileSystems.delete([clip_list])
    index = [json.loads(line) for line in read_text(output + ".index.jsonl").splitlines() if line.strip()]
    meta = {"name": dataset.name, "spec": dataset.spec, "labels": dataset.labels, "sample_rate": sample_rate,
            "num_clips": len(dataset.clips), "num_shards": num_shards, "failed": sum("error" in r for r in index),
            "skipped": [list(s) for s in dataset.skipped], "notes": dataset.notes}
    write_bytes(output + ".json", json.dumps(meta, indent=2).encode())
    return meta
