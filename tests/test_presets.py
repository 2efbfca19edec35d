"""Presets: ready-to-run models shipped with genrenet (`genrenet presets`, `predict FILE` with no model)."""
import json
import os

import numpy as np
import pytest

from conftest import GTZAN_DEV, run_cli, write_tone

DEFAULT = "musicnn-msd-gtzan"
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Two songs: real GTZAN clips when ../shared is present (classical and metal), else synthetic tones."""
    if GTZAN_DEV.is_dir():
        return [GTZAN_DEV / "classical" / "classical.00000.wav", GTZAN_DEV / "metal" / "metal.00001.wav"]
    folder = tmp_path_factory.mktemp("songs")
    return [write_tone(folder / "a.wav", seconds=7.0, freq=220.0), write_tone(folder / "b.wav", seconds=4.0)]


def test_presets_lists_the_default_with_its_card_facts():
    r = run_cli("presets", "--json")
    assert r.returncode == 0, r.stderr
    infos = {i["name"]: i for i in json.loads(r.stdout.splitlines()[-1])}
    default = infos[DEFAULT]
    assert default["default"] and [i["name"] for i in infos.values() if i["default"]] == [DEFAULT]
    assert (default["model"], default["pretrained"], default["labels"]) == ("musicnn", "msd", GENRES)
    assert 0.5 < default["accuracy"] <= 1.0 and "cross-validation" in default["accuracy_protocol"]
    assert "40 GTZAN clips" in default["training_data"]
    assert default["shipped_bytes"] < 100_000  # the preset adds its head; the backbone ships once with genrenet
    text = run_cli("presets").stdout
    assert f"{DEFAULT}  (default)" in text and "musicnn, pretrained msd" in text


def test_model_card_states_data_accuracy_and_gtzan_faults():
    import genrenet
    from genrenet.presets import preset_dir

    card = open(os.path.join(preset_dir(DEFAULT), "README.md"), encoding="utf-8").read()
    accuracy = genrenet.preset_info(DEFAULT)["accuracy"]
    assert "40 GTZAN clips" in card and f"{accuracy:.2f}" in card and "Sturm 2013" in card
    assert "python -m benchmarks.build_preset" in card


def test_unknown_preset_and_missing_files_are_clear_errors(tiny_run, tmp_path):
    import genrenet
    from genrenet.errors import PresetError

    with pytest.raises(PresetError, match=f"unknown preset 'nope'; available: .*{DEFAULT}"):
        genrenet.load_preset("nope")
    song = write_tone(tmp_path / "song.wav", seconds=1.0)
    r = run_cli("predict", "nope", song)
    assert r.returncode == 2 and "nope: no such file or folder, and not a preset" in r.stderr and DEFAULT in r.stderr
    r = run_cli("predict", tiny_run)
    assert r.returncode == 2 and "no audio files given after the model" in r.stderr


def test_default_preset_works_without_the_musicnn_package(tmp_path, monkeypatch, preset_cache):
    """The backbone's weights ship with genrenet: with ``import musicnn`` failing, the default preset is
    materialised (into this module's empty cache) and classifies."""
    fake = tmp_path / "site" / "musicnn"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('musicnn is not installed')\n")
    song = write_tone(tmp_path / "song.wav", seconds=1.0)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = run_cli("predict", song, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])[0]["label"] in GENRES


def test_predict_without_a_model_uses_the_default_preset(preset_cache, songs):
    r = run_cli("predict", *songs, "--json")
    assert r.returncode == 0, r.stderr
    assert f"default preset {DEFAULT}" in r.stderr
    results = json.loads(r.stdout.splitlines()[-1])
    assert [x["file"] for x in results] == [str(s) for s in songs]
    assert all(x["label"] in GENRES and abs(sum(x["probabilities"].values()) - 1) < 1e-4 for x in results)
    if GTZAN_DEV.is_dir():
        assert [x["label"] for x in results] == ["classical", "metal"]
    named = run_cli("predict", DEFAULT, *songs, "--json")
    assert named.returncode == 0 and "default preset" not in named.stderr
    assert json.loads(named.stdout.splitlines()[-1]) == results


def test_load_preset_predicts_what_predict_says(preset_cache, songs):
    import genrenet
    from genrenet.data import Clip
    from genrenet.infer.calibration import tempered_forward
    from genrenet.infer.windows import clip_outputs, model_forward

    model = genrenet.load_preset(DEFAULT)
    assert model.output_shape == (None, 10) and model.get_layer("timbral_74_conv").trainable is False
    temperature = genrenet.Classifier.from_preset(DEFAULT).calibration["temperature"]
    assert temperature != 1.0  # the preset is calibrated: predict tempers each window before the clip mean
    clips = [Clip(id=str(s), label="", path=str(s)) for s in songs]
    forward = tempered_forward(model_forward(model, len(clips)), temperature)
    mean = clip_outputs(forward, clips, num_outputs=10, sample_rate=16000,
                        window_samples=int(model.input_shape[-1])).mean
    results = genrenet.predict(DEFAULT, songs, verbose=0)
    for row, result in zip(mean, results):
        np.testing.assert_allclose(row, [result["probabilities"][g] for g in GENRES], atol=1e-5)


def test_preset_is_materialised_once_per_cache(preset_cache):
    from genrenet.presets import materialise

    first = materialise(DEFAULT)
    stamp = os.path.getmtime(os.path.join(first, "model.keras"))
    assert materialise(DEFAULT) == first and os.path.getmtime(os.path.join(first, "model.keras")) == stamp
    assert first.startswith(preset_cache) and os.path.isfile(os.path.join(first, "README.md"))
    assert not [n for n in os.listdir(os.path.dirname(first)) if n.startswith(".")]  # no half-written copies


@pytest.mark.slow
def test_evaluate_and_export_take_a_preset(preset_cache, songs, tmp_path):
    data = tmp_path / "data"
    for song, genre in zip(songs, ["classical", "metal"]):
        (data / genre).mkdir(parents=True)
        os.symlink(song, data / genre / os.path.basename(song))
    r = run_cli("evaluate", DEFAULT, "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout.splitlines()[-1])
    assert metrics["num_clips"] == 2 and metrics["labels"] == GENRES
    r = run_cli("export", DEFAULT, "--out", tmp_path / "export", "--hop", "1.5")
    assert r.returncode == 0, r.stderr
    version = tmp_path / "export" / "genrenet" / "1"
    assert (version / "saved_model.pb").is_file()
    assert (version / "assets" / "labels.txt").read_text().split() == GENRES
    assert json.loads((version / "assets" / "genrenet.json").read_text())["hop_samples"] == 24000
    import tensorflow as tf

    from genrenet.data import load_audio

    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    waveform = load_audio(songs[0], 16000)[None]
    exported = served(waveform=tf.constant(waveform))["probabilities"].numpy()[0]
    direct = json.loads(run_cli("predict", DEFAULT, songs[0], "--json", "--hop", "1.5").stdout.splitlines()[-1])[0]
    np.testing.assert_allclose(exported, [direct["probabilities"][g] for g in GENRES], atol=1e-4)
