"""TrainConfig holds every training setting; config.json records them resolved, and `train --config` retrains the
same run."""
import json

import pytest

import genrenet
from conftest import TINY, run_cli
from genrenet.errors import ConfigError, GenrenetError
from genrenet.training.config import DEFAULT_EPOCHS, HEAD_EPOCHS, TrainConfig

SMALL = {"filters": [8, 16], "dense_units": [16]}


def test_every_setting_has_a_default_and_a_docstring():
    import inspect

    source = inspect.getsource(TrainConfig)
    for name in TrainConfig.fields():
        field_line = next(i for i, line in enumerate(source.splitlines()) if line.strip().startswith(f"{name}:"))
        assert source.splitlines()[field_line + 1].strip().startswith('"""'), f"{name} has no docstring"
    TrainConfig()  # every field has a default


def test_resolved_settings_depend_on_the_kind_of_training():
    scratch = TrainConfig().resolved()
    assert (scratch.epochs, scratch.lr_schedule) == (DEFAULT_EPOCHS, "cosine")
    assert list(scratch.augment) == ["pitch", "mixup"]
    head = TrainConfig(pretrained="msd").resolved()
    assert (head.epochs, head.lr_schedule, head.augment, head.freeze_backbone) == (HEAD_EPOCHS, "constant", {}, True)
    assert TrainConfig(epochs=5, lr_schedule="constant", augment="none").resolved().epochs == 5


def test_early_stopping_needs_validation_clips_to_cut_a_cosine_schedule():
    scratch = TrainConfig().resolved()
    assert scratch.patience is None  # known once the data says whether there are validation clips
    assert scratch.with_patience(has_validation=True).patience == 10
    assert scratch.with_patience(has_validation=False).patience == DEFAULT_EPOCHS  # the whole schedule runs
    assert TrainConfig(fine_tune_epochs=5).resolved().with_patience(False).patience == DEFAULT_EPOCHS + 5
    assert TrainConfig(pretrained="msd").resolved().with_patience(False).patience == 10  # constant schedule
    assert TrainConfig(patience=3).resolved().with_patience(False).patience == 3  # as given


def test_round_trips_through_a_dict_and_rejects_unknown_or_bad_settings():
    cfg = TrainConfig(epochs=3, seed=4, model_kwargs=SMALL, cache="/tmp/cache").resolved()
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="unknown training setting 'epoch' \\(did you mean 'epochs'\\?\\)"):
        TrainConfig().replace(epoch=3)
    with pytest.raises(ConfigError, match="unknown training setting 'epoch' \\(did you mean 'epochs'\\?\\)"):
        TrainConfig.from_dict({"epoch": 5})  # a typo never passes for the default
    with pytest.raises(ConfigError, match="^lr_schedule: must be one of cosine, constant, got 'linear'$"):
        TrainConfig(lr_schedule="linear").check()
    with pytest.raises(ConfigError, match="^label_smoothing: must be in \\[0, 1\\), got 1.0$"):
        TrainConfig(label_smoothing=1.0).check()
    with pytest.raises(ConfigError, match="not to the logistic head"):
        TrainConfig(label_smoothing=0.1, pretrained="msd", head="logistic").check()
    with pytest.raises(ConfigError, match="^freeze_backbone: needs pretrained weights"):
        TrainConfig(freeze_backbone=True).check()
    assert issubclass(ConfigError, GenrenetError) and issubclass(ConfigError, ValueError)


def test_fields_override_the_config_and_config_json_holds_them_resolved(tmp_path):
    config = TrainConfig(epochs=5, seed=1, model_kwargs=SMALL, augment="none")
    run = genrenet.train("cnn", TINY, str(tmp_path / "run"), config=config, epochs=1, verbose=0)
    saved = run.config["training"]
    assert (saved["epochs"], saved["seed"], saved["augment"], saved["lr_schedule"]) == (1, 1, {}, "cosine")
    assert run.config["data"]["val_clips"] == 0 and saved["patience"] == 1  # 4 clips per class: no stopping
    assert saved["model_kwargs"] == SMALL and TrainConfig.from_dict(run.training) == TrainConfig.from_dict(saved)
    # every builder keyword, with the value used
    assert run.hyperparameters == {"filters": [8, 16], "dense_units": [16], "dropout": 0.3}
    assert run.config["model"]["window_seconds"] == 3.0 and run.data_spec == TINY
    assert "tensorflow" in run.config["run"]["versions"] and run.model_name == "cnn"


@pytest.mark.slow  # trains end to end
def test_train_config_retrains_the_same_run_with_the_same_history(tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    r = run_cli("train", "cnn", "--data", TINY, "--out", first, "--epochs", "2", "--seed", "5", "--deterministic",
                "--set", "filters=[8,16]", "--set", "dense_units=[16]", "--verbose", "0")
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--config", first / "config.json", "--out", again, "--verbose", "0")
    assert r.returncode == 0, r.stderr
    assert (first / "history.csv").read_text() == (again / "history.csv").read_text()
    a, b = (json.loads((d / "config.json").read_text()) for d in (first, again))
    a["run"].pop("command"), b["run"].pop("command")
    assert a == b
    r = run_cli("train", "--config", first / "config.json", "--out", tmp_path / "third", "--epochs", "1",
                "--verbose", "0")  # a flag overrides the saved setting
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "third" / "config.json").read_text())["training"]["epochs"] == 1


@pytest.mark.slow  # trains end to end
def test_label_smoothing_reaches_the_training_loss(tmp_path):
    histories = []
    for smoothing in (0.0, 0.5):
        out = tmp_path / f"smooth{smoothing}"
        r = run_cli("train", "cnn", "--data", TINY, "--out", out, "--epochs", "1", "--seed", "5", "--deterministic",
                    "--label-smoothing", str(smoothing), "--set", "filters=[8,16]", "--set", "dense_units=[16]",
                    "--verbose", "0")
        assert r.returncode == 0, r.stderr
        assert json.loads((out / "config.json").read_text())["training"]["label_smoothing"] == smoothing
        histories.append((out / "history.csv").read_text())
    assert histories[0] != histories[1]  # same seed, same batches: only the targets of the loss differ


def test_label_smoothing_reaches_a_frozen_backbones_head():
    import keras
    import numpy as np

    from genrenet.training.transfer import keras_head

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 8)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 64)]
    losses = []
    for smoothing in (0.0, 0.5):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((8,))
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs))
        history = keras_head(model, x, y, epochs=2, learning_rate=1e-3, batch_size=16, label_smoothing=smoothing)
        losses.append(history.history["loss"])
    assert losses[0] != losses[1]


def test_every_setting_is_a_train_flag(capsys):
    from genrenet.cli import build_parser

    parser = build_parser()
    args = vars(parser.parse_args(["train", "cnn", "--memory-budget", "1.5G", "--no-evaluate-val",
                                   "--label-smoothing", "0.1"]))
    assert (args["memory_budget"], args["evaluate_val"], args["label_smoothing"]) == (3 << 29, False, 0.1)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    flags = {w.strip("[],|") for w in capsys.readouterr().out.split()}
    missing = [name for name in TrainConfig.fields() if "--" + name.replace("_", "-") not in flags]
    assert missing == ["model_kwargs"]  # given as --set NAME=VALUE
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "cnn", "--memory-budget", "lots"])


def test_train_without_model_or_config_says_what_it_needs():
    r = run_cli("train", "--data", TINY)
    assert r.returncode == 2 and "train needs MODEL, or --config" in r.stderr and "Traceback" not in r.stderr
