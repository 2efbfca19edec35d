"""Clips into tf.data: decode (soundfile, ``tf.numpy_function``) → resample → cache, for training and inference.

Files that fail to decode, are silent or hold non-finite samples are skipped and logged (never the end of a
run); clips shorter than a window are zero-padded and logged. Training checks its clips here first
(:func:`trainable_clips`), so that what it cannot learn from is known before a model is built.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
import tensorflow as tf

from .audio import AudioError
from .cache import CachePolicy
from .memory import AudioCache, cache_key
from .skips import NotMusic, SkipLog
from .sources.base import format_seconds

AUTOTUNE = tf.data.AUTOTUNE
# Training needs at least this much real audio per clip: shorter clips would be mostly padding.
MIN_TRAINING_SECONDS = 1.0
# Audio quieter than this RMS (-60 dBFS) is near-silent: nothing to learn from or classify.
SILENCE_RMS = 1e-3
RESAMPLING_SLACK = 0.01  # seconds: a 1-s file resampled may come out a few samples short
CHECK_THREADS = 4  # decoding releases the GIL: a few threads overlap it


def cached_loader(sample_rate: int, cache_dir: Optional[str]):
    """``load(clip) -> audio``: decode and resample, through the disk cache in ``cache_dir`` when there is one
    (a failure is remembered there too, so later epochs and runs do not decode the file again)."""
    disk = AudioCache(cache_dir) if cache_dir else None

    def load(clip):
        if disk is None:
            return clip.load(sample_rate)
        key = cache_key(clip, sample_rate)
        audio, reason = disk.get(key)
        if reason is not None:
            raise AudioError(clip.name, reason)
        if audio is not None:
            return audio
        try:
            audio = clip.load(sample_rate)
        except AudioError as e:
            disk.put_error(key, e.reason)
            raise
        try:
            disk.put(key, audio)
        except OSError:  # a full or read-only cache disk: the clip is still good, only not cached
            pass
        return audio

    return load


def usable_audio(clip, load, window_samples: int, log: SkipLog) -> np.ndarray:
    """The clip's audio, zero-padded to one window if shorter; an empty array (and a reason in ``log``) when it
    cannot be used."""
    try:
        audio = load(clip)
    except AudioError as e:
        log.skip(clip.name, e.reason)
        return np.zeros(0, np.float32)
    except Exception as e:  # never let one file end the run
        log.skip(clip.name, f"cannot decode ({type(e).__name__}: {e})")
        return np.zeros(0, np.float32)
    reason = silence_reason(audio)
    if reason:
        log.skip(clip.name, reason)
        return np.zeros(0, np.float32)
    if len(audio) < window_samples:
        log.pad(clip.name)
        audio = np.pad(audio, (0, window_samples - len(audio)))
    return audio.astype(np.float32, copy=False)


def silence_reason(audio: np.ndarray):
    """Why decoded ``audio`` holds nothing to learn from or classify (NaN/Inf samples, silent, or near-silent:
    RMS below :data:`SILENCE_RMS`), or None."""
    if not np.all(np.isfinite(audio)):
        return NotMusic("contains NaN or infinite samples")
    if not np.any(audio):
        return NotMusic("is silent (all samples are zero)")
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms < SILENCE_RMS:
        return NotMusic(f"is near-silent (RMS {20 * np.log10(rms):.0f} dBFS, below "
                        f"{20 * np.log10(SILENCE_RMS):.0f} dBFS)")
    return None


def too_short_reason(seconds: float, min_seconds: float = MIN_TRAINING_SECONDS):
    """Why a clip of ``seconds`` is too short to learn from or classify (less than ``min_seconds``), or None."""
    if seconds >= min_seconds - RESAMPLING_SLACK:
        return None
    return NotMusic(f"too short ({format_seconds(seconds)} s; at least {min_seconds:g} s)")


def clip_audio(clips, sample_rate: int, window_samples: int, log: SkipLog, *, cache, indices=None,
               shuffle_seed: Optional[int] = None):
    """Dataset of ``(audio[samples], clip_index)`` for the decodable clips, in clip order.

    ``cache`` (a :class:`~genrenet.data.cache.CachePolicy` or its setting, resolved): ``memory`` keeps decoded
    audio in memory after the first pass (later epochs do not decode again); a directory keeps it on disk as
    ``.npy`` per clip (:class:`~genrenet.data.memory.AudioCache`: for datasets larger than memory, and reused by
    later runs and by evaluation); ``none`` decodes every time.

    ``indices`` (default: every clip) are the clips to give; with ``shuffle_seed`` they are shuffled *before*
    decoding, so that no shuffle buffer ever holds decoded audio (what keeps memory flat under a disk cache).
    """
    policy = CachePolicy.of(cache).require_resolved()
    load = cached_loader(sample_rate, policy.directory)

    def decode(i):
        return usable_audio(clips[int(i)], load, window_samples, log)

    def tf_load(i):
        audio = tf.numpy_function(decode, [i], tf.float32, stateful=False)
        return tf.ensure_shape(audio, [None]), i

    order = np.arange(len(clips), dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    ds = tf.data.Dataset.from_tensor_slices(order)
    if shuffle_seed is not None:
        ds = ds.shuffle(max(1, len(clips)), seed=shuffle_seed, reshuffle_each_iteration=False)
    ds = ds.map(tf_load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda audio, i: tf.size(audio) > 0)
    return ds.cache() if policy.memory and not held_in_memory(clips, sample_rate) else ds


def held_in_memory(clips, sample_rate: int) -> bool:
    """Whether every clip already holds its audio at ``sample_rate``: such clips need no memory cache (a cache
    would be a second copy of the same audio)."""
    return all(c.audio is not None and c.sample_rate == sample_rate for c in clips)


def trainable_clips(clips, sample_rate: int, log: SkipLog, *, cache,
                    min_seconds: float = MIN_TRAINING_SECONDS) -> list:
    """The clips that decode to usable audio of at least ``min_seconds``; the others are skipped in ``log``
    with their reason. Known before a model is built, so a class that loses every clip can be left out.

    Each clip is decoded once: under a memory ``cache`` the clips come back holding their decoded audio (that
    is the memory cache, see :func:`held_in_memory`); under a disk cache the audio decoded here is what the
    epochs read back; with no cache the epochs decode again, as that setting asks."""
    policy = CachePolicy.of(cache)
    load = cached_loader(sample_rate, policy.directory)

    def usable(clip):
        audio = usable_audio(clip, load, 0, log)
        if audio.size == 0:
            return None
        reason = too_short_reason(audio.size / sample_rate, min_seconds)
        if reason:
            log.skip(clip.name, reason)
            return None
        return dataclasses.replace(clip, audio=audio, sample_rate=sample_rate) if policy.memory else clip

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        return [clip for clip in pool.map(usable, clips) if clip is not None]
