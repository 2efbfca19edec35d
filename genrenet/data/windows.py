"""Inference windows: where a clip's windows start, and the batches of windows evaluate, predict and embed run on.

One rule everywhere (the tf.data windows here, the streamed windows of long files, and the in-graph windows of
exported SavedModels): a clip of L samples gives windows starting at ``0, hop, 2·hop, …`` while a whole window
fits, ``1 + (L - W) // hop`` of them; audio after the last whole window is left out, and a clip shorter than one
window gives one window, zero-padded.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from .audio import AudioError, stream_audio
from .decoding import AUTOTUNE, clip_audio
from .skips import NotMusic, SkipLog


def steady_options() -> tf.data.Options:
    """tf.data options of inference pipelines: the autotuner off. On a 2-core CPU, with the model taking both
    cores, the autotuner stalled about every second pass over 100 files by ~1.3 s (lstm predict: 1.3 s or 2.6 s
    per pass; with it off, 1.2-1.5 s every time; measured with benchmarks.predict, Dec 2026)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def window_count(length, window_samples: int, hop_samples: int):
    """Windows a clip of ``length`` samples gives: ``1 + max(0, length - W) // hop``. Works on Python ints,
    NumPy arrays and TF integer tensors alike (``(d + |d|) / 2`` is ``max(0, d)``), so every cutter shares it."""
    over = length - window_samples
    return 1 + (over + abs(over)) // (2 * hop_samples)


def frame_windows(audio, window_samples: int, hop_samples: int):
    """The windows of ``audio [..., L]`` (TF ops): ``[..., n, W]``, n = :func:`window_count` of L; audio shorter
    than a window is zero-padded to one."""
    audio = tf.convert_to_tensor(audio)
    length = tf.shape(audio)[-1]
    audio = tf.pad(audio, [[0, 0]] * (audio.shape.rank - 1) + [[0, tf.maximum(0, window_samples - length)]])
    starts = tf.range(window_count(length, window_samples, hop_samples)) * hop_samples
    return tf.gather(audio, starts[:, None] + tf.range(window_samples)[None, :], axis=-1)


def frame_array(audio: np.ndarray, window_samples: int, hop_samples: int) -> np.ndarray:
    """:func:`frame_windows` in NumPy, for one clip ``[L]`` → ``[n, W]`` (no TensorFlow in the loop)."""
    audio = np.pad(audio, (0, max(0, window_samples - audio.size)))
    starts = np.arange(window_count(audio.size, window_samples, hop_samples)) * hop_samples
    return audio[starts[:, None] + np.arange(window_samples)[None, :]]


def window_dataset(clips, *, sample_rate: int, window_samples: int, hop_samples: Optional[int] = None,
                   batch_size: int = 32, cache="none", log: Optional[SkipLog] = None):
    """Batches of ``(waveform[B, W], clip_index[B])`` over every window of every clip, in clip order.
    ``cache``: see :func:`~genrenet.data.decoding.clip_audio`."""
    log = log or SkipLog()
    hop = hop_samples or window_samples
    ds = clip_audio(clips, sample_rate, window_samples, log, cache=cache)

    def windows(audio, i):
        w = frame_windows(audio, window_samples, hop)
        return tf.data.Dataset.from_tensor_slices((w, tf.fill([tf.shape(w)[0]], i)))

    return ds.flat_map(windows).batch(batch_size).prefetch(AUTOTUNE).with_options(steady_options())


def streamed_clip_windows(clip, log: SkipLog, *, sample_rate: int, window_samples: int, hop_samples: int,
                          block_seconds: float):
    """Yield ``windows [n, W]`` of one clip, decoded block by block (only a block and less than a window are
    held); raises :class:`AudioError` for a clip without audio or a silent one."""
    w, hop = window_samples, hop_samples
    on_disk = clip.path and clip.audio is None
    chunks = stream_audio(clip.path, sample_rate, block_seconds=block_seconds) if on_disk else [
        clip.load(sample_rate)]
    buf, total, audible = np.zeros(0, np.float32), 0, False
    for chunk in chunks:
        audible = audible or bool(np.any(chunk))
        total += chunk.size
        buf = np.concatenate([buf, chunk])
        if buf.size >= w:
            windows = frame_array(buf, w, hop)
            yield windows
            buf = buf[len(windows) * hop:]
    if total == 0:
        raise AudioError(clip.name, "contains no audio after resampling")
    if not audible:
        raise AudioError(clip.name, NotMusic("is silent (all samples are zero)"))
    if total < w:
        log.pad(clip.name)
        yield frame_array(buf, w, hop)


def streamed_window_batches(clips, *, sample_rate: int, window_samples: int, hop_samples: Optional[int] = None,
                            batch_size: int = 32, log: Optional[SkipLog] = None, block_seconds: float = 20.0):
    """Like :func:`window_dataset` (NumPy batches of ``(windows[B, W], clip_index[B])``, the same windows), but
    files are decoded block by block, so memory does not grow with a file's length (hours of audio).

    A clip that turns out unusable part-way (or silent) is recorded in ``log.skipped``; its windows may already
    have been yielded, so consumers drop the results of skipped clips.
    """
    log = log or SkipLog()
    options = dict(sample_rate=sample_rate, window_samples=window_samples,
                   hop_samples=hop_samples or window_samples, block_seconds=block_seconds)
    pending_x, pending_i = [], []
    for index, clip in enumerate(clips):
        try:
            for windows in streamed_clip_windows(clip, log, **options):
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
