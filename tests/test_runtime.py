"""``predict --runtime auto|keras|tflite``: a run or preset converted once to LiteRT gives the Keras model's
labels, its cached file is reused until the model changes, and runtimes that do not fit a source are refused."""
import json
import os
import shutil

import pytest

from conftest import GTZAN_DEV, write_tone

import genrenet
from genrenet.errors import ConfigError
from genrenet.infer.litert import cached_litert, litert_dir, resolved_runtime
from genrenet.infer.source import open_source


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


def test_auto_resolves_to_the_runtime_measured_faster_for_the_architecture(tiny_run, bare_export):
    assert resolved_runtime(open_source(str(tiny_run)), "auto") == "tflite"  # cnn: int8 LiteRT measured faster
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
    assert facts["precision"] == "float32"
