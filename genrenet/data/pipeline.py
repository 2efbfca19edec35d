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


def training_dataset(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32,
                     seed: int = 0, crops_per_clip: Optional[int] = None, augment: Optional[Callable] = None,
                     batch_augment: Optional[Callable] = None, cache=True, log: Optional[SkipLog] = None):
    """Batches of ``(waveform[B, W], one_hot[B, C])`` with fresh random crops of every clip each epoch.

    A clip of length L gives ``crops_per_clip`` crops (default ``round(L / W)``, so every second of audio is
    seen about once per epoch). ``augment(waveform, label, seed)`` runs per window, ``batch_augment`` per batch.
    """
    log = log or SkipLog()
    targets = one_hot_labels(clips, labels)
    ds = clip_audio(clips, sample_rate, window_samples, log, cache=cache)
    ds = ds.shuffle(max(1, len(clips)), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    w = window_samples

    def crops(item, rng_seed):
        audio, i = item
        length = tf.shape(audio)[0]
        n = crops_per_clip or tf.maximum(1, tf.cast(tf.round(length / w), tf.int32))
        offsets = tf.random.stateless_uniform([n], seed=rng_seed, minval=0, maxval=length - w + 1, dtype=tf.int32)
        windows = tf.gather(audio, offsets[:, None] + tf.range(w)[None, :])
        return tf.data.Dataset.from_tensor_slices((windows, tf.repeat(targets[i][None], n, axis=0)))

    ds = tf.data.Dataset.zip((ds, seeds)).flat_map(crops)
    ds = ds.shuffle(1024, seed=seed + 1, reshuffle_each_iteration=True)
    if augment is not None:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed + 2).batch(2)))
        ds = ds.map(lambda item, s: augment(item[0], item[1], s), num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size)
    if batch_augment is not None:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed + 3).batch(2)))
        ds = ds.map(lambda item, s: batch_augment(item[0], item[1], s), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


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
