"""The training pipeline: decoded clips → random crops (or fixed windows) → shuffle → batch → augment.

Training takes fresh random crops of every clip each epoch; epoch ``e`` is a pure function of ``(seed, e)``, so
a resumed run sees exactly the data of an uninterrupted one. One :class:`TrainingSpec` (plain values) describes
the batches; :func:`training_epochs` builds them here, and :mod:`genrenet.data.service` builds the very same
epochs from it on tf.data service workers (it splits each epoch between batching and augmentation). Validation
uses fixed, non-overlapping windows, never augmented.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from ..errors import DatasetError
from .augment import Augment
from .cache import CachePolicy
from .decoding import AUTOTUNE, clip_audio, held_in_memory
from .skips import SkipLog
from .windows import window_dataset

WINDOW_SHUFFLE = 1024  # windows in the shuffle buffer after cropping


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """Everything that decides a run's training batches except the clips: labels, window, crops, batch,
    augmentation, seed and the resolved cache. Plain values, so that one spec builds the local
    pipeline and the tf.data service's alike."""

    labels: tuple
    sample_rate: int
    window_samples: int
    batch_size: int = 32
    seed: int = 0
    crops_per_clip: Optional[int] = None
    hop_samples: Optional[int] = None
    """Fixed windows ``[k·hop, k·hop + crop)`` every epoch instead of random crops."""
    augment: dict = dataclasses.field(default_factory=dict)
    """Names, a dict or an :class:`~genrenet.data.augment.Augment`; kept as its resolved dict."""
    drop_remainder: bool = False
    """Leave out each epoch's last partial batch (distributed training: an empty replica batch makes NaN)."""
    cache: CachePolicy = CachePolicy("memory")

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "augment", Augment.resolve(self.augment).to_dict())
        object.__setattr__(self, "cache", CachePolicy.of(self.cache).require_resolved())

    def replace(self, **changes) -> "TrainingSpec":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    @property
    def crop_samples(self) -> int:
        """Samples of each crop: one window, or more when stretch/pitch need room."""
        return Augment.resolve(self.augment).input_samples(self.window_samples)

    def targets(self, clips):
        """[N, C] targets of ``clips`` (:func:`label_targets`)."""
        return tf.constant(label_targets(clips, self.labels))


def label_targets(clips, labels) -> np.ndarray:
    """[N, C] float32 targets of ``clips`` in the order of ``labels``: one-hot for a clip with one label,
    multi-hot (a 1 for each of its ``tags``) for a multi-label clip. A clip with an unknown label is an error."""
    index = {name: i for i, name in enumerate(labels)}
    missing = sorted({l for c in clips for l in c.all_labels} - set(index))
    if missing:
        raise DatasetError(f"labels {missing} are not among the model's classes {list(labels)}")
    targets = np.zeros((len(clips), len(labels)), np.float32)
    for row, clip in enumerate(clips):
        targets[row, [index[l] for l in clip.all_labels]] = 1.0
    return targets


def epoch_seeds(seed: int, epoch: int) -> tuple:
    """Four op seeds that are a pure function of ``(seed, epoch)``, so a resumed run sees the same data."""
    return tuple(int(x) for x in np.random.SeedSequence([seed, epoch]).generate_state(4) % (2 ** 31 - 1))


def crops_per_epoch(spec: TrainingSpec, length):
    """Windows a clip of ``length`` samples gives per epoch: ``crops_per_clip``, ``round(L / W)`` random crops,
    or with ``hop_samples`` every fixed window of :attr:`~TrainingSpec.crop_samples` samples."""
    crop = spec.crop_samples
    length = tf.maximum(length, crop)
    if spec.hop_samples:
        return 1 + (length - crop) // spec.hop_samples
    if spec.crops_per_clip:
        return tf.constant(spec.crops_per_clip, tf.int32)
    return tf.maximum(1, tf.cast(tf.round(length / spec.window_samples), tf.int32))


