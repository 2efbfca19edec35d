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
    config = json.loads((tmp_path / "held" / "config.json").read_text())["data"]
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


def test_crnn_attention_with_default_settings_beats_the_mfcc_svm_baseline_on_unseen_real_music(gtzan_dev, tmp_path):
    """`genrenet train crnn_attention` with every setting at its default learns real music from 20
    clips clearly better than classic features + SVM on the same held-out clips (fold 0 of the artist-aware
    2-fold split; measured 0.70 vs 0.50, both folds on the docs' benchmarks page)."""
    import numpy as np

    from benchmarks.gtzan_dev import clip_features, svm_predict
    from genrenet.data import kfold, load_dataset
    from genrenet.infer.evaluate import evaluate_clips

    dataset = load_dataset(str(gtzan_dev))
    folds, _ = kfold(dataset.clips, 2, 0)
    test, train = folds[0], folds[1]
    assert not {c.id for c in test} & {c.id for c in train}
    run = tmp_path / "run"
    r = run_cli("train", "crnn_attention", "--data", f"{gtzan_dev}?folds=2&fold=0", "--out", run, "--verbose", "0")
    assert r.returncode == 0, r.stderr
    from genrenet.run import Run

    trained = Run(str(run))
    metrics = evaluate_clips(trained.load_model(), trained.labels, test, sample_rate=trained.sample_rate,
                             window_samples=trained.window_samples, verbose=0)
    svm = svm_predict(np.stack([clip_features(c.path) for c in train]), [c.label for c in train],
                      np.stack([clip_features(c.path) for c in test]))
    svm_accuracy = float(np.mean([p == c.label for p, c in zip(svm, test)]))
    assert metrics["num_clips"] == len(test) == 20
    assert metrics["clip_accuracy"] >= svm_accuracy + 0.10, (metrics["clip_accuracy"], svm_accuracy)
