"""tf.data pipelines: decode (soundfile, ``tf.numpy_function``) → resample → cache → windows → augment → batch.

Training takes fresh random crops of every clip each epoch; evaluation and prediction cut every window of a
clip and keep the clip index so that window probabilities can be averaged per clip. Files that fail to decode
are skipped and logged (never the end of a run); clips shorter than a window are zero-padded and logged.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from ..errors import DatasetError
from .audio import AudioError
from .memory import AudioCache, cache_key, choose_cache

AUTOTUNE = tf.data.AUTOTUNE

# Inference pipelines run with tf.data's autotuner off: on a 2-core CPU, with the model taking both cores, the
# autotuner stalled about every second pass over 100 files by ~1.3 s (lstm predict: 1.3 s or 2.6 s per pass;
# with it off, 1.2-1.5 s every time; measured with benchmarks.predict, Dec 2026).
_STEADY = tf.data.Options()
_STEADY.autotune.enabled = False


class SkipLog:
    """Thread-safe record of skipped files and padded clips, reported by train/evaluate and saved in runs, with
    the files the dataset ignored (not clips of it), so that its report names every file that was not used."""

    SHOWN_IGNORED = 10  # ignored files named in :meth:`summary` (all of them are in :meth:`to_rows`)

    def __init__(self, initial=(), ignored=()):
        self._lock = threading.Lock()
        self.skipped = {}  # name -> reason
        self.padded = set()
        self.ignored = dict(ignored)  # name -> reason
        for name, reason in initial:
            self.skipped[name] = reason

    def skip(self, name, reason):
        """Record that ``name`` was left out, and why."""
        with self._lock:
            self.skipped[str(name)] = reason

    def pad(self, name):
        """Record that ``name`` was shorter than one window and was zero-padded."""
        with self._lock:
            self.padded.add(str(name))

    def summary(self) -> list[str]:
        """Lines for the user: how many files were skipped (with reasons), ignored (the first few) and padded."""
        lines = []
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} files")
            lines += [f"  {n}: {r}" for n, r in sorted(self.skipped.items())]
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} files that are not clips of the dataset")
            shown = sorted(self.ignored.items())[:self.SHOWN_IGNORED]
            lines += [f"  {n}: {r}" for n, r in shown]
            if len(self.ignored) > len(shown):
                lines.append(f"  ... and {len(self.ignored) - len(shown)} more")
        if self.padded:
            lines.append(f"padded {len(self.padded)} clips shorter than one window with silence")
        return lines

    def to_rows(self):
        """``(file, reason)`` rows for ``skipped.tsv``: skipped files, then ignored and padded ones."""
        return ([(n, r) for n, r in sorted(self.skipped.items())]
                + [(n, f"ignored: {r}") for n, r in sorted(self.ignored.items())]
                + [(n, "padded: shorter than one window") for n in sorted(self.padded)])


def _decoder(clips, sample_rate: int, window_samples: int, log: SkipLog, cache_dir=None):
    disk = AudioCache(cache_dir) if cache_dir else None

    def load(clip):
        key = cache_key(clip, sample_rate) if disk else None
        if disk:
            audio, reason = disk.get(key)
            if reason is not None:
                raise AudioError(clip.name, reason)
            if audio is not None:
                return audio
        try:
            audio = clip.load(sample_rate)
        except AudioError as e:
            if disk:
                disk.put_error(key, e.reason)
            raise
        if disk:
            try:
                disk.put(key, audio)
            except OSError:  # a full or read-only cache disk: the clip is still good, only not cached
                pass
        return audio

    def decode(i):
        clip = clips[int(i)]
        try:
            audio = load(clip)
        except AudioError as e:
            log.skip(clip.name, e.reason)
            return np.zeros(0, np.float32)
        except Exception as e:  # never let one file end the run
            log.skip(clip.name, f"cannot decode ({type(e).__name__}: {e})")
            return np.zeros(0, np.float32)
        if not np.all(np.isfinite(audio)):
            log.skip(clip.name, "contains NaN or infinite samples")
            return np.zeros(0, np.float32)
        if not np.any(audio):
            log.skip(clip.name, "is silent (all samples are zero)")
            return np.zeros(0, np.float32)
        if len(audio) < window_samples:
            log.pad(clip.name)
            audio = np.pad(audio, (0, window_samples - len(audio)))
        return audio.astype(np.float32, copy=False)

    return decode


def clip_audio(clips, sample_rate: int, window_samples: int, log: SkipLog, *, cache=True, indices=None,
               shuffle_seed: Optional[int] = None, reshuffle: bool = False):
    """Dataset of ``(audio[samples], clip_index)`` for the decodable clips, in clip order.

    ``cache``: ``True``/``"memory"`` keeps decoded audio in memory after the first pass (later epochs do not
    decode again); a directory path keeps it on disk as ``.npy`` per clip (:class:`AudioCache`: for datasets
    larger than memory, and reused by later runs and by evaluation); ``False``/``None`` decodes every time;
    ``"auto"`` is memory when the decoded audio fits comfortably, else a disk cache
    (:func:`~genrenet.data.memory.choose_cache`).

    ``indices`` (default: every clip) are the clips to give; with ``shuffle_seed`` they are shuffled *before*
    decoding, so that no shuffle buffer ever holds decoded audio (what keeps memory flat under a disk cache).
    """
    cache, _ = choose_cache(cache, clips, sample_rate)
    memory = cache is True or cache == "memory"
    decode = _decoder(clips, sample_rate, window_samples, log,
                      cache_dir=None if memory or not cache else cache)

    def load(i):
        audio = tf.numpy_function(decode, [i], tf.float32, stateful=False)
        return tf.ensure_shape(audio, [None]), i

    order = np.arange(len(clips), dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    ds = tf.data.Dataset.from_tensor_slices(order)
    if shuffle_seed is not None:
        ds = ds.shuffle(max(1, len(clips)), seed=shuffle_seed, reshuffle_each_iteration=reshuffle)
    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda audio, i: tf.size(audio) > 0)
    if memory:
        ds = ds.cache()
    return ds


def one_hot_labels(clips, labels):
    """[N, C] one-hot targets of ``clips`` in the order of ``labels``; a clip with an unknown label is an error."""
    index = {name: i for i, name in enumerate(labels)}
    missing = sorted({c.label for c in clips} - set(index))
    if missing:
        raise DatasetError(f"labels {missing} are not among the model's classes {list(labels)}")
    return tf.one_hot([index[c.label] for c in clips], len(labels), dtype=tf.float32)


def epoch_seeds(seed: int, epoch: int) -> tuple:
    """Four op seeds that are a pure function of ``(seed, epoch)``, so a resumed run sees the same data."""
    return tuple(int(x) for x in np.random.SeedSequence([seed, epoch]).generate_state(4) % (2 ** 31 - 1))


def _num_crops(length, window_samples: int, crops_per_clip: Optional[int], hop_samples: Optional[int] = None,
               crop: Optional[int] = None):
    """Windows one clip gives per epoch: ``crops_per_clip``, ``round(L / W)`` random crops, or with
    ``hop_samples`` every fixed window of ``crop`` samples."""
    if hop_samples:
        return 1 + tf.maximum(0, length - (crop or window_samples)) // hop_samples
    if crops_per_clip:
        return tf.constant(crops_per_clip, tf.int32)
    return tf.maximum(1, tf.cast(tf.round(length / window_samples), tf.int32))


def resolve_augment(augment, batch_augment, window_samples: int, sample_rate: int):
    """``(window_fn, crop_samples, batch_fn)`` from names / a dict / an Augment, or a plain callable
    ``augment(waveform, label, seed)``. Stretch and pitch need crops longer than the window."""
    from .augment import Augment

    if callable(augment) and not isinstance(augment, Augment):
        return augment, window_samples, batch_augment
    aug = Augment.resolve(augment)
    return (aug.waveform_fn(window_samples, sample_rate), aug.input_samples(window_samples),
            batch_augment or aug.batch_fn())


def epoch_batches(clip_ds, targets, seeds, *, num_clips: int, window_samples: int, batch_size: int,
                   crops_per_clip: Optional[int], augment: Optional[Callable], batch_augment: Optional[Callable],
                   crop: Optional[int] = None, hop_samples: Optional[int] = None, reshuffle: bool = False,
                   drop_remainder: bool = False, shuffled: bool = False):
    """One epoch of training batches. Its order, crops and augmentation depend only on ``seeds`` (and TF's global
    seed), unless ``reshuffle``: then every iteration of the dataset draws a new epoch. ``shuffled``: the clips
    of ``clip_ds`` already come in the epoch's order (shuffled with ``seeds[0]`` before decoding)."""
    shuffle_clips, shuffle_windows, crop_seed, augment_seed = seeds
    w, crop = window_samples, crop or window_samples

    def stream(s):  # per-element seed pairs for stateless random ops
        return tf.data.Dataset.random(seed=s, rerandomize_each_iteration=reshuffle).batch(2)

    def crops(item, rng_seed):
        audio, i = item
        audio = tf.pad(audio, [[0, tf.maximum(0, crop - tf.shape(audio)[0])]])  # crops longer than a window
        length = tf.shape(audio)[0]
        n = _num_crops(length, w, crops_per_clip, hop_samples, crop)
        if hop_samples:
            windows = tf.signal.frame(audio, crop, hop_samples, pad_end=False)
        else:
            offsets = tf.random.stateless_uniform([n], seed=rng_seed, minval=0, maxval=length - crop + 1,
                                                  dtype=tf.int32)
            windows = tf.gather(audio, offsets[:, None] + tf.range(crop)[None, :])
        return tf.data.Dataset.from_tensor_slices((windows, tf.repeat(targets[i][None], n, axis=0)))

    ds = clip_ds if shuffled else clip_ds.shuffle(max(1, num_clips), seed=shuffle_clips,
                                                  reshuffle_each_iteration=reshuffle)
    ds = tf.data.Dataset.zip((ds, stream(crop_seed))).flat_map(crops)
    ds = ds.shuffle(1024, seed=shuffle_windows, reshuffle_each_iteration=reshuffle)
    if augment is not None:
        ds = tf.data.Dataset.zip((ds, stream(augment_seed)))
        ds = ds.map(lambda item, s: augment(item[0], item[1], s), num_parallel_calls=AUTOTUNE, deterministic=True)
    elif crop != w:
        ds = ds.map(lambda x, y: (x[:w], y))
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if batch_augment is not None:
        ds = tf.data.Dataset.zip((ds, stream(augment_seed + 1)))
        ds = ds.map(lambda item, s: batch_augment(item[0], item[1], s), num_parallel_calls=AUTOTUNE,
                    deterministic=True)
    return ds


