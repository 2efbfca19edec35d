"""config.json has one part per subject (model, training, data, run) and is read back from either layout; a key
genrenet does not know is named with the closest one it does. Errors keep their class through ``train()`` and
name their parameter, and the command line prints the flag that sets it, leaving the message as it is."""
import json
import shutil
from pathlib import Path

import pytest

import genrenet
from conftest import TINY, write_tone
from genrenet.cli import main
from genrenet.errors import (ConfigError, DataServiceError, DatasetError, GenrenetError, ModelArgumentError,
                             StrategyError, TrainingError)
from genrenet.run import Run
from genrenet.training.config import TrainConfig
from genrenet.run.config import structured_config
from genrenet.training.config import load_run_config

FLAT_RUN = Path(__file__).parent / "data" / "flat_layout_run"  # made by tests/data/make_flat_layout_run.py
FLAT_DATA = "synthetic:classes=2,clips=4,seconds=2"
SMALL = {"filters": [4], "dense_units": [4]}


def _flat_config() -> dict:
    return json.loads((FLAT_RUN / "config.json").read_text())


def test_a_run_written_in_the_flat_layout_still_predicts(tmp_path):
    song = write_tone(tmp_path / "song.wav", seconds=2.5, sr=44100)
    [row] = genrenet.predict(str(FLAT_RUN), [str(song)])
    assert row["label"] in ("calm", "loud") and "error" not in row
    run = Run(FLAT_RUN)
    assert run.model_name == "cnn" and run.labels == ["calm", "loud"]
    assert run.hyperparameters == {"filters": [4, 8], "dense_units": [8], "dropout": 0.3}
    assert run.window_samples == run.sample_rate  # 1-s windows
    assert run.data_spec == FLAT_DATA and run.training["epochs"] == 1 and run.training["model_kwargs"] == {
        "filters": [4, 8], "dense_units": [8]}


def test_the_flat_layout_is_read_into_its_parts():
    config = structured_config(_flat_config())
    assert config["format"] == 2 and set(config) == {"format", "model", "training", "data", "run"}
    assert set(config["model"]) == {"name", "hyperparameters", "features", "window_seconds", "window_samples",
                                    "num_classes"}
    # every setting format 1 wrote, no other (it predates the multi-label settings, whose defaults apply)
    assert set(config["training"]) == set(TrainConfig.fields()) - {"multi_label", "pos_weight", "threshold_folds"}
    assert TrainConfig.from_dict(config["training"]).to_dict()["cache"] == "memory"  # format 1 wrote true
    assert config["data"] == {"spec": FLAT_DATA, "train_clips": 8, "val_clips": 0, "notes": []}
    assert config["run"]["replicas"] == 1 and config["run"]["global_batch_size"] == 32
    assert structured_config(config) == config  # the sectioned layout reads as itself


@pytest.mark.parametrize("config, message", [
    ({"format": 2, "model": {"name": "cnn", "featurs": {}}}, "unknown model key 'featurs' (did you mean 'features'?)"),
    ({"format": 2, "model": {"name": "cnn"}, "trainig": {}}, "unknown config.json part 'trainig' (did you mean "
                                                              "'training'?)"),
    ({"format": 2, "model": {"name": "cnn"}, "data": {"specs": "x"}}, "unknown data key 'specs' (did you mean "
                                                                      "'spec'?)"),
    ({"format": 2, "model": {"name": "cnn"}, "run": {"version": {}}}, "unknown run key 'version' (did you mean "
                                                                       "'versions'?)"),
    ({"model": "cnn", "window_sample": 16000}, "unknown config.json key 'window_sample' (did you mean "
                                               "'window_samples'?)"),
    ({"format": 3, "model": {"name": "cnn"}}, "format 3 is not one genrenet reads"),
])
def test_an_unknown_key_anywhere_is_named_with_the_closest_known_one(config, message):
    with pytest.raises(ConfigError) as e:
        structured_config(config)
    assert message in str(e.value)


def test_an_unknown_training_setting_is_named_when_the_run_is_trained_again(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"format": 2, "model": {"name": "cnn"}, "training": {"epoch": 5}}))
    with pytest.raises(ConfigError, match=r"unknown training setting 'epoch' \(did you mean 'epochs'\?\)"):
        load_run_config(path)


def test_an_ensemble_has_no_training_part_and_cannot_be_trained_again(tmp_path):
    config = structured_config(_flat_config())
    ensemble = {"format": 2, "model": {"name": "ensemble", "method": "mean", "weights": None,
                                       "members": [{"path": str(FLAT_RUN), "model": "cnn"}] * 2,
                                       **{k: config["model"][k] for k in ("features", "window_seconds",
                                                                          "window_samples", "num_classes")}}}
    assert structured_config(ensemble) == ensemble
    with pytest.raises(ConfigError, match="unknown model key 'hyperparameters'"):
        structured_config({"format": 2, "model": {**ensemble["model"], "hyperparameters": {}}})
    (tmp_path / "config.json").write_text(json.dumps(ensemble))
    with pytest.raises(ConfigError, match="ensemble was not trained"):
        load_run_config(tmp_path / "config.json")


def test_a_saved_run_config_gives_model_data_and_settings_from_either_layout(tmp_path):
    sectioned = tmp_path / "config.json"
    sectioned.write_text(json.dumps(structured_config(_flat_config())))
    for path in (FLAT_RUN / "config.json", sectioned):
        model, data, settings = load_run_config(path)
        assert (model, data) == ("cnn", FLAT_DATA)
        assert (settings.epochs, settings.window_seconds, settings.model_kwargs) == (1, 1.0,
                                                                                    {"filters": [4, 8],
                                                                                     "dense_units": [8]})


