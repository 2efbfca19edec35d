"""LogMelSpectrogram: parity with librosa, shapes, XLA, compression modes, serialisation, mixed precision."""
from __future__ import annotations

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

librosa = pytest.importorskip("librosa")

from conftest import GTZAN_DEV as SHARED_GTZAN_DEV  # noqa: E402
from genrenet.nn.frontend import (FeatureConfig, LogMelSpectrogram, fused_frontend,  # noqa: E402
                                  mel_bands, mel_filterbank)

GTZAN_DEV = os.environ.get("GENRENET_GTZAN_DEV", str(SHARED_GTZAN_DEV))
SR = 22050
TOL_DB = 0.05


def synthetic(seconds=3.0, sr=SR, seed=0):
    """Tones with harmonics, a chirp and a little noise: energy across the whole band and > 80 dB of range."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1320 * t)
    y += 0.2 * np.sin(2 * np.pi * (100 + 3000 * t) * t)
    y += 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def real_clip(seconds=5.0):
    files = sorted(glob.glob(os.path.join(GTZAN_DEV, "*", "*.wav")))
    if not files:
        pytest.skip(f"no GTZAN dev clips under {GTZAN_DEV}")
    sf = pytest.importorskip("soundfile")
    y, sr = sf.read(files[0], dtype="float32", frames=int(seconds * SR))
    assert sr == SR
    return y if y.ndim == 1 else y.mean(axis=1)


def librosa_power(y, c: FeatureConfig):
    if c.mel_scale == "linear":
        return np.abs(librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length, center=c.center,
                                   pad_mode="constant")) ** c.power
    return librosa.feature.melspectrogram(
        y=y, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax,
        htk=c.mel_scale == "htk", norm=c.mel_norm, power=c.power, center=c.center, pad_mode="constant")


def librosa_db(y, c: FeatureConfig):
    return librosa.power_to_db(librosa_power(y, c), ref=1.0, amin=c.amin, top_db=c.top_db).T


def run(layer, x, jit=False):
    return tf.function(layer.call, jit_compile=jit)(tf.constant(x)).numpy()


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
@pytest.mark.parametrize("source", ["synthetic", "gtzan"])
def test_parity_with_librosa(mel_scale, source):
    y = synthetic() if source == "synthetic" else real_clip()
    c = FeatureConfig(mel_scale=mel_scale)
    out = LogMelSpectrogram(c)(y[None]).numpy()[0]
    ref = librosa_db(y, c)
    assert out.shape == ref.shape == (c.num_frames(len(y)), c.n_mels)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=TOL_DB, rtol=0)


def test_parity_other_config():
    """fmin/fmax, another n_fft/hop/n_mels: the band grouping must still cover every weight."""
    c = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, fmin=50.0, fmax=7000.0)
    y = librosa.resample(synthetic(2.0), orig_sr=SR, target_sr=16000)
    np.testing.assert_allclose(LogMelSpectrogram(c)(y[None]).numpy()[0], librosa_db(y, c), atol=TOL_DB, rtol=0)


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_mel_bands_reproduce_dense_filterbank(mel_scale):
    fb = mel_filterbank(FeatureConfig(mel_scale=mel_scale))
    rebuilt = np.zeros_like(fb)
    mels = []
    for lo, hi, m0, m1 in mel_bands(fb):
        rebuilt[lo:hi, m0:m1] = fb[lo:hi, m0:m1]
        mels.extend(range(m0, m1))
    assert mels == list(range(fb.shape[1]))
    np.testing.assert_array_equal(rebuilt, fb)


def test_batch_rows_match_single_clips():
    layer = LogMelSpectrogram(FeatureConfig())
    batch = np.stack([synthetic(seed=s) * g for s, g in ((0, 1.0), (1, 0.1), (2, 0.5))])
    out = layer(batch).numpy()
    for i in range(len(batch)):
        np.testing.assert_allclose(out[i], layer(batch[i:i + 1]).numpy()[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("n", [0, 1000, 2048, 22050, 22050 + 333])
def test_any_length(n):
    c = FeatureConfig()
    y = synthetic(2.0)[:n]
    out = LogMelSpectrogram(c)(y[None]).numpy()[0]
    assert out.shape == (1 + n // c.hop_length, c.n_mels) == (c.num_frames(n), c.n_mels)
    if n >= c.n_fft:
        np.testing.assert_allclose(out, librosa_db(y, c), atol=TOL_DB, rtol=0)


def test_jit_compile_matches():
    layer = LogMelSpectrogram(FeatureConfig())
    x = np.stack([synthetic(seed=0), synthetic(seed=1)])
    np.testing.assert_allclose(run(layer, x, jit=True), run(layer, x, jit=False), atol=1e-3, rtol=0)
    short = x[:, :5000]  # another length retraces and still works
    assert run(layer, short, jit=True).shape == (2, 1 + 5000 // 512, 128)


def xla_functions(concrete):
    """The functions of a traced graph that XLA must compile (``_XlaMustCompile``)."""
    return [f.signature.name for f in concrete.graph.as_graph_def().library.function if f.attr["_XlaMustCompile"].b]


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(compression="log1p", n_mels=96, sample_rate=16000,
                                    n_fft=512, hop_length=256), FeatureConfig(mel_scale="linear"),
                                    FeatureConfig(compression="none", power=1.0, mel_scale="htk")],
                         ids=["db", "musicnn-like", "linear", "power1"])
def test_fused_frontend_gives_the_same_numbers(config):
    """evaluate and predict trace the layer fused (XLA around the RFFT): same output, and XLA really used."""
    layer = LogMelSpectrogram(config)
    x = tf.constant(np.stack([synthetic(seed=0), synthetic(seed=1)]))
    plain = tf.function(layer.call).get_concrete_function(x)
    assert not layer.fused and xla_functions(plain) == []  # the default graph: core ops only

    def fused_call(w):
        with fused_frontend(layer):
            return layer(w)

    fused = tf.function(fused_call).get_concrete_function(x)
    assert len(xla_functions(fused)) == 2 and not layer.fused  # framing and the tail; the block has ended
    expected, out = plain(x).numpy(), fused(x).numpy()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(out, expected, atol=1e-5 * scale if config.compression == "none" else 1e-3, rtol=0)


def test_log1p_compression():
    c = FeatureConfig(compression="log1p")
    y = synthetic()
    out = LogMelSpectrogram(c)(y[None]).numpy()[0]
    ref = np.log10(1.0 + c.log_c * librosa_power(y, c)).T
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_linear_mode():
    c = FeatureConfig(mel_scale="linear")
    y = synthetic(1.0)
    out = LogMelSpectrogram(c)(y[None]).numpy()[0]
    assert out.shape == (c.num_frames(len(y)), c.n_fft // 2 + 1) == (c.num_frames(len(y)), c.num_bins)
    np.testing.assert_allclose(out, librosa_db(y, c), atol=TOL_DB, rtol=0)


def test_no_compression_and_power_one():
    c = FeatureConfig(compression="none", power=1.0)
    y = synthetic(1.0)
    out = LogMelSpectrogram(c)(y[None]).numpy()[0]
    np.testing.assert_allclose(out, librosa_power(y, c).T, rtol=1e-4, atol=1e-5 * np.abs(out).max())


def test_serialisation_round_trip():
    c = FeatureConfig(mel_scale="htk", n_mels=64, fmax=8000.0)
    layer = LogMelSpectrogram(c, name="log_mel")
    clone = LogMelSpectrogram.from_config(layer.get_config())
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.config == c and again.config == c
    x = synthetic(1.0)[None]
    expected = layer(x).numpy()
    np.testing.assert_array_equal(clone(x).numpy(), expected)
    np.testing.assert_array_equal(again(x).numpy(), expected)


def test_mixed_precision_keeps_float32():
    x = synthetic(1.0)[None]
    reference = LogMelSpectrogram(FeatureConfig())(x).numpy()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input(shape=(x.shape[1],), name="waveform")
        outputs = LogMelSpectrogram(FeatureConfig())(inputs)
        model = keras.Model(inputs, outputs)
        out = model(x)
    finally:
        keras.config.set_dtype_policy(previous)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), reference, atol=1e-3, rtol=0)
