"""``genrenet.Classifier``: every kind of model source opens through one constructor, gives the same answers,
and works wherever a source is taken (predict, timelines, the app, Beam); paths that are not models are refused
with the reason, never swapped for the default preset."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import GTZAN_DEV, run_cli, write_tone

import genrenet
from genrenet import Classifier
from genrenet.presets import DEFAULT_PRESET



@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """A real GTZAN clip when ../shared is present, else a tone."""
    if GTZAN_DEV.is_dir():
        return GTZAN_DEV / "jazz" / "jazz.00001.wav"
    return write_tone(tmp_path_factory.mktemp("song") / "song.wav", seconds=8.0, freq=330.0)


@pytest.fixture(scope="module")
def preset_export(preset_cache, tmp_path_factory):
    """The default preset exported as a SavedModel with its .tflite."""
    return genrenet.export(DEFAULT_PRESET, str(tmp_path_factory.mktemp("export")), tflite=True, verbose=0)


def test_the_four_kinds_open_alike_and_give_the_label_genrenet_predict_gives(preset_cache, preset_export, song):
    r = run_cli("predict", DEFAULT_PRESET, song, "--json")
    assert r.returncode == 0, r.stderr
    [expected] = json.loads(r.stdout.splitlines()[-1])
    preset = Classifier.from_preset(DEFAULT_PRESET)
    sources = {"preset": DEFAULT_PRESET, "run": preset.path, "savedmodel": preset_export,
               "tflite": os.path.join(preset_export, "model.tflite")}
    for kind, source in sources.items():
        clf = Classifier.from_preset(source)
        assert clf.kind == kind and clf.labels == preset.labels, kind
        assert (clf.sample_rate, clf.window_samples) == (16000, preset.window_samples), kind
        assert clf.features == preset.features and clf.features.n_mels == 96, kind
        assert clf.multi_label is False and clf.model_name == "musicnn", kind
        [row] = clf.predict([song], verbose=0)
        assert row["label"] == expected["label"] and row["windows"] == expected["windows"], kind
        for label, p in expected["probabilities"].items():
            assert abs(row["probabilities"][label] - p) <= 1e-4, (kind, label)


def test_a_preset_draws_timelines_from_python_and_the_command_line(preset_cache, song, tmp_path):
    fig = genrenet.plot_timeline(DEFAULT_PRESET, song)
    spectrogram = fig.axes[0].images[0].get_array()
    assert len(fig.axes) == 2 and spectrogram.shape[0] == 96  # the preset's own 96-band front-end
    r = run_cli("predict", song, "--timeline", tmp_path / "timelines")  # no model: the default preset
    assert r.returncode == 0, r.stderr
    assert f"default preset {DEFAULT_PRESET}" in r.stderr
    assert (tmp_path / "timelines" / f"{song.stem}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_preset_serves_the_app_classify_endpoint(preset_cache, song):
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file

    from genrenet.serve.app import serve

    demo = serve(None, port=_free_port(), block=False)
    try:
        top, result = Client(demo.local_url, verbose=False).predict(handle_file(str(song)), api_name="/classify")
    finally:
        demo.close()
    expected = genrenet.predict(DEFAULT_PRESET, [song], verbose=0)[0]
    assert result["label"] == expected["label"] == top["label"]
    assert abs(result["probabilities"][expected["label"]] - expected["probabilities"][expected["label"]]) < 1e-5


def test_a_preset_runs_on_beam_from_python_and_the_command_line(preset_cache, song, tmp_path):
    pytest.importorskip("apache_beam")
    from genrenet.infer.beam import predict_pipeline

    expected = genrenet.predict(DEFAULT_PRESET, [song], verbose=0)[0]
    counts = predict_pipeline(DEFAULT_PRESET, [str(song)], str(tmp_path / "py" / "out"))
    [row] = [json.loads(line) for p in (tmp_path / "py").glob("out-*.jsonl") for line in p.read_text().splitlines()]
    assert counts == {"classified": 1, "errors": 0} and row["label"] == expected["label"]
    r = run_cli("predict", song, "--runner", "DirectRunner", "--output", tmp_path / "cli" / "out")
    assert r.returncode == 0, r.stderr
    [row] = [json.loads(line) for p in (tmp_path / "cli").glob("out-*.jsonl") for line in p.read_text().splitlines()]
    assert row["label"] == expected["label"]


@pytest.fixture(scope="module")
def bare_tflite(tiny_run, tmp_path_factory):
    """The tiny run's .tflite alone in a folder: only its embedded TFLite Model Metadata says what it is."""
    version = genrenet.export(str(tiny_run), str(tmp_path_factory.mktemp("export")), tflite=True, verbose=0)
    folder = tmp_path_factory.mktemp("bare")
    shutil.copy(os.path.join(version, "model.tflite"), folder / "model.tflite")
    return folder / "model.tflite"


def test_a_tflite_file_with_only_its_embedded_metadata_predicts_and_draws_timelines(bare_tflite, tiny_run, tmp_path):
    path = write_tone(tmp_path / "song.wav", seconds=7.0, freq=440.0)
    clf = Classifier.from_preset(bare_tflite)
    assert clf.kind == "tflite" and clf.labels == genrenet.Run(tiny_run).labels
    [row] = clf.predict([path], verbose=0)
    assert row["label"] == genrenet.predict(str(tiny_run), [path], verbose=0)[0]["label"]
    fig = genrenet.plot_timeline(str(bare_tflite), path)
    assert len(fig.axes) == 2 and fig.axes[0].images[0].get_array().shape[0] == clf.features.n_mels
    r = run_cli("predict", bare_tflite, path, "--timeline", tmp_path / "t")
    assert r.returncode == 0 and (tmp_path / "t" / "song.png").is_file(), r.stderr


