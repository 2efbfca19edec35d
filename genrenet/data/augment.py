"""Training-time augmentation (article §3.1 and common practice), all seeded and off at inference.

Three places, because each technique belongs where it is cheapest and cannot leak into inference:

- **waveform** (per window, inside tf.data, stateless random ops driven by the seeds the pipeline passes):
  ``shift``, ``gain``, ``noise``, ``stretch``, ``pitch``. Validation, evaluation, prediction and export
  never see them (their pipelines take no augmentation).
- **spectrogram** (``specaugment``): a :class:`SpecAugment` Keras layer right after the model's front-end,
  active only when the model is called with ``training=True``; at inference it is the identity, so a
  trained model behaves exactly as one built without it.
- **batch** (``mixup``): mixes pairs of windows and their one-hot labels, in tf.data after batching.

Select them by name with default parameters, or with a dict of parameters::

    train("crnn_attention", data, augment=["gain", "noise", "specaugment", "mixup"])
    train("crnn_attention", data, augment={"noise": {"snr_db": [10, 20]}, "mixup": {"alpha": 0.4}})
    genrenet train crnn_attention --data DIR --augment gain,noise,specaugment,mixup

Defaults (:data:`DEFAULTS`): every technique has a probability ``p`` of being applied to a window/batch.
"""
from __future__ import annotations

import copy
import json
import math
from typing import Optional

import tensorflow as tf

from ..errors import AugmentError

TWO_PI = 2.0 * math.pi

# name -> default parameters (documented in docs/data.md, Augmentation)
DEFAULTS = {
    "shift": {"max_seconds": 0.5, "p": 0.5},  # circular shift of the window (crops already shift in time)
    "gain": {"db": [-6.0, 6.0], "p": 1.0},  # uniform gain in dB
    "noise": {"snr_db": [10.0, 30.0], "p": 0.5},  # white noise at a uniform target SNR (dB) w.r.t. the window
    "stretch": {"rate": [0.9, 1.1], "p": 0.5},  # time stretch (phase vocoder), pitch kept; >1 is faster
    "pitch": {"semitones": [-2.0, 2.0], "p": 0.5},  # pitch shift (phase vocoder + resampling), tempo kept
    "specaugment": {"time_masks": 2, "time_width": 0.1, "freq_masks": 2, "freq_width": 0.15, "p": 1.0},
    "mixup": {"alpha": 0.2, "p": 1.0},  # lambda ~ Beta(alpha, alpha) per example, partner from the batch
}
WAVEFORM = ("stretch", "pitch", "shift", "gain", "noise")  # applied in this order
ALL = tuple(DEFAULTS)

# phase vocoder frame (at any sample rate: 1024 samples ≈ 46 ms at 22 050 Hz)
PV_FFT, PV_HOP = 1024, 256




def _range(value) -> tuple:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    lo, hi = value
    if lo > hi:
        raise AugmentError(f"range {list(value)} has min > max")
    return float(lo), float(hi)


