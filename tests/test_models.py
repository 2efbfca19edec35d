"""Every registered model, through everything a user does with it (timm/keras-hub style, over list_models())."""
import functools

import numpy as np
import pytest
import tensorflow as tf

import genrenet
from genrenet import registry

NUM_CLASSES = 7
MODELS = genrenet.list_models()


@functools.lru_cache(maxsize=None)
def _built(name):
    """One default build per model, shared by the read-only tests (building is a large part of their time)."""
    return genrenet.build_model(name, num_classes=NUM_CLASSES)


def _batch(model, n=2, seed=0):
    rng = np.random.default_rng(seed)
    samples = model.input_shape[-1]
    t = np.arange(samples) / 22050.0
    # music-like input: tones plus noise, different per example
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(samples)
                  for i in range(n)]).astype(np.float32)
    y = np.eye(NUM_CLASSES, dtype=np.float32)[np.arange(n) % NUM_CLASSES]
    return x, y


def test_registry_lists_the_articles_models():
    for name in ("cnn", "lstm", "lstm_attention", "crnn", "crnn_attention", "cnn_rnn_fusion"):
        assert name in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_model_info_is_complete(name):
    info = genrenet.model_info(name)
    assert info["description"] and info["reference"]
    assert info["window_seconds"] > 0
    assert genrenet.FeatureConfig.from_dict(info["features"]).sample_rate > 0
    assert "dropout" in info["defaults"]


@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_names_and_no_nan(name):
    model = _built(name)
    assert model.input_shape[-1] == registry.get_spec(name).window_samples()
    assert [t.name for t in model.inputs] == ["waveform"]
    assert model.output_names == ["probabilities"]
    x, _ = _batch(model)
    probs = model(x, training=False).numpy()
    assert probs.shape == (2, NUM_CLASSES)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_lowers_the_loss(name):
    import keras

    keras.utils.set_random_seed(0)
    model = genrenet.build_model(name, num_classes=NUM_CLASSES, dropout=0.0)
    x, y = _batch(model, n=4)  # with 2 examples BatchNorm pins features to ±1 and steps can stall
    loss_fn = keras.losses.CategoricalCrossentropy()
    opt = keras.optimizers.Adam(1e-4)
    before = float(loss_fn(y, model(x, training=True)))
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads), "some trainable weights get no gradient"
    opt.apply_gradients(zip(grads, model.trainable_variables))
    after = float(loss_fn(y, model(x, training=True)))
    assert after < before


@pytest.mark.parametrize("name", MODELS)
def test_keras_save_load_round_trip(name, tmp_path):
    import keras

    model = _built(name)
    x, _ = _batch(model)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_savedmodel_export_reloads_with_same_probabilities(name, tmp_path):
    model = _built(name)
    x, _ = _batch(model)
    model.export(str(tmp_path / "sm"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(reloaded.serve(tf.constant(x)).numpy(), model(x, training=False), atol=1e-5)


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError) as e:
        genrenet.build_model("no_such_model")
    assert "crnn_attention" in str(e.value)


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        genrenet.register_model("cnn", description="dup")(lambda **kw: None)


def test_unknown_hyper_parameter_names_the_valid_ones():
    with pytest.raises(TypeError, match="filters"):
        genrenet.build_model("cnn", filtrs=(8,))


def test_hyper_parameters_and_features_can_be_overridden():
    model = genrenet.build_model("cnn", num_classes=3, filters=(8, 16), window_seconds=1.0,
                                 features=genrenet.FeatureConfig(sample_rate=16000, n_mels=64))
    assert model.input_shape == (None, 16000)
    assert model.output_shape == (None, 3)
    assert model.get_layer("log_mel").config.n_mels == 64


def test_a_new_architecture_is_one_decorated_function():
    import keras

    from genrenet.nn import classifier, global_pool_1d, spectrogram_input

    @genrenet.register_model("test_tiny_mlp", description="mean+max of log-mel → softmax", reference="test")
    def tiny(num_classes=10, *, features, window_seconds, dropout=0.0):
        waveform, x = spectrogram_input(features, window_seconds)
        return keras.Model(waveform, classifier(global_pool_1d(x), num_classes))

    try:
        assert "test_tiny_mlp" in genrenet.list_models()
        assert genrenet.build_model("test_tiny_mlp", num_classes=4).output_shape == (None, 4)
    finally:
        registry._REGISTRY.pop("test_tiny_mlp")
