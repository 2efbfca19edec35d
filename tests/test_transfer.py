"""Transfer learning through `train`: a frozen pretrained backbone, a new head, then fine-tuning."""
import numpy as np
import pytest

from conftest import run_cli

DATA = "synthetic:classes=3,clips=4,seconds=6.5"  # two musicnn windows per clip


def _weights(model, name):
    return [w.copy() for w in model.get_layer(name).get_weights()]


@pytest.mark.slow  # trains end to end
def test_frozen_head_then_fine_tuning_changes_only_what_it_should(tmp_path):
    import genrenet
    from genrenet.run import Run

    pretrained = genrenet.build_model("musicnn", num_classes=3, pretrained="msd")
    head_run = genrenet.train("musicnn", DATA, str(tmp_path / "head"), pretrained="msd", epochs=3, verbose=0)
    head_model = head_run.load_model()
    for layer in ("timbral_74_conv", "midend1_conv", "penultimate_dense", "penultimate"):
        for a, b in zip(_weights(pretrained, layer), _weights(head_model, layer)):
            np.testing.assert_array_equal(a, b)  # the backbone did not move
    assert not np.allclose(_weights(pretrained, "probabilities")[0], _weights(head_model, "probabilities")[0])
    settings = head_run.training
    assert (settings["pretrained"], settings["freeze_backbone"], settings["model_kwargs"]) == ("msd", True, {})

    tuned = genrenet.train("musicnn", DATA, str(tmp_path / "tuned"), pretrained="msd", epochs=2,
                           fine_tune_epochs=1, fine_tune_learning_rate=1e-4, patience=5, verbose=0)
    tuned_model = tuned.load_model()
    assert not np.allclose(_weights(pretrained, "midend1_conv")[0], _weights(tuned_model, "midend1_conv")[0])
    for a, b in zip(_weights(pretrained, "midend1_bn"), _weights(tuned_model, "midend1_bn")):
        np.testing.assert_array_equal(a, b)  # BatchNorm stays in inference mode while fine-tuning
    history = (tmp_path / "tuned" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + tuned.metrics["epochs_run"]
    assert Run(tuned.path).labels == ["ambient", "disco", "rock"]


def test_pretrained_errors_are_clear(tmp_path):
    r = run_cli("train", "cnn", "--pretrained", "msd", "--data", DATA, "--out", tmp_path / "x")
    assert r.returncode == 2 and "cnn has no pretrained weights 'msd'" in r.stderr
    r = run_cli("train", "musicnn", "--freeze-backbone", "--data", DATA, "--out", tmp_path / "y")
    assert r.returncode == 2 and "error: --freeze-backbone: needs pretrained weights" in r.stderr


def test_frozen_head_on_only_undecodable_files_says_what_was_skipped(tmp_path):
    import soundfile as sf

    nan = np.full(22050, 0.1, np.float32)
    nan[100] = np.nan  # a valid header: the file fails only when its audio is decoded
    for label in ("a", "b"):
        for i in range(2):
            (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
            sf.write(str(tmp_path / "data" / label / f"{label}{i}.wav"), nan, 22050, subtype="FLOAT")
    r = run_cli("train", "musicnn", "--pretrained", "msd", "--data", tmp_path / "data", "--out", tmp_path / "run",
                "--val-fraction", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "no usable training audio in at least two classes" in r.stderr and "4 files skipped: " in r.stderr
    assert "a/a0.wav: " in r.stderr and "NaN" in r.stderr and "and 1 more" in r.stderr, r.stderr


def test_logistic_head_is_the_same_softmax_dense_layer_as_the_fitted_regression():
    import keras
    from sklearn.linear_model import LogisticRegression

    from genrenet.training.transfer import logistic_head

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    x = (rng.standard_normal((60, 8)) * [1, 5, 0.1, 2, 1, 1, 3, 1] + labels[:, None] * 0.8 + 4).astype(np.float32)
    groups = np.repeat(np.arange(12), 5)  # 12 "clips" of 5 windows, 4 per class
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs))
    fitted = logistic_head(model, x, np.eye(3, dtype=np.float32)[labels], groups)
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    reference = LogisticRegression(C=fitted["C"], max_iter=2000).fit(z, labels)
    np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict_proba(z), atol=1e-4)


@pytest.mark.slow  # trains end to end
def test_train_head_logistic_writes_an_ordinary_run(tmp_path):
    import genrenet

    run = genrenet.train("musicnn", DATA, str(tmp_path / "lr"), pretrained="msd", head="logistic", verbose=0)
    assert run.training["head"] == "logistic"
    probs = run.load_model().predict(np.zeros((2, 47616), np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    r = run_cli("train", "cnn", "--head", "logistic", "--data", DATA, "--out", tmp_path / "x")
    assert r.returncode == 2 and "error: --head: chooses how a frozen pretrained backbone's head trains" in r.stderr
