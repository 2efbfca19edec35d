"""Calibrated probabilities and abstention: the temperature fit, its use in predict, evaluate and exports, the
uncertain flag, and files with nothing to classify."""
import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, TINY, run_cli, write_tone

TEMPERATURE = 2.0


# --- the numbers ------------------------------------------------------------------------------------------------

def test_metrics_match_hand_computed_values():
    from genrenet.infer.calibration import calibration_metrics

    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    m = calibration_metrics(probs, y)
    # four clips in four different bins of 15: gaps 0.1, 0.8, 0.4, 0.3
    assert m["ece"] == pytest.approx((0.1 + 0.8 + 0.4 + 0.3) / 4)
    assert m["nll"] == pytest.approx(-(math.log(0.9) + math.log(0.2) + math.log(0.6) + math.log(0.7)) / 4)
    assert m["brier"] == pytest.approx((0.02 + 1.28 + 0.32 + 0.18) / 4)


def test_temper_is_a_temperature_on_the_logits():
    from genrenet.infer.calibration import temper

    p = np.array([0.5, 0.25, 0.25])
    expected = np.sqrt(p) / np.sqrt(p).sum()  # softmax(log p / 2) ∝ p ** (1/2)
    np.testing.assert_allclose(temper(p, 2.0), expected, rtol=1e-9)
    import tensorflow as tf

    np.testing.assert_allclose(temper(tf.constant(p[None], tf.float32), 2.0).numpy()[0], expected, rtol=1e-5)


def test_fit_recovers_the_temperature_of_an_over_confident_model():
    from genrenet.infer.calibration import calibration_metrics, temper
    from genrenet.training.calibration import calibration, fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (3000, 4))
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=p) for p in true_p])
    over_confident = temper(true_p, 1 / 2.5)  # logits × 2.5
    owner = np.arange(len(y))  # one window per clip
    t = fit_temperature(over_confident, owner, y)
    assert t == pytest.approx(2.5, rel=0.1)
    fitted = calibration(over_confident, owner, y, fitted_on="synthetic")
    before = calibration_metrics(over_confident, y)["ece"]
    assert before > 0.1
    assert fitted["before"]["ece"] == pytest.approx(before)
    assert fitted["after"]["ece"] < 0.03 < before
    assert fitted["after"]["nll"] < fitted["before"]["nll"]
    assert 0.3 <= fitted["min_confidence"] <= 0.8


def test_threshold_is_where_held_out_clips_are_right_often_enough():
    from genrenet.training.calibration import choose_min_confidence

    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45]])
    y = np.array([0, 0, 0, 1, 1])  # right at 0.95, 0.9, 0.7; wrong at 0.6 and 0.55
    assert choose_min_confidence(probs, y) == pytest.approx(0.7)


# --- a calibrated run ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def calibrated_run(tiny_run, tmp_path_factory):
    """tiny_run (trained without held-out clips) with a calibration.json of temperature 2."""
    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(tiny_run, run)
    (run / "calibration.json").write_text(json.dumps(
        {"method": "temperature", "temperature": TEMPERATURE, "min_confidence": 0.6, "fitted_on": "test",
         "num_clips": 1, "before": {"ece": 0.2, "nll": 1.0, "brier": 0.5},
         "after": {"ece": 0.01, "nll": 0.9, "brier": 0.4}}))
    return run


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """One-window music, and files with nothing to classify."""
    d = tmp_path_factory.mktemp("audio")
    files = {"tone": write_tone(d / "tone.wav", seconds=1.5, sr=16000)}
    sf.write(d / "silent.wav", np.zeros(32000, np.float32), 16000)
    sf.write(d / "quiet.wav", (1e-5 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32), 16000)
    write_tone(d / "short.wav", seconds=0.2, sr=16000)
    nan = np.full(32000, np.nan, np.float32)
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    whole = write_tone(d / "whole.wav", seconds=30, sr=16000)
    (d / "truncated.wav").write_bytes(whole.read_bytes()[:3000])  # the header still promises 30 s
    for name in ("silent", "quiet", "short", "nan", "truncated"):
        files[name] = d / f"{name}.wav"
    return files


def test_predict_applies_the_runs_temperature(tiny_run, calibrated_run, audio_files):
    from genrenet.infer.calibration import temper
    from genrenet.infer.classifier import Classifier

    raw = Classifier.from_preset(str(tiny_run)).predict([audio_files["tone"]], verbose=0)[0]
    calibrated = Classifier.from_preset(str(calibrated_run)).predict([audio_files["tone"]], verbose=0)[0]
    assert raw["windows"] == calibrated["windows"] == 1
    labels = list(raw["probabilities"])
    p = np.array([raw["probabilities"][l] for l in labels])
    q = np.array([calibrated["probabilities"][l] for l in labels])
    np.testing.assert_allclose(q, temper(p, TEMPERATURE), atol=1e-6)
    assert not np.allclose(p, q)
    assert raw["label"] == calibrated["label"]


def test_uncertain_follows_min_confidence(calibrated_run, audio_files):
    from genrenet.infer.classifier import Classifier

    clf = Classifier.from_preset(str(calibrated_run))
    row = clf.predict([audio_files["tone"]], verbose=0)[0]
    top = row["top"][0][1]
    assert row["uncertain"] == (top < 0.6)  # the run's stored threshold
    assert clf.predict([audio_files["tone"]], min_confidence=1.0, verbose=0)[0]["uncertain"] is True
    assert clf.predict([audio_files["tone"]], min_confidence=0.0, verbose=0)[0]["uncertain"] is False
    from genrenet.errors import ConfigError

    with pytest.raises(ConfigError, match="min_confidence"):
        clf.predict([audio_files["tone"]], min_confidence=1.5, verbose=0)


