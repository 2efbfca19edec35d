"""The log-mel front-end that lives inside every genrenet model.

It is written with tf.signal so that the same graph trains, evaluates and serves from raw audio, and the
spectrogram is computed on the accelerator when there is one. The numbers match librosa's
``melspectrogram`` + ``power_to_db`` (centred STFT, zero padding as in librosa >= 0.10, periodic Hann).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

MEL_SCALES = ("slaney", "htk", "linear")
COMPRESSIONS = ("db", "log1p", "none")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """How a waveform becomes the 2-D input of a model body.

    ``mel_scale`` ``"linear"`` keeps the STFT bins (no filterbank). ``compression`` ``"db"`` is
    ``10·log10(max(S, amin))`` clipped to ``top_db`` below each example's peak (librosa's ``power_to_db``
    with ``ref=1``); ``"log1p"`` is ``log10(1 + log_c·S)`` (musicnn).
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: Optional[float] = None
    mel_scale: str = "slaney"
    mel_norm: Optional[str] = "slaney"
    power: float = 2.0
    compression: str = "db"
    top_db: Optional[float] = 80.0
    amin: float = 1e-10
    log_c: float = 10000.0
    center: bool = True

    def __post_init__(self):
        if self.mel_scale not in MEL_SCALES:
            raise ValueError(f"mel_scale must be one of {MEL_SCALES}, got {self.mel_scale!r}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.mel_norm not in (None, "slaney"):
            raise ValueError(f"mel_norm must be 'slaney' or None, got {self.mel_norm!r}")
        if self.hop_length <= 0 or self.n_fft <= 0 or self.sample_rate <= 0:
            raise ValueError("sample_rate, n_fft and hop_length must be positive")
        if self.fmax is not None and self.fmax > self.sample_rate / 2:
            raise ValueError(f"fmax {self.fmax} is above the Nyquist frequency {self.sample_rate / 2}")

    @property
    def num_bins(self) -> int:
        """Size of the frequency axis the front-end outputs."""
        return self.n_fft // 2 + 1 if self.mel_scale == "linear" else self.n_mels

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + max(0, num_samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown FeatureConfig fields: {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> "FeatureConfig":
        return dataclasses.replace(self, **changes)


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


@keras.saving.register_keras_serializable(package="genrenet")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveform [batch, samples] → log-mel [batch, frames, bins], always in float32.

    Works on any number of samples (frames = 1 + samples // hop when centred) and under ``jit_compile``.
    """

    def __init__(self, config: FeatureConfig | dict | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # keep the front-end in float32 under mixed precision
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = FeatureConfig.from_dict(config)
        self.config = config or FeatureConfig()
        c = self.config
        self._window = tf.constant(np.hanning(c.n_fft + 1)[:-1].astype(np.float32))  # periodic Hann
        self._filterbank = None if c.mel_scale == "linear" else tf.constant(mel_filterbank(c))

    def call(self, waveform):
        c = self.config
        x = tf.cast(waveform, tf.float32)
        if c.center:
            pad = c.n_fft // 2
            x = tf.pad(x, [[0, 0], [pad, pad]])
        frames = tf.signal.frame(x, c.n_fft, c.hop_length, pad_end=False)
        spec = tf.signal.rfft(frames * self._window, fft_length=[c.n_fft])
        power = tf.math.square(tf.math.real(spec)) + tf.math.square(tf.math.imag(spec))
        if c.power != 2.0:
            power = tf.math.pow(power, c.power / 2.0)
        if self._filterbank is not None:
            power = tf.tensordot(power, self._filterbank, axes=1)
        return self._compress(power)

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