class Augment:
    """A resolved augmentation configuration: ``{name: params}`` with defaults filled in.

    Build with :meth:`resolve` from ``None``/``[]`` (nothing), a list of names, a comma-separated string, a
    dict ``{name: params or {}}`` or a JSON string of such a dict.
    """

    def __init__(self, config: Optional[dict] = None):
        self.config = {}
        for name, params in (config or {}).items():
            if name not in DEFAULTS:
                raise AugmentError(f"unknown augmentation {name!r}; known: {', '.join(ALL)}")
            merged = copy.deepcopy(DEFAULTS[name])
            unknown = set(params or {}) - set(merged)
            if unknown:
                raise AugmentError(f"{name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(merged)}")
            merged.update(params or {})
            if not 0.0 <= float(merged["p"]) <= 1.0:
                raise AugmentError(f"{name}: p must be in [0, 1]")
            self.config[name] = merged
        self._check()

    @classmethod
    def resolve(cls, spec) -> "Augment":
        """An :class:`Augment` from a name list, a comma string, a dict of parameters, ``all`` or none."""
        if isinstance(spec, Augment):
            return spec
        if spec is None or spec is False or spec == "" or spec == "none":
            return cls({})
        if isinstance(spec, str):
            text = spec.strip()
            if text.startswith("{"):
                try:
                    spec = json.loads(text)
                except json.JSONDecodeError as e:
                    raise AugmentError(f"augment=JSON does not parse: {e}") from None
            else:
                spec = [s.strip() for s in text.split(",") if s.strip()]
        if isinstance(spec, (list, tuple)):
            names = ALL if list(spec) == ["all"] else spec
            return cls({n: {} for n in names})
        if isinstance(spec, dict):
            return cls(dict(spec))
        raise AugmentError(f"augment must be a list of names, a dict or a string, not {type(spec).__name__}")

    def _check(self):
        c = self.config
        if "gain" in c:
            _range(c["gain"]["db"])
        if "noise" in c:
            _range(c["noise"]["snr_db"])
        if "stretch" in c:
            lo, hi = _range(c["stretch"]["rate"])
            if lo <= 0.5 or hi >= 2.0:
                raise AugmentError("stretch: rate must be within (0.5, 2)")
        if "pitch" in c:
            lo, hi = _range(c["pitch"]["semitones"])
            if lo < -12 or hi > 12:
                raise AugmentError("pitch: semitones must be within [-12, 12]")
        if "mixup" in c and float(c["mixup"]["alpha"]) <= 0:
            raise AugmentError("mixup: alpha must be > 0")
        if "specaugment" in c:
            s = c["specaugment"]
            if not (0 <= s["time_width"] < 1 and 0 <= s["freq_width"] < 1):
                raise AugmentError("specaugment: time_width and freq_width are fractions in [0, 1)")

    # ------------------------------------------------------------------------------------------ queries
    def __bool__(self):
        return bool(self.config)

    def __contains__(self, name):
        return name in self.config

    def to_dict(self) -> dict:
        """The resolved techniques and their parameters (JSON-ready, recorded in ``config.json``)."""
        return copy.deepcopy(self.config)

    @property
    def names(self) -> list:
        """The selected techniques, in the order they are applied."""
        return list(self.config)

    @property
    def waveform_names(self) -> list:
        """The selected techniques that act on the waveform in tf.data (not SpecAugment or mixup)."""
        return [n for n in WAVEFORM if n in self.config]

    @property
    def spec_augment(self) -> Optional[dict]:
        """Parameters for the in-model :class:`SpecAugment` layer, or None."""
        return dict(self.config["specaugment"]) if "specaugment" in self.config else None

    def input_samples(self, window_samples: int) -> int:
        """How many samples a crop must have so that stretch/pitch can return a full window."""
        if not ({"stretch", "pitch"} & set(self.config)):
            return window_samples
        r_hi = _range(self.config["stretch"]["rate"])[1] if "stretch" in self.config else 1.0
        f_lo = 2 ** (_range(self.config["pitch"]["semitones"])[0] / 12) if "pitch" in self.config else 1.0
        r_hi = max(r_hi, 1.0)
        f_lo = min(f_lo, 1.0)
        # phase-vocoder output ≈ L·f/r; we read W·f samples after skipping PV_FFT at both edges
        return int(math.ceil(r_hi * window_samples + 2 * PV_FFT * r_hi / f_lo + 2 * PV_HOP))

    # ------------------------------------------------------------------------------------------ tf.data
    def waveform_fn(self, window_samples: int, sample_rate: int = 22050):
        """``fn(audio[input_samples], label, seed[2]) -> (audio[window_samples], label)``, or None."""
        names = self.waveform_names
        if not names:
            return None
        cfg = self.config
        w = int(window_samples)

        def fn(audio, label, seed):
            seed = tf.cast(seed, tf.int64)
            x = tf.cast(audio, tf.float32)
            if "stretch" in names or "pitch" in names:
                s = _fold(seed, 1)
                rate = (_maybe_uniform(s, cfg["stretch"]["rate"], cfg["stretch"]["p"], 1.0)
                        if "stretch" in names else tf.constant(1.0))
                semis = (_maybe_uniform(_fold(seed, 2), cfg["pitch"]["semitones"], cfg["pitch"]["p"], 0.0)
                         if "pitch" in names else tf.constant(0.0))
                x = stretch_and_pitch(x, rate, semis, w)
            else:
                x = x[:w]
            x = tf.ensure_shape(x, [w])
            if "shift" in names:
                x = random_shift(x, _fold(seed, 3), cfg["shift"]["max_seconds"], cfg["shift"]["p"],
                                 sample_rate=sample_rate)
            if "gain" in names:
                x = random_gain(x, _fold(seed, 4), cfg["gain"]["db"], cfg["gain"]["p"])
            if "noise" in names:
                x = add_noise(x, _fold(seed, 5), cfg["noise"]["snr_db"], cfg["noise"]["p"])
            return tf.ensure_shape(x, [w]), label

        return fn

    def batch_fn(self):
        """``fn(x[B, W], y[B, C], seed[2]) -> (x, y)`` for mixup, or None."""
        if "mixup" not in self.config:
            return None
        m = self.config["mixup"]
        return lambda x, y, seed: mixup(x, y, tf.cast(seed, tf.int64), m["alpha"], m["p"])


