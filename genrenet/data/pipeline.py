"""tf.data pipelines: decode (soundfile via ``tf.numpy_function``) → resample → cache → windows → batch.

Training takes fresh random crops of every clip each epoch; evaluation and prediction cut every window of a
clip and keep the clip index so that window probabilities can be averaged per clip. Files that fail to decode
are skipped and logged (never the end of a run); clips shorter than a window are zero-padded and logged.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from .audio import AudioError

AUTOTUNE = tf.data.AUTOTUNE


class SkipLog:
    """Thread-safe record of skipped files and padded clips, reported by train/evaluate and saved in runs."""

    def __init__(self, initial=()):
        self._lock = threading.Lock()
        self.skipped = {}  # name -> reason
        self.padded = set()
        for name, reason in initial:
            self.skipped[name] = reason

    def skip(self, name, reason):
        with self._lock:
            self.skipped[str(name)] = reason

    def pad(self, name):
        with self._lock:
            self.padded.add(str(name))

    def summary(self) -> list[str]:
        lines = []
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} files")
            lines += [f"  {n}: {r}" for n, r in sorted(self.skipped.items())]
        if self.padded:
            lines.append(f"padded {len(self.padded)} clips shorter than one window with silence")
        return lines

    def to_rows(self):
        return [(n, r) for n, r in sorted(self.skipped.items())] + [(n, "padded: shorter than one window")
                                                                  for n in sorted(self.padded)]


def _decoder(clips, sample_rate: int, window_samples: int, log: SkipLog):
    def decode(i):
        clip = clips[int(i)]
        try:
            audio = clip.load(sample_rate)
        except AudioError as e:
            log.skip(clip.name, e.reason)
            return np.zeros(0, np.float32)
        except Exception as e:  # never let one file end the run
            log.skip(clip.name, f"cannot decode ({type(e).__name__}: {e})")
            return np.zeros(0, np.float32)
        if not np.any(audio):
            log.skip(clip.name, "is silent (all samples are zero)")
            return np.zeros(0, np.float32)
        if len(audio) < window_samples:
            log.pad(clip.name)
            audio = np.pad(audio, (0, window_samples - len(audio)))
        return audio.astype(np.float32, copy=False)

    return decode


def clip_audio(clips, sample_rate: int, window_samples: int, log: SkipLog, *, cache=True):
    """Dataset of ``(audio[samples], clip_index)`` for the decodable clips, in clip order.

    ``cache``: ``True`` keeps decoded audio in memory after the first pass, a path caches to files there,
    ``False`` decodes every time.
    """
    decode = _decoder(clips, sample_rate, window_samples, log)

    def load(i):
        audio = tf.numpy_function(decode, [i], tf.float32, stateful=False)
        return tf.ensure_shape(audio, [None]), i

    ds = tf.data.Dataset.range(len(clips)).map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda audio, i: tf.size(audio) > 0)
    if cache is True:
        ds = ds.cache()
    elif cache:
        ds = ds.cache(str(cache))
    return ds


def one_hot_labels(clips, labels):
    index = {name: i for i, name in enumerate(labels)}
    missing = sorted({c.label for c in clips} - set(index))
    if missing:
        raise ValueError(f"labels {missing} are not among the model's classes {list(labels)}")
    return tf.one_hot([index[c.label] for c in clips], len(labels), dtype=tf.float32)


def epoch_seeds(seed: int, epoch: int) -> tuple:
    """Four op seeds that are a pure function of ``(seed, epoch)``, so a resumed run sees the same data."""
    return tuple(int(x) for x in np.random.SeedSequence([seed, epoch]).generate_state(4) % (2 ** 31 - 1))


def _num_crops(length, window_samples: int, crops_per_clip: Optional[int]):
    if crops_per_clip:
        return tf.constant(crops_per_clip, tf.int32)
    return tf.maximum(1, tf.cast(tf.round(length / window_samples), tf.int32))


def _epoch_batches(clip_ds, targets, seeds, *, num_clips: int, window_samples: int, batch_size: int,
                   crops_per_clip: Optional[int], augment: Optional[Callable], batch_augment: Optional[Callable],
                   reshuffle: bool = False, drop_remainder: bool = False):
    """One epoch of training batches. Its order, crops and augmentation depend only on ``seeds`` (and TF's global
    seed), unless ``reshuffle``: then every iteration of the dataset draws a new epoch."""
    shuffle_clips, shuffle_windows, crop_seed, augment_seed = seeds
    w = window_samples

    def stream(s):  # per-element seed pairs for stateless random ops
        return tf.data.Dataset.random(seed=s, rerandomize_each_iteration=reshuffle).batch(2)

    def crops(item, rng_seed):
        audio, i = item
        length = tf.shape(audio)[0]
        n = _num_crops(length, w, crops_per_clip)
        offsets = tf.random.stateless_uniform([n], seed=rng_seed, minval=0, maxval=length - w + 1, dtype=tf.int32)
        windows = tf.gather(audio, offsets[:, None] + tf.range(w)[None, :])
        return tf.data.Dataset.from_tensor_slices((windows, tf.repeat(targets[i][None], n, axis=0)))

    ds = clip_ds.shuffle(max(1, num_clips), seed=shuffle_clips, reshuffle_each_iteration=reshuffle)
    ds = tf.data.Dataset.zip((ds, stream(crop_seed))).flat_map(crops)
    ds = ds.shuffle(1024, seed=shuffle_windows, reshuffle_each_iteration=reshuffle)
    if augment is not None:
        ds = tf.data.Dataset.zip((ds, stream(augment_seed)))
        ds = ds.map(lambda item, s: augment(item[0], item[1], s), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if batch_augment is not None:
        ds = tf.data.Dataset.zip((ds, stream(augment_seed + 1)))
        ds = ds.map(lambda item, s: batch_augment(item[0], item[1], s), num_parallel_calls=AUTOTUNE,
                    deterministic=True)
    return ds


def training_dataset(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32,
                     seed: int = 0, crops_per_clip: Optional[int] = None, augment: Optional[Callable] = None,
                     batch_augment: Optional[Callable] = None, cache=True, log: Optional[SkipLog] = None,
                     epoch: Optional[int] = None):
    """Batches of ``(waveform[B, W], one_hot[B, C])`` with fresh random crops of every clip each epoch.

    A clip of length L gives ``crops_per_clip`` crops (default ``round(L / W)``, so every second of audio is
    seen about once per epoch). ``augment(waveform, label, seed)`` runs per window, ``batch_augment`` per batch.
    Without ``epoch`` every iteration draws a new epoch; with it, the batches are exactly those of that epoch
    (see :func:`training_epochs`, which gives all epochs of a run).
    """
    log = log or SkipLog()
    targets = one_hot_labels(clips, labels)
    clip_ds = clip_audio(clips, sample_rate, window_samples, log, cache=cache)
    ds = _epoch_batches(clip_ds, targets, epoch_seeds(seed, 0 if epoch is None else epoch), num_clips=len(clips),
                        window_samples=window_samples, batch_size=batch_size, crops_per_clip=crops_per_clip,
                        augment=augment, batch_augment=batch_augment, reshuffle=epoch is None)
    return ds.prefetch(AUTOTUNE)


def _concatenate(parts):
    """Concatenate datasets as a balanced tree (depth log2(n), not n)."""
    while len(parts) > 1:
        parts = [parts[i].concatenate(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def training_epochs(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32, seed: int = 0,
                    initial_epoch: int = 0, epochs: int, crops_per_clip: Optional[int] = None,
                    augment: Optional[Callable] = None, batch_augment: Optional[Callable] = None, cache=True,
                    log: Optional[SkipLog] = None, drop_remainder: bool = False):
    """``(dataset, steps_per_epoch)``: the batches of epochs ``initial_epoch .. epochs-1`` in one stream.

    Epoch ``e`` is a pure function of ``(seed, e)`` (not of how many epochs this process has run), so a run
    resumed at an epoch boundary sees exactly the data of an uninterrupted one. Counting the windows of an
    epoch decodes every clip once (which fills the cache). ``drop_remainder`` leaves out each epoch's last
    partial batch (distributed training: a replica with an empty batch would make the loss NaN).
    """
    log = log or SkipLog()
    targets = one_hot_labels(clips, labels)
    clip_ds = clip_audio(clips, sample_rate, window_samples, log, cache=cache)
    counts = clip_ds.map(lambda audio, i: _num_crops(tf.shape(audio)[0], window_samples, crops_per_clip))
    windows = int(counts.reduce(tf.constant(0, tf.int32), lambda a, b: a + b))
    steps = windows // batch_size if drop_remainder else -(-windows // batch_size)
    if steps == 0:
        raise ValueError(f"one epoch has {windows} training windows, fewer than one batch of {batch_size}")

    def epoch_ds(e):
        return _epoch_batches(clip_ds, targets, epoch_seeds(seed, e), num_clips=len(clips),
                              window_samples=window_samples, batch_size=batch_size, crops_per_clip=crops_per_clip,
                              augment=augment, batch_augment=batch_augment, drop_remainder=drop_remainder)

    parts = [epoch_ds(e) for e in range(initial_epoch, epochs)] or [epoch_ds(0).take(0)]
    return _concatenate(parts).prefetch(AUTOTUNE), steps


def frame_windows(audio, window_samples: int, hop_samples: int):
    """All windows of one clip ``[n, W]``, n = 1 + (L - W) // hop; a clip shorter than W is zero-padded."""
    length = tf.shape(audio)[0]
    audio = tf.pad(audio, [[0, tf.maximum(0, window_samples - length)]])
    return tf.signal.frame(audio, window_samples, hop_samples, pad_end=False)


