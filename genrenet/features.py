"""``FeatureConfig``: how a waveform becomes the spectrogram a model body reads.

A plain dataclass, kept apart from the TensorFlow front-end (:mod:`genrenet.nn.frontend`) so that reading a
run's ``config.json``, an export's metadata or the list of presets never imports TensorFlow.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from .errors import ConfigError

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
            raise ConfigError(f"mel_scale must be one of {MEL_SCALES}, got {self.mel_scale!r}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.mel_norm not in (None, "slaney"):
            raise ConfigError(f"mel_norm must be 'slaney' or None, got {self.mel_norm!r}")
        if self.hop_length <= 0 or self.n_fft <= 0 or self.sample_rate <= 0:
            raise ConfigError("sample_rate, n_fft and hop_length must be positive")
        if self.fmax is not None and self.fmax > self.sample_rate / 2:
            raise ConfigError(f"fmax {self.fmax} is above the Nyquist frequency {self.sample_rate / 2}")

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
        """The config as a plain dict (stored in ``config.json`` and export metadata)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        """The config a dict describes; unknown fields are an error, not silently dropped."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ConfigError(f"unknown FeatureConfig fields: {sorted(unknown)}")
        return cls(**d)