def training_dataset(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32,
                     seed: int = 0, crops_per_clip: Optional[int] = None, augment=None,
                     batch_augment: Optional[Callable] = None, cache=True, log: Optional[SkipLog] = None,
                     hop_samples: Optional[int] = None, epoch: Optional[int] = None):
    """Batches of ``(waveform[B, W], one_hot[B, C])``, shuffled, from fresh windows every epoch.

    Windows: by default random crops, drawn afresh every epoch; a clip of length L gives ``crops_per_clip``
    crops (default ``round(L / W)``, so every second of audio is seen about once per epoch). With
    ``hop_samples`` every epoch uses the same fixed windows ``[k·hop, k·hop + W)`` instead.

    ``augment``: names / a dict / an :class:`~genrenet.data.augment.Augment` (waveform techniques run per
    window, ``mixup`` per batch; ``specaugment`` lives in the model and is ignored here), or a callable
    ``augment(waveform, label, seed) -> (waveform, label)`` run per window. ``batch_augment(x, y, seed)`` runs
    per batch. All random choices are stateless ops seeded from ``seed``. Without ``epoch`` every iteration
    draws a new epoch; with it, the batches are exactly those of that epoch (see :func:`training_epochs`,
    which gives all epochs of a run). ``cache``: see :func:`clip_audio`.
    """
    log = log or SkipLog()
    window_fn, crop, batch_fn = resolve_augment(augment, batch_augment, window_samples, sample_rate)
    targets = one_hot_labels(clips, labels)
    seeds = epoch_seeds(seed, 0 if epoch is None else epoch)
    cache, _ = choose_cache(cache, clips, sample_rate)
    streamed = not (cache is True or cache == "memory")  # shuffle clip indices, not decoded audio
    clip_ds = clip_audio(clips, sample_rate, window_samples, log, cache=cache,
                         shuffle_seed=seeds[0] if streamed else None, reshuffle=epoch is None)
    ds = epoch_batches(clip_ds, targets, seeds, num_clips=len(clips), window_samples=window_samples,
                        batch_size=batch_size, crops_per_clip=crops_per_clip, augment=window_fn,
                        batch_augment=batch_fn, crop=crop, hop_samples=hop_samples, reshuffle=epoch is None,
                        shuffled=streamed)
    return ds.prefetch(AUTOTUNE)