def test_files_with_nothing_to_classify_get_no_label(calibrated_run, audio_files):
    from genrenet.infer.classifier import Classifier

    rows = {r["file"]: r for r in Classifier.from_preset(str(calibrated_run)).predict(
        [audio_files[k] for k in ("silent", "quiet", "short", "nan", "truncated", "tone")], verbose=0)}
    expected = {"silent": "silent", "quiet": "near-silent", "short": "too short", "nan": "NaN",
                "truncated": "truncated"}
    for name, words in expected.items():
        row = rows[str(audio_files[name])]
        assert row["label"] is None and "error" not in row, row
        assert words in row["reason"], row
        assert "probabilities" not in row
    assert rows[str(audio_files["tone"])]["label"] is not None


def test_cli_says_unsure_and_no_genre(calibrated_run, audio_files):
    r = run_cli("predict", calibrated_run, audio_files["tone"], audio_files["silent"], "--min-confidence", "1")
    assert r.returncode == 1 and "1 of 2 files failed" in r.stderr, r.stderr  # the silent file got no genre
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert lines[str(audio_files["tone"])].startswith("unsure: ")
    assert " or " in lines[str(audio_files["tone"])]
    assert lines[str(audio_files["silent"])].startswith("no genre: is silent")


def test_evaluate_reports_calibration_and_draws_reliability(calibrated_run, tmp_path):
    from genrenet.infer.evaluate import evaluate

    metrics = evaluate(str(calibrated_run), TINY, out=str(tmp_path / "eval"), verbose=0)
    stored = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for key in ("ece", "nll", "brier"):
        assert stored[key] == pytest.approx(metrics[key])
        assert stored[key] >= 0
    assert stored["ece_bins"] == 15
    assert (tmp_path / "eval" / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (calibrated_run / "README.md").read_text()
    assert "| ECE |" in card or "ECE |" in card
    assert "temperature scaling, T = 2.000" in card


# --- exports ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def calibrated_export(calibrated_run, tmp_path_factory):
    from genrenet.serve.export import export

    return export(str(calibrated_run), str(tmp_path_factory.mktemp("export")), verbose=0)


def test_savedmodel_applies_the_temperature(calibrated_run, calibrated_export, audio_files):
    import tensorflow as tf

    from genrenet.infer.classifier import Classifier

    keras_row = Classifier.from_preset(str(calibrated_run)).predict([audio_files["tone"]], verbose=0)[0]
    export_clf = Classifier.from_preset(calibrated_export)
    export_row = export_clf.predict([audio_files["tone"]], verbose=0)[0]
    for label, p in keras_row["probabilities"].items():
        assert export_row["probabilities"][label] == pytest.approx(p, abs=1e-5)
    assert export_clf.calibration["temperature"] == TEMPERATURE
    assert export_row["uncertain"] == keras_row["uncertain"]
    loaded = tf.saved_model.load(calibrated_export)
    for bad in (np.full((1, 16000), np.nan, np.float32), np.zeros((1, 0), np.float32)):
        with pytest.raises(tf.errors.InvalidArgumentError):
            loaded.signatures["serving_default"](waveform=tf.constant(bad))
    rng = np.random.default_rng(0)
    for junk in (rng.bytes(3000), b"RIFF" + rng.bytes(4) + b"WAVE" + rng.bytes(15), b""):
        with pytest.raises(tf.errors.InvalidArgumentError):
            loaded.signatures["classify_wav"](wav_bytes=tf.constant([junk]))


# --- the default preset --------------------------------------------------------------------------------------------

def test_default_preset_states_its_calibration():
    folder = REPO / "genrenet" / "presets" / "musicnn-msd-gtzan"
    calibration = json.loads((folder / "calibration.json").read_text())
    assert calibration["method"] == "temperature" and calibration["fitted_on"].startswith("out-of-fold")
    crossed = calibration["cross_fitted"]["ece"]
    # the temperature lowers the out-of-fold NLL, and the ECE measured on folds it was not fitted on is lower
    # than before calibration
    assert calibration["after"]["nll"] < calibration["before"]["nll"]
    assert crossed < calibration["before"]["ece"]
    preset = json.loads((folder / "preset.json").read_text())
    assert preset["ece"] == pytest.approx(crossed)
    assert f"ECE {crossed:.3f}" in (folder / "README.md").read_text()


@pytest.mark.slow
def test_training_with_held_out_clips_writes_calibration(tmp_path):
    from genrenet.infer.classifier import Classifier
    from genrenet.training.trainer import train

    run = train("cnn", TINY, str(tmp_path / "run"), epochs=1, val_fraction=0.5, verbose=0,
                model_kwargs={"filters": [8, 16], "dense_units": [16]})
    fitted = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert fitted["method"] == "temperature" and fitted["temperature"] > 0
    assert fitted["after"]["nll"] <= fitted["before"]["nll"] + 1e-9
    assert fitted["fitted_on"].endswith("validation clips")
    assert Classifier.from_preset(run.path).calibration == fitted


def test_app_says_unsure_and_no_genre(calibrated_run, audio_files):
    pytest.importorskip("gradio")
    from genrenet.infer.classifier import Classifier
    from genrenet.serve.app import chart_scores, classify_file, verdict

    clf = Classifier.from_preset(str(calibrated_run))
    silent, windows = classify_file(clf, audio_files["silent"], 2)
    assert silent["label"] is None and "silent" in silent["reason"] and windows is None
    assert chart_scores(silent) == {} and verdict(silent).startswith("**no genre: is silent")
    row, _ = classify_file(clf, audio_files["tone"], 2)
    assert verdict(dict(row, uncertain=False)) == ""
    assert verdict(dict(row, uncertain=True)).startswith(f"**unsure: {row['top'][0][0]} or {row['top'][1][0]}")
