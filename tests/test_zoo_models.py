"""The published zoo families beyond the article's models: fcn, musicnn, vgg_musicnn, short_chunk_cnn, short_chunk_resnet, sample_cnn,
spectrogram_transformer. (Pretrained musicnn parity is in test_musicnn_port.py.)"""
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import genrenet
from genrenet import registry

ZOO = {  # name: (family, max parameters at defaults with 7 classes)
    "fcn": ("fcn", 1_000_000),
    "musicnn": ("musicnn", 800_000),
    "vgg_musicnn": ("musicnn", 620_000),
    "short_chunk_cnn": ("short_chunk", 1_000_000),
    "short_chunk_resnet": ("short_chunk", 1_000_000),
    "sample_cnn": ("sample_cnn", 1_000_000),
    "spectrogram_transformer": ("transformer", 1_000_000),
}
NUM_CLASSES = 7

@functools.lru_cache(maxsize=None)
def built(name):
    return genrenet.build_model(name, num_classes=NUM_CLASSES)


def batch(samples, n=2, seed=0):
    """Tones plus noise, as in the registry-wide tests."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 22050.0
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(samples)
                  for i in range(n)]).astype(np.float32)
    return x, np.eye(NUM_CLASSES, dtype=np.float32)[np.arange(n) % NUM_CLASSES]


def test_all_zoo_models_are_registered_in_their_family():
    for name, (family, _) in ZOO.items():
        assert name in genrenet.list_models()
        assert registry.get_spec(name).family == family


@pytest.mark.parametrize("name", ZOO)
def test_info_defaults_and_size(name):
    info = genrenet.model_info(name)
    assert info["description"] and info["reference"] and "dropout" in info["defaults"]
    model = built(name)
    assert model.input_shape == (None, registry.get_spec(name).window_samples())
    assert [t.name for t in model.inputs] == ["waveform"] and model.output_names == ["probabilities"]
    assert model.count_params() <= ZOO[name][1]


@pytest.mark.parametrize("name", ZOO)
def test_forward_backward_and_keras_round_trip(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = genrenet.build_model(name, num_classes=NUM_CLASSES, dropout=0.0)
    x, y = batch(model.input_shape[-1])
    probs = model(x, training=False).numpy()
    assert probs.shape == (2, NUM_CLASSES) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    loss_fn, opt = keras.losses.CategoricalCrossentropy(), keras.optimizers.Adam(1e-3)
    with tf.GradientTape() as tape:
        before = loss_fn(y, model(x, training=True))
    grads = tape.gradient(before, model.trainable_variables)
    assert all(g is not None for g in grads)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    assert float(loss_fn(y, model(x, training=True))) < float(before)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


@pytest.mark.parametrize("name", ["spectrogram_transformer"])
def test_savedmodel_export(name, tmp_path):
    """The family with a custom layer (the registry-wide tests export every model)."""
    model = built(name)
    x, _ = batch(model.input_shape[-1])
    model.export(str(tmp_path / "sm"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(reloaded.serve(tf.constant(x)).numpy(), model(x, training=False), atol=1e-5)


def test_fcn_is_the_papers_five_block_stack_and_takes_short_windows():
    spec = registry.get_spec("fcn")
    assert spec.features.sample_rate == 12000 and spec.features.n_mels == 96
    assert spec.features.num_frames(spec.window_samples()) == 1366  # the paper's 29.1-s input
    model = built("fcn")
    assert [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)] == [f"conv{i}_conv" for i in
                                                                                   range(1, 6)]
    short = genrenet.build_model("fcn", num_classes=3, window_seconds=3.0)
    assert short(batch(short.input_shape[-1])[0]).shape == (2, 3)


def test_short_chunk_widths_and_depth():
    cnn = genrenet.build_model("short_chunk_cnn", channels=8)
    convs = [l for l in cnn.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.filters for l in convs] == [8, 8, 16, 16, 16, 16, 32]
    res = genrenet.build_model("short_chunk_resnet", channels=8)
    assert len([l for l in res.layers if isinstance(l, keras.layers.Add)]) == 7
    spec = registry.get_spec("short_chunk_cnn")
    assert spec.window_samples() == 59049 and spec.features.n_mels == 128


def test_sample_cnn_reads_raw_waveform():
    model = built("sample_cnn")
    assert model.input_shape == (None, 59049)
    assert not any(isinstance(l, genrenet.LogMelSpectrogram) for l in model.layers)
    assert model.get_layer("pointwise_relu").output.shape[1] == 1  # 3^10 samples → one step after 9 pools


def test_transformer_tokens_and_pooling():
    model = built("spectrogram_transformer")
    # 3 s at hop 160 → 301 frames × 128 mels → 18 × 8 non-overlapping 16×16 patches, plus [CLS]
    assert model.get_layer("cls_position").output.shape[1:] == (18 * 8 + 1, 96)
    mean = genrenet.build_model("spectrogram_transformer", num_classes=3, pooling="mean", depth=1,
                                patch_stride=(10, 10))
    assert mean(batch(mean.input_shape[-1])[0]).shape == (2, 3)
    with pytest.raises(ValueError, match="pooling"):
        genrenet.build_model("spectrogram_transformer", pooling="max")


def test_musicnn_from_scratch_has_the_checkpoint_layout():
    """Same parameter counts as the TF1 checkpoints (see ../shared/notes/musicnn_port.md), no package needed."""
    model = genrenet.build_model("musicnn", num_classes=50)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 787_159 and model.count_params() - trainable == 4_920
    assert model.get_layer("penultimate").output.shape[-1] == 200
    assert all(l.epsilon == 1e-3 for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
    vgg = genrenet.build_model("vgg_musicnn", num_classes=50)
    assert sum(int(np.prod(w.shape)) for w in vgg.trainable_weights) == 605_748
    with pytest.raises(ValueError, match="freeze_backbone"):
        genrenet.build_model("musicnn", freeze_backbone=True)


def test_pretrained_musicnn_round_trips_and_embeds(tmp_path):
    from genrenet.nn import penultimate_model

    model = genrenet.build_model("musicnn", num_classes=None, pretrained="msd")
    x, _ = batch(model.input_shape[-1])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
    assert model.output_shape == (None, 50)
    assert penultimate_model(loaded)(x).shape == (2, 200)
