"""The log-mel front-end that lives inside every genrenet model.

It is written with tf.signal so that the same graph trains, evaluates and serves from raw audio, and the
spectrogram is computed on the accelerator when there is one. The numbers match librosa's
``melspectrogram`` + ``power_to_db`` (centred STFT, zero padding as in librosa >= 0.10, periodic Hann).
"""
from __future__ import annotations

import contextlib
import functools
import math
import weakref

import keras
import numpy as np
import tensorflow as tf

from ..features import FeatureConfig

@functools.lru_cache(maxsize=16)
def mel_filterbank(config: FeatureConfig) -> np.ndarray:
    """The [n_fft//2+1, n_mels] filterbank, built once with librosa (float32)."""
    import librosa

    fb = librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        htk=config.mel_scale == "htk",
        norm=config.mel_norm,
        dtype=np.float32,
    )
    return np.ascontiguousarray(fb.T)


def mel_bands(filterbank: np.ndarray, group_cost: int = 2048) -> list[tuple[int, int, int, int]]:
    """Split a [bins, mels] filterbank into contiguous groups of mel filters, each with its own bin range.

    Returns ``(bin_lo, bin_hi, mel_lo, mel_hi)`` per group: ``spec[..., bin_lo:bin_hi] @ fb[bin_lo:bin_hi,
    mel_lo:mel_hi]`` gives those mel bands exactly (every weight outside the range is zero). The grouping
    minimises ``sum(width * filters) + group_cost * groups`` by dynamic programming, so narrow low filters
    share a group and wide high filters get their own: the 128 x 1025 slaney bank (1.5% non-zero) becomes
    ~7 matmuls with ~12% of the dense multiply-adds. ``group_cost`` is the per-matmul overhead in
    multiply-adds per frame, measured on a 2-core CPU.
    """
    nz = filterbank != 0
    n_bins, n_mels = filterbank.shape
    lo = np.zeros(n_mels, np.int64)
    hi = np.zeros(n_mels, np.int64)
    for m in range(n_mels):
        rows = np.flatnonzero(nz[:, m])
        if rows.size:
            lo[m], hi[m] = rows[0], rows[-1] + 1
        else:  # an empty filter (too many mels for n_fft): costs nothing, outputs zeros
            lo[m] = hi[m] = lo[m - 1] if m else 0
    best = np.full(n_mels + 1, np.inf)
    best[0] = 0.0
    arg = np.zeros(n_mels + 1, np.int64)
    for j in range(1, n_mels + 1):
        for i in range(j):
            b_lo, b_hi = lo[i:j].min(), hi[i:j].max()
            cost = best[i] + max(0, b_hi - b_lo) * (j - i) + group_cost
            if cost < best[j]:
                best[j], arg[j] = cost, i
    groups, j = [], n_mels
    while j > 0:
        i = int(arg[j])
        b_lo, b_hi = int(lo[i:j].min()), int(hi[i:j].max())
        groups.append((b_lo, max(b_hi, b_lo), i, j))
        j = i
    return groups[::-1]


@contextlib.contextmanager
def fused_frontend(model: keras.Model):
    """While active, the :class:`LogMelSpectrogram` layers of ``model`` that are traced in graph mode compile
    their element-wise steps with XLA, leaving the RFFT and the model body to TensorFlow's own kernels.

    In graph mode every step (framing, window, re/im, squares, mel slices, dB) is a separate pass over
    tensors of up to 10 MB per clip; fused, the front-end is ~1.3x as fast and an ``lstm`` forward pass ~25%
    faster on a 2-core CPU (``benchmarks.frontend``), with the same numbers to ~3e-6 dB. genrenet's inference
    on 100+ clips (``evaluate``, ``predict``, frozen-backbone features: XLA's ~0.5 s compile needs many windows
    to pay off) traces inside this block; training does not (steps changed by -4% to +12%, within noise, so it
    keeps plain ops), and neither does export: a SavedModel or TFLite file has core TF ops only (TF Serving runs
    XLA clusters only behind an experimental flag). The choice is the caller's, for one model at a time.
    """
    frontends = [layer for layer in iter_layers(model) if isinstance(layer, LogMelSpectrogram)]
    previous = [layer.fused for layer in frontends]
    for layer in frontends:
        layer.fused = True
    try:
        yield
    finally:
        for layer, was in zip(frontends, previous):
            layer.fused = was