def seed_pairs(seed: int):
    """Per-element seed pairs for stateless random ops, a pure function of ``seed``."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=False).batch(2)


def epoch_crops(spec: TrainingSpec, clip_ds, targets, seeds, *, shuffled: bool):
    """``(crop[crop_samples], target)`` of one epoch, shuffled. ``shuffled``: ``clip_ds`` already gives the
    clips in the epoch's order (shuffled with ``seeds[0]`` before decoding), else it is shuffled here."""
    shuffle_clips, shuffle_windows, crop_seed, _ = seeds
    crop = spec.crop_samples

    def crops(item, rng_seed):
        audio, i = item
        audio = tf.pad(audio, [[0, tf.maximum(0, crop - tf.shape(audio)[0])]])  # crops longer than a window
        length = tf.shape(audio)[0]
        n = crops_per_epoch(spec, length)
        if spec.hop_samples:
            windows = tf.signal.frame(audio, crop, spec.hop_samples, pad_end=False)
        else:
            offsets = tf.random.stateless_uniform([n], seed=rng_seed, minval=0, maxval=length - crop + 1,
                                                  dtype=tf.int32)
            windows = tf.gather(audio, offsets[:, None] + tf.range(crop)[None, :])
        return tf.data.Dataset.from_tensor_slices((windows, tf.repeat(targets[i][None], n, axis=0)))

    ds = clip_ds if shuffled else clip_ds.shuffle(max(1, int(targets.shape[0])), seed=shuffle_clips,
                                                  reshuffle_each_iteration=False)
    ds = tf.data.Dataset.zip((ds, seed_pairs(crop_seed))).flat_map(crops)
    return ds.shuffle(WINDOW_SHUFFLE, seed=shuffle_windows, reshuffle_each_iteration=False)


def finisher(spec: TrainingSpec) -> Optional[Callable]:
    """``finish(batch, window_seeds, batch_seed) -> (x[B, W], y)``: waveform augmentation of every window (or
    the cut of longer crops to a window), then mixup; None when there is nothing to do."""
    aug = Augment.resolve(spec.augment)
    window_fn, batch_fn = aug.waveform_fn(spec.window_samples, spec.sample_rate), aug.batch_fn()
    w = spec.window_samples
    if window_fn is None and batch_fn is None and spec.crop_samples == w:
        return None

    def finish(batch, window_seeds, batch_seed):
        x, y = batch
        if window_fn is not None:
            signature = (tf.TensorSpec([w], tf.float32), tf.TensorSpec(y.shape[1:], y.dtype))
            x, y = tf.map_fn(lambda t: window_fn(*t), (x, y, window_seeds[:tf.shape(x)[0]]),
                             fn_output_signature=signature)
        else:
            x = x[:, :w]
        if batch_fn is not None:
            x, y = batch_fn(x, y, batch_seed)
        return x, y

    return finish


def epoch_stream(spec: TrainingSpec, clip_ds, targets, epoch: int, *, shuffled: bool,
                 split: Optional[Callable] = None):
    """The batches of ``epoch`` from the decoded clips ``clip_ds``. Augmentation runs per batch, after the
    optional ``split(dataset)`` (the tf.data service shards there: each worker augments its own batches)."""
    seeds = epoch_seeds(spec.seed, epoch)
    b = spec.batch_size
    split = split or (lambda ds: ds)
    ds = epoch_crops(spec, clip_ds, targets, seeds, shuffled=shuffled).batch(b, drop_remainder=spec.drop_remainder)
    finish = finisher(spec)
    if finish is None:
        return split(ds)
    ds = tf.data.Dataset.zip((ds, seed_pairs(seeds[3]).batch(b), seed_pairs(seeds[3] + 1)))
    return split(ds).map(finish, num_parallel_calls=AUTOTUNE, deterministic=True)