@pytest.mark.parametrize("field, value", [
    ("batch_size", 0), ("batch_size", "abc"), ("batch_size", 2.5), ("epochs", 0), ("learning_rate", 0),
    ("fine_tune_learning_rate", -1e-5), ("patience", -1), ("val_fraction", 1.0), ("crops_per_clip", 0),
    ("fine_tune_epochs", -1), ("window_seconds", 0), ("window_seconds", "long"), ("model_kwargs", [("dropout", 0.5)]),
    ("label_smoothing", -0.1), ("seed", "abc"), ("deterministic", "yes"), ("evaluate_val", 1),
    ("mixed_precision", "fp16"), ("strategy", "cluster"), ("lr_schedule", "linear"), ("head", "svm"),
])
def test_every_setting_out_of_range_or_of_the_wrong_type_is_a_config_error_naming_it(field, value):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{field: value}).check()
    assert e.value.param == field and str(e.value) == f"{field}: {e.value.message}"
    assert repr(value) in e.value.message


@pytest.mark.parametrize("name", ["features", "window_seconds", "num_classes", "spec_augment"])
def test_model_kwargs_hold_hyper_parameters_only(name):
    with pytest.raises(ConfigError, match=name) as e:
        TrainConfig(model_kwargs={name: 1}).check()
    assert e.value.param == "model_kwargs"


@pytest.mark.parametrize("settings, error, param", [
    ({"batch_size": 0}, ConfigError, "batch_size"),
    ({"model_kwargs": {"dropout": "abc"}}, ConfigError, "model_kwargs.dropout"),
    ({"model_kwargs": {"dropuot": 0.5}}, ModelArgumentError, "model_kwargs.dropuot"),
    ({"strategy": "multi_worker"}, StrategyError, "strategy"),
    ({"data_service": "http://localhost:5050", "cache": "/tmp/cache"}, DataServiceError, None),
    ({"resume": True}, ConfigError, "resume"),
])
def test_train_raises_each_error_as_its_own_class_before_writing_anything(tmp_path, monkeypatch, settings, error,
                                                                          param):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    out = None if "resume" in settings else str(tmp_path / "run")
    with pytest.raises(error) as e:
        genrenet.train("cnn", TINY, out, verbose=0, **settings)
    assert not isinstance(e.value, TrainingError) and e.value.param == param
    assert list(tmp_path.iterdir()) == []  # no run directory, not even runs/


def test_bad_data_raises_a_dataset_error_and_leaves_no_run_directory(tmp_path):
    with pytest.raises(DatasetError, match="path not found"):
        genrenet.train("cnn", str(tmp_path / "nowhere"), str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()


def test_resume_names_the_run_directory_or_continues_out(tmp_path):
    with pytest.raises(ConfigError, match="name different run directories") as e:
        genrenet.train("cnn", TINY, str(tmp_path / "a"), resume=str(tmp_path / "b"), verbose=0)
    assert e.value.param == "resume"
    run = genrenet.train("cnn", TINY, resume=str(tmp_path / "b"), epochs=1, window_seconds=1.0, verbose=0,
                         model_kwargs=SMALL)  # nothing there yet: it starts from the first epoch
    assert Path(run.path) == tmp_path / "b" and run.training["epochs"] == 1


def _cli(capsys, *argv):
    """``genrenet ARGV`` in this process: (exit code, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # usage errors end in argparse's own exit, as for every command-line tool
        code = e.code
    return code, capsys.readouterr().err


def test_the_command_line_names_the_flag_of_a_bad_setting_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _cli(capsys, "train", "cnn", "--batch-size", "0", "--out", tmp_path / "run")
    assert code == 2 and err.endswith("genrenet train: error: argument --batch-size: must be ≥ 1, got 0\n"), err
    code, err = _cli(capsys, "train", "cnn", "--data", TINY, "--set", "dropout=abc")
    assert (code, err) == (2, "genrenet: error: --set dropout: must be a number, got 'abc'\n")
    code, err = _cli(capsys, "train", "cnn", "--resume")
    assert code == 2 and err.startswith("genrenet: error: --resume: needs the run directory")
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_prints_a_path_with_a_setting_like_name_as_it_is(tmp_path, capsys):
    music = tmp_path / "music" / "seed=1" / "songs"
    code, err = _cli(capsys, "train", "cnn", "--data", music, "--out", tmp_path / "run")
    assert (code, err) == (2, f"genrenet: error: {music}: path not found\n")
    assert not (tmp_path / "run").exists()


def test_train_config_accepts_a_run_in_the_flat_layout(tmp_path, capsys):
    shutil.copytree(FLAT_RUN, tmp_path / "flat")
    code, err = _cli(capsys, "train", "--config", tmp_path / "flat" / "config.json", "--out", tmp_path / "again",
                     "--verbose", "0")
    assert code == 0, err
    again = Run(tmp_path / "again")
    assert (again.model_name, again.data_spec, again.config["format"]) == ("cnn", FLAT_DATA, 2)
    assert again.hyperparameters == Run(FLAT_RUN).hyperparameters and again.training["window_seconds"] == 1.0


def test_an_error_without_a_parameter_is_printed_whole():
    from genrenet.cli import build_parser, error_line

    parser = build_parser()
    assert error_line(GenrenetError("/music/seed=1/a.wav: cannot decode"), parser, "train") == \
        "/music/seed=1/a.wav: cannot decode"
    assert error_line(ConfigError("must be ≥ 0, got -1", param="fine_tune_epochs"), parser, "train") == \
        "--fine-tune-epochs: must be ≥ 0, got -1"