@contextlib.contextmanager
def small_mel_blocks(model: keras.Model, max_weights: int):
    """Within the block, every mel projection of ``model``'s front-ends is split into matmuls of fewer than
    ``max_weights`` weights each (same numbers: each block keeps its filters' exact bin range).

    TFLite's dynamic-range quantiser stores as int8 only the weights of tensors with at least 1024 elements and
    then quantises those ops' inputs to int8 too; the power spectrum spans ~10 decades, so the front-end must not
    be among them. Tracing a conversion inside this block keeps every front-end matmul in float32.
    """
    frontends = [layer for layer in iter_layers(model) if isinstance(layer, LogMelSpectrogram)]
    previous = [layer._bands for layer in frontends]
    for layer in frontends:
        if layer._bands is not None:
            layer._bands = small_blocks(layer._bands, max_weights)
    try:
        yield
    finally:
        for layer, bands in zip(frontends, previous):
            layer._bands = bands


def small_blocks(bands: list, max_weights: int) -> list:
    """``(lo, hi, weights)`` mel blocks cut along the mel axis, greedily, into blocks of fewer than
    ``max_weights`` weights, each trimmed to the bins its filters use (a single wider filter stays whole)."""
    out = []
    for lo, hi, w in bands:
        w = np.asarray(w)
        used = w != 0
        m0 = 0
        while m0 < w.shape[1]:
            m1 = m0 + 1
            while m1 < w.shape[1] and bin_span(used[:, m0:m1 + 1]) * (m1 + 1 - m0) < max_weights:
                m1 += 1
            rows = np.flatnonzero(used[:, m0:m1].any(axis=1))
            r0, r1 = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 1)
            out.append((lo + r0, lo + r1, tf.constant(w[r0:r1, m0:m1])))
            m0 = m1
    return out


def bin_span(used: np.ndarray) -> int:
    """How many bins, first to last, the filters of a [bins, filters] non-zero mask use."""
    rows = np.flatnonzero(used.any(axis=1))
    return int(rows[-1] + 1 - rows[0]) if rows.size else 1


def iter_layers(layer):
    """``layer`` and every layer nested in it (the members of an ensemble, the layers of a sub-model)."""
    yield layer
    for child in getattr(layer, "layers", ()):
        yield from iter_layers(child)


_FUSED = weakref.WeakKeyDictionary()  # layer -> (frames, tail) XLA functions; not attributes, so never saved


