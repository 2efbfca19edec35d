"""The training defaults chosen on real music (60 epochs, cosine learning rate, mixup) are what `genrenet train`
does unless told otherwise, and each can be switched off."""
import csv
import json

import numpy as np
import pytest

from conftest import TINY, run_cli
from genrenet.training import trainer as training
from genrenet.training import config as train_config
from genrenet.training.config import HEAD_EPOCHS, TrainConfig

SMALL = ["--set", "filters=[8,16]", "--set", "dense_units=[16]", "--verbose", "0"]


def _history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_cli_defaults_are_the_measured_ones_and_the_learning_rate_follows_a_cosine(tmp_path):
    run = tmp_path / "run"
    r = run_cli("train", "cnn", "--data", TINY, "--out", run, "--epochs", "4", *SMALL)
    assert r.returncode == 0, r.stderr
    config = json.loads((run / "config.json").read_text())["training"]
    assert config["lr_schedule"] == "cosine" and list(config["augment"]) == ["pitch", "mixup"]
    rates = [float(row["learning_rate"]) for row in _history(run)]
    expected = [1e-3 * 0.5 * (1 + np.cos(np.pi * e / 4)) for e in range(4)]  # 1e-3, 8.5e-4, 5e-4, 1.5e-4
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    assert training.cosine_learning_rate(1e-3, 4)(4) < 1e-12  # decays to ~0 at the end


def test_the_defaults_can_be_switched_off(tmp_path):
    run = tmp_path / "plain"
    r = run_cli("train", "cnn", "--data", TINY, "--out", run, "--epochs", "2", "--lr-schedule", "constant",
                "--augment", "none", *SMALL)
    assert r.returncode == 0, r.stderr
    config = json.loads((run / "config.json").read_text())["training"]
    assert config["lr_schedule"] == "constant" and config["augment"] == {}
    assert all("learning_rate" not in row or float(row["learning_rate"]) == 1e-3 for row in _history(run))
    r = run_cli("train", "cnn", "--data", TINY, "--out", tmp_path / "bad", "--lr-schedule", "linear", *SMALL)
    assert r.returncode == 2 and "invalid choice: 'linear'" in r.stderr


def test_without_epochs_a_run_trains_the_default_60_and_says_so_in_its_config(tmp_path, monkeypatch):
    monkeypatch.setattr(train_config, "DEFAULT_EPOCHS", 2)  # the default, not the number, is what is tested
    run = training.train("cnn", TINY, str(tmp_path / "run"), verbose=0,
                         model_kwargs={"filters": [8, 16], "dense_units": [16]})
    assert run.training["epochs"] == 2 and run.metrics["epochs_run"] == 2
    assert list(run.training["augment"]) == ["pitch", "mixup"]
    assert TrainConfig().epochs is None  # resolved per kind of training


@pytest.mark.slow  # trains a head on the shipped musicnn weights for 30 epochs
def test_a_frozen_pretrained_head_defaults_to_30_constant_epochs_without_augmentation(tmp_path):
    run = tmp_path / "head"
    r = run_cli("train", "musicnn", "--pretrained", "msd", "--data", "synthetic:classes=3,clips=4,seconds=6.5",
                "--out", run, "--verbose", "0")
    assert r.returncode == 0, r.stderr
    config = json.loads((run / "config.json").read_text())["training"]
    assert (config["epochs"], config["lr_schedule"], config["augment"]) == (HEAD_EPOCHS, "constant", {})