def test_predict_refuses_an_unfinished_run_as_evaluate_does(tiny_run, tmp_path):
    unfinished = tmp_path / "runs" / "int3"
    shutil.copytree(tiny_run, unfinished)
    (unfinished / "model.keras").unlink()
    song = write_tone(tmp_path / "song.flac", seconds=4.0)
    predicted = run_cli("predict", unfinished, song)
    evaluated = run_cli("evaluate", unfinished, "--data", "synthetic")
    for r in (predicted, evaluated):
        assert r.returncode == 2 and "not a finished genrenet run (model.keras is missing)" in r.stderr, r.stderr
        assert "default preset" not in r.stderr and r.stdout == ""
    with pytest.raises(genrenet.errors.RunError, match="model.keras is missing"):
        genrenet.predict(str(unfinished), [song], verbose=0)


def test_predict_refuses_an_export_root_and_names_a_version_directory(tiny_run, tmp_path):
    version = genrenet.export(str(tiny_run), str(tmp_path / "export"), verbose=0)
    song = write_tone(tmp_path / "song.wav", seconds=4.0)
    for command in (("predict", tmp_path / "export", song), ("evaluate", tmp_path / "export", "--data", "synthetic")):
        r = run_cli(*command)
        assert r.returncode == 2 and f"an export folder; name one of its version directories, e.g. {version}" \
            in r.stderr, r.stderr
        assert "default preset" not in r.stderr


def test_predict_takes_folders_and_patterns_and_says_what_it_left_out(tiny_run, tmp_path, capsys):
    album = tmp_path / "album"
    files = [write_tone(album / "a.wav", seconds=4.0), write_tone(album / "cd2" / "b.flac", seconds=4.0)]
    (album / "cover.jpg").write_bytes(b"\xff\xd8")
    rows = genrenet.predict(str(tiny_run), [album], verbose=1)
    assert [r["file"] for r in rows] == [str(f) for f in files] and all("label" in r for r in rows)
    assert "album: ignored 1 file(s) without an audio extension (.jpg)" in capsys.readouterr().err
    rows = genrenet.predict(str(tiny_run), [str(album / "**" / "*.flac")], verbose=0)
    assert [r["file"] for r in rows] == [str(files[1])]
    with pytest.raises(genrenet.errors.DatasetError, match="no audio files in .*empty"):
        (tmp_path / "empty").mkdir()
        genrenet.predict(str(tiny_run), [tmp_path / "empty"], verbose=0)


def test_the_first_input_is_the_model_only_when_it_is_not_audio(tiny_run, tmp_path):
    from genrenet.infer.source import split_source

    song = write_tone(tmp_path / "album" / "song.wav", seconds=2.0)
    assert split_source([song]) == (None, [str(song)])
    assert split_source([tmp_path / "album", song]) == (None, [str(tmp_path / "album"), str(song)])
    assert split_source([tiny_run, song]) == (str(tiny_run), [str(song)])
    assert split_source(["no-such-model", song]) == ("no-such-model", [str(song)])  # then a clear error
    (tmp_path / "notes").mkdir()
    assert split_source([tmp_path / "notes", song]) == (str(tmp_path / "notes"), [str(song)])
    with pytest.raises(genrenet.errors.ConfigError, match="no audio files given after the model"):
        split_source([tiny_run])


def test_a_classifier_is_taken_wherever_a_source_is(tiny_run, tmp_path):
    clf = Classifier.from_preset(str(tiny_run))
    song = write_tone(tmp_path / "song.wav", seconds=4.0)
    assert Classifier.from_preset(clf) is clf
    assert genrenet.predict(clf, [song], verbose=0)[0]["label"] == clf.predict(song, verbose=0)[0]["label"]
    times, probs = clf.window_probabilities(song)
    np.testing.assert_allclose(probs.mean(0), [clf.predict([song], verbose=0)[0]["probabilities"][label]
                                               for label in clf.labels], atol=1e-5)
    embedded = clf.embed([song], str(tmp_path / "e.npz"), verbose=0)
    assert embedded["embeddings"].shape[0] == 1 and (tmp_path / "e.npz").is_file()
    metrics = genrenet.evaluate(clf, "synthetic:classes=3,clips=2,seconds=3.5", verbose=0)
    assert metrics["num_clips"] == 6 and metrics["out"].startswith(str(tiny_run))


def test_an_export_evaluates_into_a_folder_of_its_own(tiny_run, tmp_path, monkeypatch):
    version = genrenet.export(str(tiny_run), str(tmp_path / "export"), verbose=0)
    monkeypatch.chdir(tmp_path)
    metrics = genrenet.evaluate(version, "synthetic:classes=3,clips=2,seconds=3.5", verbose=0)
    assert metrics["out"] == "eval-genrenet-1-synthetic-all" and metrics["num_clips"] == 6
    assert (tmp_path / metrics["out"] / "confusion.png").is_file()
    assert not list((tmp_path / "export").rglob("eval-*"))  # an export is never written into


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
