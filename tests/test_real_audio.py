"""Real music: train and evaluate on the GTZAN dev clips beside the repo (slow; CI runs it with -m slow)."""
import json

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def test_train_and_evaluate_crnn_attention_on_real_gtzan_clips(gtzan_dev, tmp_path):
    run = tmp_path / "run"
    r = run_cli("train", "crnn_attention", "--data", gtzan_dev, "--out", run, "--epochs", "2", "--verbose", "2")
    assert r.returncode == 0, r.stderr
    assert "40 clips, 10 classes" in r.stdout
    assert "no validation split: a class has only 4 training clips" in r.stdout  # the default on 4 clips/class
    r = run_cli("train", "crnn_attention", "--data", gtzan_dev, "--out", tmp_path / "held", "--epochs", "1",
                "--verbose", "2", "--val-fraction", "0.25")
    assert r.returncode == 0, r.stderr
    assert "held out by clip instead" in r.stdout  # single-artist classes are said, not hidden
    config = json.loads((tmp_path / "held" / "config.json").read_text())
    assert config["val_clips"] >= 10 and config["train_clips"] + config["val_clips"] == 40  # 1+ per class
    r = run_cli("evaluate", run, "--data", gtzan_dev, "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout.strip().splitlines()[-1])
    assert metrics["num_clips"] == 40 and metrics["split"] == "all"
    assert sum(map(sum, metrics["confusion_matrix"])) == 40
    assert metrics["window_accuracy"] > 0 and 0 <= metrics["clip_accuracy"] <= 1
    # every whole 3-s window of a clip counts: 10 for a 30.01-s clip, 9 for country.00003 (29.996 s)
    import soundfile as sf

    predictions = (run / "eval-gtzan_dev-all" / "predictions.csv").read_text().splitlines()
    for line in predictions[1:]:
        path, windows = line.split(",")[1], int(line.split(",")[4])
        assert windows == 1 + (sf.info(path).frames - 66150) // 66150, path
