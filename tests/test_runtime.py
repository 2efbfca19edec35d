"""``predict --runtime auto|keras|tflite``: a run or preset converted once to LiteRT (its model body, behind the
TensorFlow front-end) gives the Keras model's labels, its cached file is reused until the model changes and
``genrenet cache --clear`` removes it, and runtimes that do not fit a source are refused."""
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import GTZAN_DEV, write_tone

import genrenet
from genrenet.errors import ConfigError
from genrenet.infer.litert import cached_litert, litert_dir, resolved_runtime, split_frontend
from genrenet.infer.runtime import LiteRTBodyRuntime
from genrenet.infer.source import open_source
from genrenet.infer.windows import FUSE_MIN_CLIPS


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    return [str(write_tone(folder / f"t{f}.wav", seconds=4.0, freq=f)) for f in (110, 220, 440, 880, 1760, 3520)]


@pytest.fixture(scope="module")
def converted_run(tiny_run, preset_cache):
    """The tiny run converted into the module's private cache: ``(path, facts)``."""
    return cached_litert(open_source(str(tiny_run)), verbose=0)


def test_a_run_in_litert_gives_the_keras_models_labels(tiny_run, converted_run, tones):
    keras_rows = genrenet.predict(str(tiny_run), tones, runtime="keras", verbose=0)
    lite_rows = genrenet.predict(str(tiny_run), tones, runtime="tflite", verbose=0)
    assert [r["label"] for r in lite_rows] == [r["label"] for r in keras_rows]
    gap = max(abs(a["probabilities"][k] - b["probabilities"][k]) for a, b in zip(keras_rows, lite_rows)
              for k in a["probabilities"])
    path, facts = converted_run
    assert gap < (0.05 if facts["precision"] == "int8" else 1e-4), facts


def test_the_model_body_runs_in_litert_behind_the_tensorflow_frontend_fused_or_not(tiny_run, converted_run, tones):
    _, facts = converted_run
    assert facts["input"] == "log-mel"
    classifier = genrenet.Classifier.from_preset(str(tiny_run), runtime="tflite", verbose=0)
    runtime = classifier.loaded()
    assert isinstance(runtime, LiteRTBodyRuntime)
    assert runtime.fused_for(FUSE_MIN_CLIPS - 1) is None
    windows = np.stack([np.resize(sf.read(t, dtype="float32")[0], runtime.keras_model.input_shape[1]) for t in tones])
    keras_probs = runtime.keras_model.predict(windows, verbose=0)
    plain, fused = runtime.forward(windows), runtime.fused_for(FUSE_MIN_CLIPS)(windows)
    assert np.allclose(plain, fused, atol=1e-3)  # XLA's fused front-end: the same log-mel to ~1e-5 dB
    assert (plain.argmax(1) == keras_probs.argmax(1)).mean() >= 5 / 6
    assert np.abs(plain - keras_probs).max() < (0.05 if facts["precision"] == "int8" else 1e-4)


def test_only_a_frontend_that_alone_reads_the_waveform_is_split_off(tiny_run):
    import keras

    model = genrenet.Run(str(tiny_run)).load_model()
    frontend, body = split_frontend(model)
    assert body.input_shape[1:] == frontend.compute_output_shape(model.input_shape)[1:]
    assert body.output_shape == model.output_shape
    waveform = keras.Input(model.input_shape[1:])
    both = keras.layers.Concatenate()([keras.layers.Flatten()(frontend(waveform)), waveform])
    assert split_frontend(keras.Model(waveform, both)) is None  # the waveform feeds the body too
    assert split_frontend(genrenet.build_model("sample_cnn", num_classes=3)) is None  # no log-mel front-end


def test_the_converted_file_lives_in_genrenets_cache_with_its_precision_and_agreement(tiny_run, converted_run):
    path, facts = converted_run
    assert os.path.dirname(path) == litert_dir() and path.startswith(os.environ["GENRENET_CACHE"])
    assert not [f for f in os.listdir(tiny_run) if f.endswith(".tflite")]  # nothing written beside the run
    assert facts["precision"] in ("int8", "float32")
    assert 0.0 <= facts["label_agreement"] <= 1.0 and facts["windows"] > 0  # the run's data could be read
    with open(path.replace(".tflite", ".facts.json")) as f:
        assert json.load(f)["precision"] == facts["precision"]


def test_the_cached_file_is_reused_and_rebuilt_when_the_model_changes(tiny_run, converted_run, tmp_path):
    path, _ = converted_run
    before = os.stat(path).st_mtime_ns
    assert cached_litert(open_source(str(tiny_run)), verbose=0)[0] == path
    assert os.stat(path).st_mtime_ns == before

    retrained = tmp_path / "retrained"
    shutil.copytree(tiny_run, retrained)
    model = genrenet.Run(str(retrained)).load_model()
    model.set_weights([w * 1.01 for w in model.get_weights()])
    model.save(str(retrained / "model.keras"))
    other, _ = cached_litert(open_source(str(retrained)), verbose=0)
    assert other != path and os.path.isfile(other) and os.path.isfile(path)