@keras.saving.register_keras_serializable(package="genrenet")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveform [batch, samples] → log-mel [batch, frames, bins], always in float32.

    Works on any number of samples (frames = 1 + samples // hop when centred) and under ``jit_compile``.

    How it stays fast (measured in ``benchmarks/frontend.py``): the power spectrum is ``re² + im²`` (no
    complex abs and square), only the STFT bins some filter uses are kept when that drops more than 1/8 of them
    (trimming fewer costs a copy of the spectrum and saves less), and the mel projection is a few
    small matmuls over the filterbank's non-zero band (see :func:`mel_bands`) instead of one dense
    [bins, mels] product that is 98.5% zeros. Every op is core TF (frame, rfft, real/imag, slice, matmul),
    so the layer exports to SavedModel and converts to TFLite builtins. With ``fused`` set (by
    :func:`fused_frontend`, never saved) the steps before and after the RFFT are XLA-compiled instead (same
    numbers, faster in graph mode).
    """

    def __init__(self, config: FeatureConfig | dict | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # keep the front-end in float32 under mixed precision
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = FeatureConfig.from_dict(config)
        self.config = config or FeatureConfig()
        self.fused = False
        c = self.config
        self._window = tf.constant(np.hanning(c.n_fft + 1)[:-1].astype(np.float32))  # periodic Hann
        n_bins = c.n_fft // 2 + 1
        if c.mel_scale == "linear":
            self._bin_range = (0, n_bins)
            self._bands = None
        else:
            fb = mel_filterbank(c)
            groups = mel_bands(fb)
            b_lo = min(g[0] for g in groups)
            b_hi = max(max(g[1] for g in groups), b_lo + 1)
            if 8 * (b_lo + n_bins - b_hi) < n_bins:  # slicing off a few bins copies the spectrum: +12 % time
                b_lo, b_hi = 0, n_bins
            self._bin_range = (b_lo, b_hi)  # bins outside every filter are never used
            self._bands = [(lo - b_lo, hi - b_lo, tf.constant(fb[lo:hi, m0:m1])) for lo, hi, m0, m1 in groups]

    def call(self, waveform):
        frames, tail = self._fused() if self.fused else (self.windowed_frames, self._tail)
        return tail(tf.signal.rfft(frames(waveform), fft_length=[self.config.n_fft]))

    def _fused(self):
        fused = _FUSED.get(self)
        if fused is None:
            ref = weakref.ref(self)  # the cache must not keep the layer alive
            fused = _FUSED[self] = (tf.function(lambda w: ref().windowed_frames(w), jit_compile=True),
                                    tf.function(lambda spec: ref()._tail(spec), jit_compile=True))
        return fused

    def windowed_frames(self, waveform):
        """The (centred) frames [batch, frames, n_fft] times the periodic Hann window."""
        c = self.config
        x = waveform if waveform.dtype == tf.float32 else tf.cast(waveform, tf.float32)
        if c.center:
            pad = c.n_fft // 2
            x = tf.pad(x, [[0, 0], [pad, pad]])
        return tf.signal.frame(x, c.n_fft, c.hop_length, pad_end=False) * self._window

    def stft(self, waveform):
        """The complex STFT [batch, frames, n_fft//2+1] of the (centred) periodic-Hann frames."""
        return tf.signal.rfft(self.windowed_frames(waveform), fft_length=[self.config.n_fft])

    def power_spectrum(self, waveform):
        """``re² + im²`` of the STFT bins some mel filter uses, ``**(power/2)`` when ``power`` is not 2."""
        return self._power(self.stft(waveform))

    def mel_power(self, waveform):
        """The (mel) power spectrogram before compression: [batch, frames, bins]."""
        return self._mel(self.power_spectrum(waveform))

    def _tail(self, spec):
        """Everything after the RFFT: power, mel projection, compression."""
        return self._compress(self._mel(self._power(spec)))

    def _power(self, spec):
        c = self.config
        b_lo, b_hi = self._bin_range
        re, im = tf.math.real(spec), tf.math.imag(spec)
        if (b_lo, b_hi) != (0, c.n_fft // 2 + 1):
            re, im = re[..., b_lo:b_hi], im[..., b_lo:b_hi]
        power = re * re + im * im
        if c.power != 2.0:
            power = tf.math.pow(power, c.power / 2.0)
        return power

    def _mel(self, power):
        if self._bands is None:
            return power
        b_lo, b_hi = self._bin_range
        shape = tf.shape(power)
        flat = tf.reshape(power, [-1, b_hi - b_lo])  # [batch*frames, bins]: one 2-D matmul per band
        mel = [tf.matmul(flat[:, lo:hi], w) for lo, hi, w in self._bands]
        mel = mel[0] if len(mel) == 1 else tf.concat(mel, axis=-1)
        return tf.reshape(mel, tf.concat([shape[:-1], [self.config.n_mels]], axis=0))

    def _compress(self, s):
        c = self.config
        if c.compression == "none":
            return s
        if c.compression == "log1p":
            return tf.math.log(1.0 + c.log_c * s) / math.log(10.0)
        db = (10.0 / math.log(10.0)) * tf.math.log(tf.maximum(s, c.amin))
        if c.top_db is not None:
            peak = tf.reduce_max(db, axis=[-2, -1], keepdims=True)
            db = tf.maximum(db, peak - c.top_db)
        return db

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.config.num_frames(samples)
        return (input_shape[0], frames, self.config.num_bins)

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}
