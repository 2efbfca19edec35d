"""Augmentation: seeded, does what it says (measured), and absent at inference."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY
from genrenet.data import Augment, AugmentError, TrainingSpec, load_dataset, training_epochs
from genrenet.nn import SpecAugment
from genrenet.data import augment as A

SR = 22050
W = SR  # 1-s windows keep the tests fast


def tone(n, freq=440.0, amp=0.5, sr=SR):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def peak_hz(x, sr=SR):
    x = np.asarray(x)
    return np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * sr / len(x)


def run(names, x, seed, params=None):
    aug = Augment.resolve({n: dict((params or {}).get(n, {})) for n in names})
    fn = aug.waveform_fn(W, SR)
    out, _ = fn(tf.constant(x), tf.constant([1.0]), tf.constant(seed, tf.int64))
    return out.numpy()


def test_resolve_names_dicts_strings_and_errors():
    assert Augment.resolve(None).names == [] and not Augment.resolve("none")
    assert Augment.resolve("gain, noise").names == ["gain", "noise"]
    a = Augment.resolve('{"noise": {"snr_db": [5, 5]}, "mixup": {}}')
    assert a.config["noise"]["snr_db"] == [5, 5] and a.config["noise"]["p"] == A.DEFAULTS["noise"]["p"]
    assert a.config["mixup"] == A.DEFAULTS["mixup"]
    assert Augment.resolve(["all"]).names == list(A.DEFAULTS)
    with pytest.raises(AugmentError, match="unknown augmentation 'reverb'"):
        Augment.resolve("gain,reverb")
    with pytest.raises(AugmentError, match="unknown parameter"):
        Augment.resolve({"gain": {"decibels": 3}})
    with pytest.raises(AugmentError, match="p must be"):
        Augment.resolve({"noise": {"p": 2}})


@pytest.mark.parametrize("names", [["gain"], ["noise"], ["shift"], ["stretch"], ["pitch"],
                                   ["stretch", "pitch", "shift", "gain", "noise"]])
def test_waveform_augmentations_are_seeded(names):
    params = {n: {"p": 1.0} for n in names}
    aug = Augment.resolve(params)
    x = tone(aug.input_samples(W)) + 0.01 * np.random.default_rng(0).standard_normal(aug.input_samples(W)).astype(
        np.float32)
    a, b = run(names, x, [3, 4], params), run(names, x, [3, 4], params)
    c = run(names, x, [5, 6], params)
    assert a.shape == (W,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.allclose(a, x[:W])  # it changed the signal


def test_gain_stays_in_its_db_range():
    x = tone(W)
    ratios = []
    for s in range(40):
        y = run(["gain"], x, [s, 0], {"gain": {"db": [-6, 6]}})
        ratios.append(20 * np.log10(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2))))
    assert -6.01 <= min(ratios) < -3 and 3 < max(ratios) <= 6.01


@pytest.mark.parametrize("snr", [5.0, 20.0])
def test_noise_is_added_at_the_target_snr(snr):
    x = tone(W)
    y = run(["noise"], x, [1, 2], {"noise": {"snr_db": [snr, snr], "p": 1.0}})
    measured = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert abs(measured - snr) < 0.3
    silent = run(["noise"], np.zeros(W, np.float32), [1, 2], {"noise": {"snr_db": [snr, snr], "p": 1.0}})
    assert not silent.any()  # no noise floor invented for silence


def test_pitch_shift_moves_the_pitch_and_keeps_the_length():
    aug = Augment.resolve({"pitch": {"semitones": [2, 2], "p": 1.0}})
    y = run(["pitch"], tone(aug.input_samples(W)), [0, 0], {"pitch": {"semitones": [2, 2], "p": 1.0}})
    assert y.shape == (W,)
    assert abs(peak_hz(y) - 440 * 2 ** (2 / 12)) < 3


def test_time_stretch_keeps_the_pitch_and_changes_the_tempo():
    x = tone(SR * 4)
    clicks = np.zeros(SR * 4, np.float32)
    clicks[:: SR // 2] = 1.0
    fast = A.phase_vocoder(tf.constant(clicks), 1.25).numpy()
    assert abs(len(clicks) / len(fast) - 1.25) < 0.02
    y = A.stretch_and_pitch(tf.constant(x), 0.9, 0.0, W).numpy()
    assert y.shape == (W,) and abs(peak_hz(y) - 440) < 3


def test_mixup_mixes_inputs_and_labels_consistently():
    x = tf.constant(np.stack([np.full(8, i, np.float32) for i in range(6)]))
    y = tf.one_hot(tf.range(6) % 3, 3)
    xm, ym = A.mixup(x, y, tf.constant([0, 1], tf.int64), alpha=0.4)
    xm2, ym2 = A.mixup(x, y, tf.constant([0, 1], tf.int64), alpha=0.4)
    np.testing.assert_array_equal(xm.numpy(), xm2.numpy())
    np.testing.assert_allclose(ym.numpy().sum(1), 1.0, rtol=1e-6)
    assert (ym.numpy().max(1) >= 0.5 - 1e-6).all()  # each mix stays closest to its own label
    assert not np.array_equal(xm.numpy(), x.numpy())


def test_specaugment_masks_in_training_only_and_is_seeded():
    x = tf.random.stateless_normal([4, 130, 128], seed=[0, 0]) + 5.0
    layer = SpecAugment(time_masks=2, time_width=0.2, freq_masks=2, freq_width=0.2, seed=7)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    y = layer(x, training=True).numpy()
    zeroed = y == 0
    assert zeroed.any() and (zeroed.all(axis=2).any() or zeroed.all(axis=1).any())  # whole frames or bins
    assert zeroed.mean() < 0.6
    y2 = SpecAugment(time_masks=2, time_width=0.2, freq_masks=2, freq_width=0.2, seed=7)(x, training=True)
    np.testing.assert_array_equal(y, y2.numpy())


def test_spec_augment_goes_into_the_model_and_is_identity_at_inference(tmp_path):
    import keras

    import genrenet

    kw = {"filters": [4, 8], "dense_units": [8]}
    plain = genrenet.build_model("cnn", num_classes=3, window_seconds=1.0, **kw)
    masks = {"time_masks": 2, "time_width": 0.3, "freq_masks": 2, "freq_width": 0.3, "seed": 0}
    aug = genrenet.build_model("cnn", num_classes=3, window_seconds=1.0, spec_augment=masks, **kw)
    assert "spec_augment" in [l.name for l in aug.layers] and "spec_augment" not in [l.name for l in plain.layers]
    assert "spec_augment" not in [l.name for l in genrenet.build_model("cnn", num_classes=3, **kw).layers]
    for layer in plain.layers:  # same weights everywhere
        if layer.weights:
            layer.set_weights(aug.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32) * 0.1
    np.testing.assert_allclose(aug(x, training=False).numpy(), plain(x, training=False).numpy(), atol=1e-6)
    aug.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(again(x, training=False).numpy(), plain(x, training=False).numpy(), atol=1e-6)
    # in training the masks change the output (this also moves BatchNorm statistics: keep it last)
    assert not np.allclose(aug(x, training=True).numpy(), plain(x, training=True).numpy(), atol=1e-6)


def test_training_batches_are_augmented_and_seeded_but_validation_is_not():
    from genrenet.data import validation_dataset

    ds = load_dataset(TINY)
    spec = TrainingSpec(ds.labels, sample_rate=SR, window_samples=W, batch_size=6, seed=0)
    names = ["gain", "noise", "stretch", "mixup"]

    def epoch(augment=None):
        return list(training_epochs(ds.clips, spec.replace(augment=augment), epochs=1)[0])

    a = [x.numpy() for x, _ in epoch(names)]
    b = [x.numpy() for x, _ in epoch(names)]
    plain = [x.numpy() for x, _ in epoch()]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert a[0].shape == plain[0].shape == (6, W)
    assert not np.allclose(a[0], plain[0])
    _, labels = epoch(["mixup"])[0]
    assert (labels.numpy().max(1) < 1).any()  # soft labels from mixup
    val = [x.numpy() for x, _ in validation_dataset(ds.clips, ds.labels, sample_rate=SR, window_samples=W)]
    first = ds.clips[0].load(SR)[:W]
    np.testing.assert_array_equal(val[0][0], first)  # validation windows are the raw audio