def test_a_run_whose_training_data_is_gone_converts_to_float32_and_says_why(tiny_run, tmp_path, tones,
                                                                          monkeypatch):
    monkeypatch.setenv("GENRENET_CACHE", str(tmp_path / "cache"))  # the same model.keras is cached elsewhere
    moved = tmp_path / "moved"
    shutil.copytree(tiny_run, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["spec"] = str(tmp_path / "no-such-folder")
    (moved / "config.json").write_text(json.dumps(config))
    _, facts = cached_litert(open_source(str(moved)), verbose=0)
    assert facts["precision"] == "float32" and "no calibration data" in facts["why"]
    keras_rows = genrenet.predict(str(moved), tones[:3], runtime="keras", verbose=0)
    lite_rows = genrenet.predict(str(moved), tones[:3], runtime="tflite", verbose=0)
    assert all(abs(a["probabilities"][k] - b["probabilities"][k]) < 1e-4 for a, b in zip(keras_rows, lite_rows)
               for k in a["probabilities"])


def as_architecture(run, model_name: str, folder):
    """A copy of ``run`` whose config names another architecture (what ``auto`` decides by)."""
    copy = folder / model_name
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model"]["name"] = model_name
    (copy / "config.json").write_text(json.dumps(config))
    return str(copy)


def test_auto_resolves_to_the_runtime_measured_faster_for_the_architecture(tiny_run, bare_export, tmp_path):
    assert resolved_runtime(open_source(str(tiny_run)), "auto") == "tflite"  # cnn: the int8 LiteRT body is faster
    assert resolved_runtime(open_source(as_architecture(tiny_run, "crnn_attention", tmp_path)), "auto") == "tflite"
    assert resolved_runtime(open_source(as_architecture(tiny_run, "lstm", tmp_path)), "auto") == "keras"
    assert resolved_runtime(open_source(str(tiny_run)), "keras") == "keras"
    version, tflite_file = bare_export
    assert resolved_runtime(open_source(tflite_file), "auto") == "tflite"
    assert resolved_runtime(open_source(tflite_file), "tflite") == "tflite"
    assert resolved_runtime(open_source(version), "auto") == "savedmodel"


@pytest.fixture(scope="module")
def bare_export(tiny_run, tmp_path_factory):
    version = genrenet.export(str(tiny_run), str(tmp_path_factory.mktemp("export")), tflite=True, verbose=0)
    return version, os.path.join(version, "model.tflite")


def test_runtimes_that_do_not_fit_a_source_are_refused_naming_the_parameter(tiny_run, bare_export):
    version, tflite_file = bare_export
    for source, runtime in [(tflite_file, "keras"), (version, "keras"), (version, "tflite"), (str(tiny_run), "fast")]:
        with pytest.raises(ConfigError) as e:
            genrenet.Classifier.from_preset(source, runtime=runtime)
        assert e.value.param == "runtime" and runtime in e.value.message


def test_the_command_line_names_the_flag(tiny_run, bare_export, tones, capsys):
    from genrenet import cli

    _, tflite_file = bare_export
    with pytest.raises(SystemExit) as parse:
        cli.main(["predict", "--runtime", "fast", str(tiny_run), tones[0]])
    assert parse.value.code == 2 and "--runtime" in capsys.readouterr().err
    assert cli.main(["predict", "--runtime", "keras", tflite_file, tones[0]]) == 2
    assert "--runtime: runtime 'keras' does not apply to a .tflite file" in capsys.readouterr().err
    assert cli.main(["predict", "--runtime", "tflite", "--runner", "DirectRunner", "--output", "x",
                     str(tiny_run), tones[0]]) == 2
    assert "--runtime" in capsys.readouterr().err


def test_the_command_line_predicts_in_litert(tiny_run, converted_run, tones, capsys):
    from genrenet import cli

    labels = []
    for runtime in ("keras", "tflite"):
        assert cli.main(["predict", "--json", "--runtime", runtime, str(tiny_run), *tones[:2]]) == 0
        labels.append([r["label"] for r in json.loads(capsys.readouterr().out)])
    assert labels[0] == labels[1]


def test_cache_clear_removes_the_converted_models_and_nothing_else(tiny_run, converted_run, tmp_path, monkeypatch,
                                                                   capsys):
    from genrenet import cli

    converted, _ = converted_run
    monkeypatch.setenv("GENRENET_CACHE", str(tmp_path / "cache"))
    os.makedirs(litert_dir())
    for name in (converted, converted.replace(".tflite", ".facts.json")):
        shutil.copy(name, litert_dir())
    path, _ = cached_litert(open_source(str(tiny_run)), verbose=0)  # the copy is found, not converted again
    assert os.path.dirname(path) == litert_dir()
    (tmp_path / "cache" / "litert" / "notes.txt").write_text("not genrenet's")
    assert cli.main(["cache"]) in (0, None)
    assert "1 models converted" in capsys.readouterr().out
    assert cli.main(["cache", "--clear"]) in (0, None)
    assert "removed 2 files" in capsys.readouterr().out  # the model and its facts
    assert not os.path.exists(path) and os.listdir(tmp_path / "cache" / "litert") == ["notes.txt"]


@pytest.mark.slow
def test_the_default_preset_in_litert_keeps_its_labels_on_real_clips(preset_cache):
    """The preset's int8 file changes labels and its training data is not at hand: it runs in float32."""
    if not GTZAN_DEV.is_dir():
        pytest.skip("../shared/data/gtzan_dev is absent")
    from genrenet.presets import DEFAULT_PRESET

    files = [str(sorted(d.glob("*.wav"))[0]) for d in sorted(GTZAN_DEV.iterdir()) if d.is_dir()]
    assert resolved_runtime(open_source(DEFAULT_PRESET), "auto") == "keras"
    keras_rows = genrenet.predict(DEFAULT_PRESET, files, runtime="keras", verbose=0)
    lite_rows = genrenet.predict(DEFAULT_PRESET, files, runtime="tflite", verbose=0)
    assert [r["label"] for r in lite_rows] == [r["label"] for r in keras_rows]
    _, facts = cached_litert(open_source(DEFAULT_PRESET), verbose=0)
    assert facts["precision"] == "float32" and facts["input"] == "log-mel"