def concatenate(parts):
    """Concatenate datasets as a balanced tree (depth log2(n), not n)."""
    while len(parts) > 1:
        parts = [parts[i].concatenate(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def training_epochs(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32, seed: int = 0,
                    initial_epoch: int = 0, epochs: int, crops_per_clip: Optional[int] = None,
                    augment=None, batch_augment: Optional[Callable] = None, cache=True,
                    log: Optional[SkipLog] = None, drop_remainder: bool = False, hop_samples: Optional[int] = None,
                    agree_steps: Optional[Callable[[int], int]] = None):
    """``(dataset, steps_per_epoch)``: the batches of epochs ``initial_epoch .. epochs-1`` in one stream.

    Epoch ``e`` is a pure function of ``(seed, e)`` (not of how many epochs this process has run), so a run
    resumed at an epoch boundary sees exactly the data of an uninterrupted one. Counting the windows of an
    epoch decodes every clip once (which fills the cache). ``drop_remainder`` leaves out each epoch's last
    partial batch (distributed training: a replica with an empty batch would make the loss NaN).
    ``agree_steps(steps)`` returns the batches every epoch is cut to: workers that each read their own part of
    the data agree on the fewest any of them has, so that they all take the same steps.
    """
    log = log or SkipLog()
    cache, _ = choose_cache(cache, clips, sample_rate)
    window_fn, crop, batch_fn = resolve_augment(augment, batch_augment, window_samples, sample_rate)
    targets = one_hot_labels(clips, labels)
    clip_ds = clip_audio(clips, sample_rate, window_samples, log, cache=cache)
    counts = clip_ds.map(lambda audio, i: _num_crops(tf.maximum(tf.shape(audio)[0], crop), window_samples,
                                                     crops_per_clip, hop_samples, crop))
    windows = int(counts.reduce(tf.constant(0, tf.int32), lambda a, b: a + b))
    steps = windows // batch_size if drop_remainder else -(-windows // batch_size)
    if windows == 0:
        raise DatasetError("no usable training audio: all training files were skipped")
    if steps == 0:
        raise DatasetError(f"one epoch has {windows} training windows, fewer than one batch of {batch_size}")
    steps = agree_steps(steps) if agree_steps else steps

    streamed = not (cache is True or cache == "memory")
    usable = usable_indices(clips, log)

    def epoch_ds(e):
        seeds = epoch_seeds(seed, e)
        # Streamed from disk (or decoded again): the usable clips' indices are shuffled before decoding, into
        # the order the memory cache's shuffle of the same clips gives, so memory stays flat.
        source = clip_audio(clips, sample_rate, window_samples, log, cache=cache, indices=usable,
                            shuffle_seed=seeds[0]) if streamed else clip_ds
        return epoch_batches(source, targets, seeds, num_clips=len(clips), window_samples=window_samples,
                              batch_size=batch_size, crops_per_clip=crops_per_clip, augment=window_fn,
                              batch_augment=batch_fn, crop=crop, hop_samples=hop_samples,
                              drop_remainder=drop_remainder, shuffled=streamed).take(steps)

    parts = [epoch_ds(e) for e in range(initial_epoch, epochs)] or [epoch_ds(0).take(0)]
    return concatenate(parts).prefetch(AUTOTUNE), steps


def usable_indices(clips, log: SkipLog) -> list:
    """Indices of the clips not (yet) skipped in ``log``: after a first decoding pass, the clips an epoch has."""
    return [i for i, c in enumerate(clips) if c.name not in log.skipped]


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

    return ds.flat_map(windows).batch(batch_size).prefetch(AUTOTUNE).with_options(_STEADY)


def validation_dataset(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32,
                       log: Optional[SkipLog] = None, cache=True):
    """Fixed, non-overlapping windows with one-hot labels, never augmented: the same windows every epoch.

    ``cache=True`` keeps the windows in memory; a directory keeps decoded audio there instead (for
    validation sets larger than memory)."""
    targets = one_hot_labels(clips, labels)
    cache, _ = choose_cache(cache, clips, sample_rate)
    memory = cache is True or cache == "memory"
    ds = window_dataset(clips, sample_rate=sample_rate, window_samples=window_samples, batch_size=batch_size,
                        log=log, cache=False if memory else cache).unbatch()
    ds = ds.map(lambda w, i: (w, tf.gather(targets, i))).batch(batch_size)
    return (ds.cache() if memory else ds).prefetch(AUTOTUNE)


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
        on_disk = clip.path and clip.audio is None
        chunks = stream_audio(clip.path, sample_rate, block_seconds=block_seconds) if on_disk else [
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