def window_dataset(clips, *, sample_rate: int, window_samples: int, hop_samples: Optional[int] = None,
                   batch_size: int = 32, cache=False, log: Optional[SkipLog] = None):
    """Batches of ``(waveform[B, W], clip_index[B])`` over every window of every clip, in clip order."""
    log = log or SkipLog()
    hop = hop_samples or window_samples
    ds = clip_audio(clips, sample_rate, window_samples, log, cache=cache)

    def windows(audio, i):
        w = frame_windows(audio, window_samples, hop)
        return tf.data.Dataset.from_tensor_slices((w, tf.fill([tf.shape(w)[0]], i)))

    return ds.flat_map(windows).batch(batch_size).prefetch(AUTOTUNE)


def validation_dataset(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32,
                       log: Optional[SkipLog] = None):
    """Fixed, non-overlapping windows with one-hot labels, cached: the same windows every epoch."""
    targets = one_hot_labels(clips, labels)
    ds = window_dataset(clips, sample_rate=sample_rate, window_samples=window_samples, batch_size=batch_size,
                        log=log).unbatch()
    return ds.map(lambda w, i: (w, tf.gather(targets, i))).batch(batch_size).cache().prefetch(AUTOTUNE)


def streamed_window_batches(clips, *, sample_rate: int, window_samples: int, hop_samples: Optional[int] = None,
                            batch_size: int = 32, log: Optional[SkipLog] = None, block_seconds: float = 20.0):
    """Like :func:`window_dataset` (NumPy batches of ``(windows[B, W], clip_index[B])``, the same windows), but
    files are decoded block by block, so memory does not grow with a file's length (hours of audio).

    A clip that turns out unusable part-way (or silent) is recorded in ``log.skipped``; its windows may already
    have been yielded, so consumers drop the results of skipped clips.
    """
    from .audio import stream_audio

    log = log or SkipLog()
    w, hop = window_samples, hop_samples or window_samples
    pending_x, pending_i = [], []

    def clip_windows(clip):
        chunks = stream_audio(clip.path, sample_rate, block_seconds=block_seconds) if clip.audio is None else [
            clip.load(sample_rate)]
        buf, total, audible = np.zeros(0, np.float32), 0, False
        for chunk in chunks:
            audible = audible or bool(np.any(chunk))
            total += chunk.size
            buf = np.concatenate([buf, chunk])
            if buf.size >= w:
                n = 1 + (buf.size - w) // hop
                yield buf[np.arange(n)[:, None] * hop + np.arange(w)[None, :]]
                buf = buf[n * hop:]
        if total == 0:
            raise AudioError(clip.name, "contains no audio after resampling")
        if not audible:
            raise AudioError(clip.name, "is silent (all samples are zero)")
        if total < w:
            log.pad(clip.name)
            yield np.pad(buf, (0, w - buf.size))[None, :]

    for index, clip in enumerate(clips):
        try:
            for windows in clip_windows(clip):
                for row in windows:
                    pending_x.append(row)
                    pending_i.append(index)
                    if len(pending_x) == batch_size:
                        yield np.stack(pending_x), np.array(pending_i, np.int64)
                        pending_x, pending_i = [], []
        except AudioError as e:
            log.skip(clip.name, e.reason)
        except Exception as e:  # never let one file end the run
            log.skip(clip.name, f"cannot decode ({type(e).__name__}: {e})")
    if pending_x:
        yield np.stack(pending_x), np.array(pending_i, np.int64)