def concatenate(parts):
    """Concatenate datasets as a balanced tree (depth log2(n), not n)."""
    while len(parts) > 1:
        parts = [parts[i].concatenate(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def usable_indices(clips, log: SkipLog) -> list:
    """Indices of the clips not (yet) skipped in ``log``: after a first decoding pass, the clips an epoch has."""
    return [i for i, c in enumerate(clips) if c.name not in log.skipped]


def steps_per_epoch(clips, spec: TrainingSpec, log: SkipLog, agree_steps: Optional[Callable] = None):
    """``(steps, decoded clips)``: batches in one epoch, counted by decoding every clip once (which fills the
    cache). ``agree_steps(steps)`` returns the batches every epoch is cut to: workers that each read their own
    part of the data agree on the fewest any of them has, so that they all take the same steps."""
    clip_ds = clip_audio(clips, spec.sample_rate, spec.window_samples, log, cache=spec.cache)
    counts = clip_ds.map(lambda audio, i: crops_per_epoch(spec, tf.shape(audio)[0]))
    windows = int(counts.reduce(tf.constant(0, tf.int32), lambda a, b: a + b))
    b = spec.batch_size
    steps = windows // b if spec.drop_remainder else -(-windows // b)
    if windows == 0:
        raise DatasetError("no usable training audio: all training files were skipped")
    if steps == 0:
        raise DatasetError(f"one epoch has {windows} training windows, fewer than one batch of {b}")
    return (agree_steps(steps) if agree_steps else steps), clip_ds


def training_epochs(clips, spec: TrainingSpec, *, epochs: int, initial_epoch: int = 0,
                    log: Optional[SkipLog] = None, agree_steps: Optional[Callable[[int], int]] = None):
    """``(dataset, steps_per_epoch)``: batches ``(waveform[B, W], one_hot[B, C])`` of epochs
    ``initial_epoch .. epochs-1`` in one stream, every epoch cut to ``steps_per_epoch`` batches.

    Windows: random crops drawn afresh every epoch; a clip of length L gives ``crops_per_clip`` crops (default
    ``round(L / W)``, so every second of audio is seen about once per epoch). Augmentation: waveform techniques
    per window, ``mixup`` per batch (``specaugment`` lives in the model); all random choices are stateless ops
    seeded from ``(seed, epoch)``.
    """
    log = log if log is not None else SkipLog()
    steps, decoded = steps_per_epoch(clips, spec, log, agree_steps)
    targets = spec.targets(clips)
    usable = usable_indices(clips, log)

    def epoch_ds(e):
        if spec.cache.memory:
            return epoch_stream(spec, decoded, targets, e, shuffled=False).take(steps)
        # Streamed from disk (or decoded again): the usable clips' indices are shuffled before decoding, into
        # the order the memory cache's shuffle of the same clips gives, so memory stays flat.
        source = clip_audio(clips, spec.sample_rate, spec.window_samples, log, cache=spec.cache, indices=usable,
                            shuffle_seed=epoch_seeds(spec.seed, e)[0])
        return epoch_stream(spec, source, targets, e, shuffled=True).take(steps)

    parts = [epoch_ds(e) for e in range(initial_epoch, epochs)] or [epoch_ds(0).take(0)]
    return concatenate(parts).prefetch(AUTOTUNE), steps


def validation_dataset(clips, labels, *, sample_rate: int, window_samples: int, batch_size: int = 32,
                       log: Optional[SkipLog] = None, cache="memory"):
    """Fixed, non-overlapping windows with their targets (:func:`label_targets`), never augmented: the same windows every epoch.

    ``cache="memory"`` keeps the windows in memory; a directory keeps decoded audio there instead (for
    validation sets larger than memory)."""
    policy = CachePolicy.of(cache).require_resolved()
    targets = tf.constant(label_targets(clips, labels))
    ds = window_dataset(clips, sample_rate=sample_rate, window_samples=window_samples, batch_size=batch_size,
                        log=log, cache="none" if policy.memory else policy).unbatch()
    ds = ds.map(lambda w, i: (w, tf.gather(targets, i))).batch(batch_size)
    cached = policy.memory and not held_in_memory(clips, sample_rate)
    return (ds.cache() if cached else ds).prefetch(AUTOTUNE)
