"""The one inference loop under ``evaluate``, ``predict``, ``embed`` and the frozen-backbone features.

Clips (files or in-memory audio) are decoded and resampled in a tf.data pipeline, cut into windows, and the
windows of *many clips* are batched together for the model; a clip's result is the mean of its windows'
outputs. Memory does not grow with the number of clips, and files longer than :data:`STREAM_SECONDS` are
decoded block by block, so it does not grow with a file's length either. A clip that cannot be decoded has no
windows and is recorded, with the decoder's reason, in the :class:`~genrenet.data.SkipLog`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import weakref
from typing import Callable, Iterator, Optional

import numpy as np
import tensorflow as tf

from ..data import SkipLog, streamed_window_batches, window_dataset
from ..data.audio import read_header, unusable_path
from ..data.progress import Progress
from ..nn.frontend import fused_frontend

# Default audio per model call when classifying: 64 windows of 3 s. lstm predict is 14% faster at 64 windows than
# at 32 (cnn 8%, crnn_attention 6%; benchmarks.predict); models with long windows get fewer per call.
BATCH_AUDIO_SECONDS = 192.0
# XLA compiles the fused front-end in ~0.5 s per batch shape, which it wins back only over many windows (~3 ms per
# 30-s file for lstm, ~1 ms for cnn): jobs of fewer clips run the plain graph.
FUSE_MIN_CLIPS = 100
# Files longer than this are decoded block by block, so memory does not grow with their length.
STREAM_SECONDS = 600.0

_FORWARD = weakref.WeakKeyDictionary()  # model -> {fused: tf.function}; a cache, never a switch


def default_batch_size(window_samples: int, sample_rate: int) -> int:
    """Windows per model call when none is given: :data:`BATCH_AUDIO_SECONDS` of audio, 1 to 64 windows."""
    return int(max(1, min(64, round(BATCH_AUDIO_SECONDS * sample_rate / window_samples))))


def worth_fusing(num_clips: int) -> bool:
    """Whether a job over ``num_clips`` clips should run the fused front-end (:data:`FUSE_MIN_CLIPS`)."""
    return num_clips >= FUSE_MIN_CLIPS


def inference_function(model, fused: bool = True):
    """``model(x, training=False)`` as one ``tf.function`` per model, reused across calls: evaluating the same
    model many times (folds, epochs, many files) traces it once instead of warning about retracing. ``fused``
    traces the front-end fused (:func:`~genrenet.nn.fused_frontend`)."""
    functions = _FORWARD.setdefault(model, {})
    forward = functions.get(fused)
    if forward is None:
        ref = weakref.ref(model)  # the cache must not keep the model alive

        def forward(x):
            with fused_frontend(ref()) if fused else contextlib.nullcontext():
                return ref()(x, training=False)

        forward = functions[fused] = tf.function(forward, reduce_retracing=True)
    return forward


def model_forward(model, num_clips: int) -> Callable[[np.ndarray], np.ndarray]:
    """``windows [n, W] → outputs [n, D]`` (NumPy) for a Keras model, fused when ``num_clips`` makes it pay."""
    call = inference_function(model, fused=worth_fusing(num_clips))
    return lambda windows: call(tf.convert_to_tensor(windows)).numpy()


def clip_seconds(path) -> float:
    """Duration from the header (0 when unreadable: the decoder then reports why)."""
    if not path or unusable_path(path):  # never open a FIFO or device just to read a header: it may block forever
        return 0.0
    try:
        info = read_header(path)
        return info.frames / info.samplerate if info.samplerate > 0 else 0.0
    except Exception:
        return 0.0


def window_outputs(forward, clips, *, sample_rate: int, window_samples: int, hop_samples: Optional[int] = None,
                   batch_size: int = 32, log: Optional[SkipLog] = None, progress: Optional[Progress] = None,
                   stream: Optional[bool] = None) -> Iterator[tuple]:
    """Yield ``(outputs [n, D] float64, clip_index [n])`` for every batch of windows, in clip order.

    ``forward`` maps windows ``[n, W]`` float32 to outputs ``[n, D]``. ``stream`` decodes block by block
    (default: when a file is longer than :data:`STREAM_SECONDS`); a streamed clip found unusable part-way may
    already have yielded windows, so consumers drop the clips in ``log.skipped``.
    """
    log = log if log is not None else SkipLog()
    if stream is None:
        stream = any(clip_seconds(c.path) > STREAM_SECONDS for c in clips if c.path)
    make = streamed_window_batches if stream else window_dataset
    batches = make(clips, sample_rate=sample_rate, window_samples=window_samples, hop_samples=hop_samples,
                   batch_size=batch_size, log=log)
    for windows, index in batches:
        index = np.asarray(index)
        yield np.asarray(forward(np.asarray(windows, np.float32)), np.float64), index
        if progress is not None:
            progress.update(int(index.max()))  # clips before the last one in the batch are complete
    if progress is not None:
        progress.update(len(clips))


@dataclasses.dataclass
class ClipOutputs:
    """Per clip: the mean of its windows' outputs (NaN rows for clips without windows), the arg-max votes of its
    windows, and its number of windows."""

    mean: np.ndarray
    votes: np.ndarray
    counts: np.ndarray


def clip_outputs(forward, clips, *, num_outputs: int, log: Optional[SkipLog] = None, **window_options) -> ClipOutputs:
    """Run :func:`window_outputs` and aggregate per clip; a clip skipped part-way keeps no windows."""
    log = log if log is not None else SkipLog()
    sums = np.zeros((len(clips), num_outputs), np.float64)
    votes = np.zeros((len(clips), num_outputs), np.int64)
    counts = np.zeros(len(clips), np.int64)
    for outputs, index in window_outputs(forward, clips, log=log, **window_options):
        np.add.at(sums, index, outputs)
        np.add.at(votes, (index, outputs.argmax(1)), 1)
        np.add.at(counts, index, 1)
    bad = [i for i, c in enumerate(clips) if c.name in log.skipped]
    sums[bad], votes[bad], counts[bad] = 0, 0, 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, None]
    return ClipOutputs(mean, votes, counts)


def predict_clips(model, clips, *, sample_rate: int, window_samples: int, hop_samples: Optional[int] = None,
                  batch_size: int = 32, log: Optional[SkipLog] = None, verbose: int = 1, stream: Optional[bool] = None):
    """A Keras model's window outputs aggregated per clip: returns ``(mean [N, C], votes [N, C], windows [N])``.

    :data:`FUSE_MIN_CLIPS` or more clips run with the fused front-end; ``verbose`` shows progress on stderr (a
    bar on a terminal, a plain line every tenth elsewhere).
    """
    progress = Progress(len(clips), enabled=bool(verbose), label="inference", unit="clips")
    out = clip_outputs(model_forward(model, len(clips)), clips, num_outputs=int(model.output_shape[-1]),
                       sample_rate=sample_rate, window_samples=window_samples, hop_samples=hop_samples,
                       batch_size=batch_size, log=log, progress=progress, stream=stream)
    progress.close()
    return out.mean, out.votes, out.counts