# ---------------------------------------------------------------------------------------------- primitives
def _fold(seed, k: int):
    return tf.random.experimental.stateless_fold_in(seed, k)


def _uniform(seed, value_range, shape=()):
    lo, hi = _range(value_range)
    return tf.random.stateless_uniform(shape, seed=seed, minval=lo, maxval=hi) if hi > lo else tf.fill(shape, lo)


def _maybe_uniform(seed, value_range, p, identity):
    """A uniform draw from ``value_range`` with probability ``p``, else ``identity``."""
    apply = tf.random.stateless_uniform([], seed=_fold(seed, 101)) < p
    return tf.where(apply, _uniform(seed, value_range), tf.constant(identity, tf.float32))


def random_gain(x, seed, db=(-6.0, 6.0), p=1.0):
    """Multiply by ``10 ** (g / 20)``, g ~ U(db) dB (with probability ``p``)."""
    g = _maybe_uniform(seed, db, p, 0.0)
    return x * tf.pow(10.0, g / 20.0)


def add_noise(x, seed, snr_db=(10.0, 30.0), p=0.5):
    """Add white Gaussian noise at an SNR drawn from ``snr_db`` relative to the window's own power.

    A silent window stays silent (0 dB of nothing is nothing)."""
    snr = _uniform(_fold(seed, 1), snr_db)
    power = tf.reduce_mean(tf.square(x))
    noise = tf.random.stateless_normal(tf.shape(x), seed=_fold(seed, 2))
    noise = noise * tf.sqrt(power / tf.pow(10.0, snr / 10.0))
    apply = tf.random.stateless_uniform([], seed=_fold(seed, 3)) < p
    return tf.where(apply, x + noise, x)


def random_shift(x, seed, max_seconds=0.5, p=0.5, *, sample_rate: int = 22050):
    """Circular shift by up to ``max_seconds`` (capped at the window). Random crops already shift in time;
    this matters for fixed-hop windows."""
    n = tf.shape(x)[0]
    max_shift = tf.minimum(tf.cast(max_seconds * sample_rate, tf.int32), n - 1)
    shift = tf.random.stateless_uniform([], seed=_fold(seed, 1), minval=-max_shift, maxval=max_shift + 1,
                                        dtype=tf.int32) if max_seconds > 0 else tf.constant(0)
    apply = tf.random.stateless_uniform([], seed=_fold(seed, 2)) < p
    return tf.roll(x, tf.where(apply, shift, 0), axis=0)


