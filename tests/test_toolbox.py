"""What a Keras user reaches for: quiet logs without TensorFlow's banner or progress-bar redraws in files,
TensorBoard events of every run and evaluation, and a model card beside the model."""
import csv
import io
import json

import numpy as np
import pytest

from conftest import run_cli

yaml = pytest.importorskip("yaml")

DATA = "synthetic:classes=3,clips=10,seconds=3.5"  # 10 clips per class: a validation part is held out
TEST_DATA = "synthetic:classes=3,clips=4,seconds=3.5,seed=1"
BANNER = ("absl::InitializeLog", "oneDNN", "cpu_feature_guard", "To enable the following instructions",
          "This TensorFlow binary")


def _assert_plain(text):
    assert "\x1b" not in text and "\r" not in text, text[:500]
    noise = [line for line in text.splitlines() if any(mark in line for mark in BANNER)]
    assert not noise, noise


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A cnn trained for 2 epochs by the command line with its output going to files, as in CI."""
    run = tmp_path_factory.mktemp("toolbox") / "run"
    r = run_cli("train", "cnn", "--data", DATA, "--out", run, "--epochs", "2", "--set", "filters=[8,16]",
                "--set", "dense_units=[16]")
    assert r.returncode == 0, r.stderr
    return run, r


def test_models_prints_no_tensorflow_banner():
    r = run_cli("models")
    assert r.returncode == 0 and "cnn" in r.stdout
    _assert_plain(r.stdout + r.stderr)


def test_train_into_a_log_file_writes_one_plain_line_per_epoch(cli_run):
    _, r = cli_run
    _assert_plain(r.stdout + r.stderr)
    lines = r.stdout.splitlines()
    epochs = [i for i, line in enumerate(lines) if line.startswith("Epoch ")]
    assert [lines[i] for i in epochs] == ["Epoch 1/2", "Epoch 2/2"]
    for i in epochs:  # Keras verbose 2: the epoch's metrics on the next line, once
        assert " - loss: " in lines[i + 1] and " - val_loss: " in lines[i + 1]


def _scalars(folder):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    values = {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
              for tag in acc.Tags()["tensors"] if not acc.Tensors(tag)[0].tensor_proto.string_val}  # scalars only
    return acc, values


def test_training_writes_tensorboard_events_per_epoch(cli_run):
    run, _ = cli_run
    with open(run / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    acc, train = _scalars(run / "logs" / "train")
    assert "keras" in acc.Tags()["tensors"]  # the model graph (TensorBoard's Graphs tab, conceptual graph)
    assert [step for step, _ in train["epoch_loss"]] == [0, 1]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], [float(h["loss"]) for h in history], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]],
                               [float(h["learning_rate"]) for h in history], rtol=1e-6)
    assert len(train["epoch_accuracy"]) == 2
    _, val = _scalars(run / "logs" / "validation")
    np.testing.assert_allclose([v for _, v in val["epoch_loss"]], [float(h["val_loss"]) for h in history], rtol=1e-6)


def _front_matter(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_the_run_has_a_model_card_with_its_validation_results(cli_run):
    run, _ = cli_run
    meta, body = _front_matter(run / "README.md")
    metrics = json.loads((run / "metrics.json").read_text())
    assert meta["library_name"] == "keras" and meta["pipeline_tag"] == "audio-classification"
    assert meta["labels"] == json.loads((run / "labels.json").read_text()) and meta["training_data"] == DATA
    assert "cnn" in meta["tags"]
    [entry] = meta["model-index"]
    [result] = entry["results"]
    assert result["task"]["type"] == "audio-classification"
    assert result["dataset"] == {"name": DATA, "type": "synthetic", "split": "validation"}
    got = {m["name"]: m["value"] for m in result["metrics"]}
    assert got["Clip accuracy"] == round(metrics["val_clip_accuracy"], 4)
    assert got["Macro-F1"] == round(metrics["val_macro_f1"], 4)
    assert "22050 Hz" in body and "genrenet predict" in body and f"tensorboard --logdir {run}/logs" in body


def test_evaluate_adds_events_and_card_results_and_export_carries_the_card(cli_run, tmp_path):
    run, _ = cli_run
    r = run_cli("evaluate", run, "--data", TEST_DATA, "--json")
    assert r.returncode == 0, r.stderr
    _assert_plain(r.stderr)
    metrics = json.loads(r.stdout.strip().splitlines()[-1])
    acc, scalars = _scalars(run / "logs" / "eval-synthetic-all")
    assert scalars["eval/clip_accuracy"][0][1] == pytest.approx(metrics["clip_accuracy"])
    assert scalars["per_class_f1/rock"][0][1] == pytest.approx(metrics["per_class"]["rock"]["f1"])
    [image] = acc.Tensors("confusion_matrix")  # tf.summary.image: width, height, then the PNG itself
    assert image.tensor_proto.string_val[2][:4] == b"\x89PNG"
    meta, _ = _front_matter(run / "README.md")
    results = {(x["dataset"]["name"], x["dataset"]["split"]): x for x in meta["model-index"][0]["results"]}
    assert set(results) == {(DATA, "validation"), (TEST_DATA, "all")}
    assert {m["name"]: m["value"] for m in results[TEST_DATA, "all"]["metrics"]}["Macro-F1"] == \
        round(metrics["macro_f1"], 4)

    r = run_cli("export", run, "--out", tmp_path / "export")
    assert r.returncode == 0, r.stderr
    exported, body = _front_matter(tmp_path / "export" / "genrenet" / "1" / "README.md")
    assert exported["model-index"] == meta["model-index"] and "TF Serving" in body


def test_card_front_matter_survives_awkward_labels():
    from genrenet.run.card import model_card

    labels = ["hip hop", "métal", 'say "yes"', "no", "1.5", "r&b: soul", "-"]
    data = "csv:/data/my list.csv?folds=5&fold=0"
    config = {"format": 2, "model": {"name": "cnn", "features": {"sample_rate": 16000}, "window_samples": 16000},
              "data": {"spec": data}}
    meta, _ = _front_matter_text(model_card(config, labels, {}))
    assert meta["labels"] == labels and meta["training_data"] == data
    assert meta["model-index"][0]["results"] == []


def _front_matter_text(text):
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_file():
    from genrenet.data.progress import Progress

    for terminal in (True, False):
        out = io.StringIO()
        progress = Progress(200, label="predict", stream=out, terminal=terminal)
        for done in range(1, 201):
            progress.update(done)
        progress.close()
        text = out.getvalue()
        if terminal:
            assert text.startswith("\r") and "[" + "#" * 30 + "] 200/200 files" in text and text.endswith("\n")
        else:
            lines = text.splitlines()
            assert "\r" not in text and 5 <= len(lines) <= 11, lines
            assert lines[-1].startswith("predict 100% 200/200 files")
