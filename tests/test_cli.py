"""The `genrenet` command line, end to end in subprocesses, as users and release checks call it."""
import json

import numpy as np
import pytest

from conftest import TINY, run_cli, write_tone


def _last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_models_lists_every_registered_model():
    import genrenet

    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr
    names = [m["name"] for m in _last_json(r.stdout)]
    assert names == genrenet.list_models()


@pytest.mark.slow  # trains end to end
def test_demo_trains_evaluates_and_exports(tmp_path):
    r = run_cli("demo", "--out", tmp_path / "demo", "--epochs", "1", "--verbose", "0")
    assert r.returncode == 0, r.stderr
    assert "clip accuracy on held-out synthetic music:" in r.stdout
    for name in ("model.keras", "labels.json", "config.json", "history.csv", "metrics.json"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert (tmp_path / "demo" / "export" / "genrenet" / "1" / "saved_model.pb").is_file()
    assert list((tmp_path / "demo").glob("eval-*/confusion.png"))


@pytest.mark.slow  # trains end to end
def test_train_evaluate_predict_export_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    r = run_cli("train", "cnn", "--data", TINY, "--out", run, "--epochs", "1", "--verbose", "0",
                "--set", "filters=[8,16]", "--set", "dense_units=[16]")
    assert r.returncode == 0, r.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == "cnn"
    assert config["training"]["model_kwargs"] == {"filters": [8, 16], "dense_units": [16]}
    assert config["model"]["features"]["n_mels"] == 128 and config["training"]["seed"] == 0
    assert "tensorflow" in config["run"]["versions"]
    assert json.loads((run / "labels.json").read_text()) == ["ambient", "disco", "rock"]
    assert (run / "history.csv").read_text().startswith("epoch,")

    r = run_cli("evaluate", run, "--data", TINY, "--json")
    assert r.returncode == 0, r.stderr
    metrics = _last_json(r.stdout)
    for key in ("clip_accuracy", "macro_f1", "window_accuracy", "num_clips", "labels", "confusion_matrix",
                "per_class"):
        assert key in metrics
    assert metrics["num_clips"] == 12 and metrics["split"] == "all"
    assert np.sum(metrics["confusion_matrix"]) == 12
    assert set(metrics["per_class"]) == {"ambient", "rock", "disco"}
    out = run / "eval-synthetic-all"
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "predictions.csv").read_text().splitlines()) == 13

    song = write_tone(tmp_path / "song.wav", seconds=7.0, sr=44100, channels=2)
    r = run_cli("predict", run, song, "--top-k", "2", "--json")
    assert r.returncode == 0, r.stderr
    [pred] = _last_json(r.stdout)
    assert pred["label"] in ("ambient", "disco", "rock") and len(pred["top"]) == 2
    assert pred["windows"] == 2

    r = run_cli("export", run, "--out", tmp_path / "export")
    assert r.returncode == 0, r.stderr
    version = tmp_path / "export" / "genrenet" / "1"
    assert (version / "assets" / "labels.txt").read_text().split() == ["ambient", "disco", "rock"]
    r = run_cli("predict", version, song, "--json")
    assert r.returncode == 0, r.stderr
    assert _last_json(r.stdout)[0]["label"] == pred["label"]

    r = run_cli("export", run, "--out", tmp_path / "export")
    assert r.returncode == 2 and "already exists" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "no_such_model", "--data", "synthetic"], "unknown model 'no_such_model'; known models: "),
    (["train", "cnn", "--data", "/no/such/folder"], "/no/such/folder: path not found"),
    (["evaluate", "/no/such/run", "--data", "synthetic"], "/no/such/run: no such file or folder, and not a preset"),
    (["train", "cnn", "--data", "synthetic:bogus=1"], "unknown synthetic options"),
    (["train", "cnn", "--set", "filtrs=[8]"], "cnn does not take ['filtrs']"),
])
def test_errors_are_one_clear_line_not_a_traceback(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("genrenet: error:")


def test_empty_dataset_and_bad_audio_errors(tmp_path):
    (tmp_path / "data" / "rock").mkdir(parents=True)
    (tmp_path / "data" / "rock" / "broken.wav").write_bytes(b"not audio at all")
    r = run_cli("train", "cnn", "--data", tmp_path / "data", "--out", tmp_path / "run")
    assert r.returncode == 2 and "no usable audio clips" in r.stderr and "broken.wav" in r.stderr
    assert "Traceback" not in r.stderr


def test_predict_reports_bad_files_and_keeps_the_good_ones(tiny_run, tmp_path):
    good = write_tone(tmp_path / "good.flac", seconds=2.0, sr=16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    r = run_cli("predict", tiny_run, good, bad, "--json")
    assert r.returncode == 1 and "genrenet: 1 of 2 files failed" in r.stderr, r.stderr
    results = {p["file"].split("/")[-1]: p for p in _last_json(r.stdout)}
    assert "label" in results["good.flac"]
    assert results["bad.wav"]["error"].startswith("truncated or damaged")


def test_predict_on_a_folder_says_which_files_it_ignored(tiny_run, tmp_path):
    write_tone(tmp_path / "songs" / "a.wav", seconds=2.0)
    write_tone(tmp_path / "songs" / "deeper" / "b.flac", seconds=2.0)
    (tmp_path / "songs" / "notes.txt").write_text("not audio")
    (tmp_path / "songs" / "deeper" / "cover.jpg").write_bytes(b"\xff\xd8")
    r = run_cli("predict", tiny_run, tmp_path / "songs", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(p["file"].split("/")[-1] for p in _last_json(r.stdout)) == ["a.wav", "b.flac"]
    assert "ignored 2 file(s) without an audio extension (.jpg, .txt)" in r.stderr


def test_predict_batches_64_windows_of_3_s_by_default(tiny_run, tmp_path):
    """Windows of many files share model calls: 64 three-second windows per call unless --batch-size says
    otherwise (fewer for models with long windows), with the same predictions whatever the batch size."""
    from genrenet.infer.windows import default_batch_size
    from genrenet import Classifier

    files = [write_tone(tmp_path / f"tone{i}.wav", seconds=75.0, freq=220.0 * (i + 1)) for i in range(3)]
    predictor = Classifier.from_preset(str(tiny_run))
    calls, forward = [], predictor.forward
    predictor.forward = lambda w: calls.append(len(w)) or forward(w)
    default = predictor.predict(files, verbose=0)
    assert calls == [64, 11]  # 3 files x 25 windows
    calls.clear()
    small = predictor.predict(files, batch_size=8, verbose=0)
    assert calls == [8] * 9 + [3]
    for a, b in zip(default, small):
        assert a["label"] == b["label"] and a["windows"] == b["windows"] == 25
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-6)
    assert default_batch_size(349440, 12000) == 7  # fcn: 29.12-s windows
    assert default_batch_size(8000, 16000) == 64  # never more than 64 windows


def test_refuses_to_overwrite_a_finished_run(tiny_run):
    r = run_cli("train", "cnn", "--data", TINY, "--out", tiny_run, "--epochs", "1")
    assert r.returncode == 2 and "already holds a finished run" in r.stderr


def test_entry_point_is_declared():
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert "genrenet = genrenet.cli:main" in cfg["options.entry_points"]["console_scripts"]


def test_errors_raised_on_purpose_end_in_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    from genrenet import cli
    from genrenet.errors import DatasetError

    def bad_input(args):
        raise DatasetError("data/x: no usable audio clips found")

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_models", bad_input)
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err.strip() == "genrenet: error: data/x: no usable audio clips found"
    monkeypatch.setattr(cli, "cmd_models", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["models"])


def test_help_answers_without_loading_tensorflow():
    import subprocess
    import sys

    code = ("import sys\nfrom genrenet.cli import main\ntry:\n    main(['predict', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint('TF LOADED' if 'tensorflow' in sys.modules else 'TF NOT LOADED')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "--top-k" in out and out.strip().endswith("TF NOT LOADED")