def phase_vocoder(x, rate, n_fft: int = PV_FFT, hop: int = PV_HOP):
    """Time-stretch ``x`` by ``rate`` (> 1 faster/shorter) keeping the pitch (Flanagan & Golden 1966;
    the algorithm of ``librosa.phase_vocoder``), in TF ops. Output ≈ ``len(x) / rate`` samples."""
    rate = tf.cast(rate, tf.float32)
    spec = tf.signal.stft(x, n_fft, hop, window_fn=tf.signal.hann_window)  # [T, F]
    frames = tf.shape(spec)[0]
    steps = tf.range(0.0, tf.cast(frames - 1, tf.float32), rate)
    i0 = tf.cast(tf.floor(steps), tf.int32)
    alpha = (steps - tf.floor(steps))[:, None]
    s0, s1 = tf.gather(spec, i0), tf.gather(spec, i0 + 1)
    mag = (1.0 - alpha) * tf.abs(s0) + alpha * tf.abs(s1)
    omega = TWO_PI * hop * tf.range(n_fft // 2 + 1, dtype=tf.float32) / n_fft
    dphi = tf.math.angle(s1) - tf.math.angle(s0) - omega
    dphi -= TWO_PI * tf.round(dphi / TWO_PI)
    advance = tf.math.floormod(omega + dphi, TWO_PI)  # phase only matters mod 2π: keeps float32 exact
    phase = tf.math.angle(spec[0])[None] + tf.concat([tf.zeros_like(advance[:1]), tf.cumsum(advance)[:-1]], 0)
    out = tf.complex(mag * tf.cos(phase), mag * tf.sin(phase))
    return tf.signal.inverse_stft(out, n_fft, hop, window_fn=tf.signal.inverse_stft_window_fn(hop))


def _linear_resample(x, start, step, n: int):
    """``n`` samples of ``x`` read at ``start + k·step`` with linear interpolation."""
    pos = tf.cast(start, tf.float32) + tf.range(n, dtype=tf.float32) * step
    pos = tf.clip_by_value(pos, 0.0, tf.cast(tf.shape(x)[0] - 2, tf.float32))
    i0 = tf.cast(tf.floor(pos), tf.int32)
    a = pos - tf.floor(pos)
    return (1.0 - a) * tf.gather(x, i0) + a * tf.gather(x, i0 + 1)


def stretch_and_pitch(x, rate, semitones, window_samples: int):
    """Time-stretch by ``rate`` and pitch-shift by ``semitones`` in one phase-vocoder pass, returning
    ``window_samples`` samples. ``x`` must have :meth:`Augment.input_samples` samples.

    Pitch shift = stretch by 1/f (f = 2^(semitones/12)) then read every f-th sample (linear interpolation),
    so the duration is kept and the pitch moves by f. With rate 1 and 0 semitones it returns the input."""
    rate = tf.cast(rate, tf.float32)
    f = tf.pow(2.0, tf.cast(semitones, tf.float32) / 12.0)

    def identity():
        return x[:window_samples]

    def transform():
        y = phase_vocoder(x, rate / f)
        return _linear_resample(y, PV_FFT, f, window_samples)  # skip the vocoder's tapered edge

    return tf.cond(tf.logical_and(tf.equal(rate, 1.0), tf.equal(f, 1.0)), identity, transform)


def mixup(x, y, seed, alpha=0.2, p=1.0):
    """Mixup (Zhang et al. 2018): ``λ·x + (1-λ)·x[perm]`` and the same for one-hot labels,
    λ ~ Beta(α, α) per example, folded to ≥ 0.5 so each mix stays closest to its own example."""
    b = tf.shape(x)[0]
    g1 = tf.random.stateless_gamma([b], seed=_fold(seed, 1), alpha=alpha)
    g2 = tf.random.stateless_gamma([b], seed=_fold(seed, 2), alpha=alpha)
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    lam = tf.maximum(lam, 1.0 - lam)
    apply = tf.random.stateless_uniform([b], seed=_fold(seed, 3)) < p
    lam = tf.where(apply, lam, 1.0)
    perm = tf.argsort(tf.random.stateless_uniform([b], seed=_fold(seed, 4)))
    lx = tf.reshape(lam, [-1] + [1] * (len(x.shape) - 1))
    x = lx * x + (1.0 - lx) * tf.gather(x, perm)
    y = lam[:, None] * y + (1.0 - lam[:, None]) * tf.gather(y, perm)
    return x, y
