"""Quantised TFLite exports (float16, dynamic, int8): smaller files with the float file's metadata, a float32
front-end, agreement with the float model, and every genrenet consumer reading them like any model source."""
import json
import os

import numpy as np
import pytest

from conftest import GTZAN_DEV

import genrenet
from genrenet.data.synthetic import generate_clip
from genrenet.infer.source import tflite_interpreter
from genrenet.infer.tflite_metadata import read_metadata

MODES = ("float16", "dynamic", "int8")


@pytest.fixture(scope="module")
def quantized_export(tiny_run, tmp_path_factory):
    from genrenet.serve.export import export

    return export(str(tiny_run), str(tmp_path_factory.mktemp("qexport")), quantize="int8,float16,dynamic",
                  verbose=0)


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def kernel_weights(run_dir) -> int:
    """Weights in the model's convolution and dense kernels (the body's bulk; the front-end has none)."""
    from genrenet.run import Run

    return sum(int(np.prod(w.shape)) for w in Run(str(run_dir)).load_model().weights if "kernel" in w.path)


@pytest.mark.slow
def test_every_precision_is_written_with_the_float_files_metadata(quantized_export):
    reference = read_metadata(read(os.path.join(quantized_export, "model.tflite")))
    for mode in MODES:
        assert read_metadata(read(os.path.join(quantized_export, f"model-{mode}.tflite"))) == reference
    with open(os.path.join(quantized_export, "assets", "genrenet.json")) as f:
        recorded = json.load(f)["tflite"]["quantized"]
    assert sorted(recorded) == sorted(MODES)
    for mode, q in recorded.items():
        assert q["bytes"] == os.path.getsize(os.path.join(quantized_export, q["file"]))
        assert q["windows"] >= 1 and 0.0 <= q["label_agreement"] <= 1.0
    card = open(os.path.join(quantized_export, "README.md"), encoding="utf-8").read()
    assert "## On-device files" in card
    for mode in MODES:
        q = recorded[mode]
        assert f"| `model-{mode}.tflite` |" in card and f"{100 * q['label_agreement']:.1f}%" in card


@pytest.mark.slow
def test_files_shrink_by_the_expected_ratio(quantized_export, tiny_run):
    """float16 halves every weight (≤ 0.6× here, metadata included); int8 and dynamic store each kernel weight
    in one byte instead of four (the float32 front-end's constants are the same in both)."""
    size = {m: os.path.getsize(os.path.join(quantized_export, f"model-{m}.tflite")) for m in MODES}
    full = os.path.getsize(os.path.join(quantized_export, "model.tflite"))
    assert size["float16"] <= 0.65 * full
    saved = 3 * kernel_weights(tiny_run)
    assert full - size["int8"] >= 0.9 * saved
    assert size["int8"] <= size["dynamic"] + 4_000


@pytest.mark.slow
def test_int8_quantises_the_body_and_keeps_the_front_end_float32(quantized_export):
    details = tflite_interpreter(os.path.join(quantized_export, "model-int8.tflite")).get_tensor_details()
    front = [t for t in details if "/log_mel" in t["name"]]
    body_int8 = [t for t in details if t["dtype"] == np.int8 and "conv" in t["name"]]
    assert front and all(t["dtype"] in (np.float32, np.complex64, np.int32) for t in front)
    assert body_int8, "no convolution runs in int8"
    dynamic = tflite_interpreter(os.path.join(quantized_export, "model-dynamic.tflite")).get_tensor_details()
    assert not [t["name"] for t in dynamic if "/log_mel" in t["name"] and t["dtype"] == np.int8]


def _songs(folder, n=3, seconds=7.0, sr=22050):
    import soundfile as sf

    paths = []
    for i, style in enumerate(("rock", "jazz", "ambient", "disco")[:n]):
        path = folder / f"{style}.wav"
        sf.write(str(path), 0.8 * generate_clip(style, seconds, sr, np.random.default_rng(i)), sr, subtype="PCM_16")
        paths.append(str(path))
    return paths


def _agree(got, ref, tolerance):
    """Probabilities within ``tolerance``; the labels equal wherever the float model's top two are further apart."""
    for g, r in zip(got, ref):
        p = np.array(list(r["probabilities"].values()))
        q = np.array([g["probabilities"][k] for k in r["probabilities"]])
        assert np.abs(p - q).max() <= tolerance, (g["file"], np.abs(p - q).max())
        top2 = np.sort(p)[-2:]
        assert g["label"] == r["label"] or top2[1] - top2[0] <= 2 * tolerance
        assert g["windows"] == r["windows"]


@pytest.mark.slow
@pytest.mark.parametrize("mode,tolerance", [("float16", 2e-3), ("dynamic", 0.05), ("int8", 0.05)])
def test_quantised_files_predict_like_the_float_model(quantized_export, tiny_run, tmp_path, mode, tolerance):
    files = _songs(tmp_path)
    ref = genrenet.predict(str(tiny_run), files, verbose=0)
    clf = genrenet.Classifier.from_preset(os.path.join(quantized_export, f"model-{mode}.tflite"))
    _agree(clf.predict(files, batch_size=4, verbose=0), ref, tolerance)


@pytest.mark.slow
@pytest.mark.skipif(not GTZAN_DEV.is_dir(), reason="../shared/data/gtzan_dev is absent")
def test_int8_agrees_with_the_float_model_on_real_clips(quantized_export, tiny_run):
    files = [str(sorted(d.glob("*.wav"))[0]) for d in sorted(GTZAN_DEV.iterdir()) if d.is_dir()]
    ref = genrenet.predict(str(tiny_run), files, verbose=0)
    got = genrenet.predict(os.path.join(quantized_export, "model-int8.tflite"), files, verbose=0)
    _agree(got, ref, 0.05)


@pytest.mark.slow
def test_a_quantised_file_runs_whole_batches_at_once(quantized_export):
    """The interpreter's input is resized to the batch: one call on n windows equals n calls on one."""
    clf = genrenet.Classifier.from_preset(os.path.join(quantized_export, "model-int8.tflite"))
    rng = np.random.default_rng(0)
    windows = (0.3 * rng.standard_normal((5, clf.window_samples))).astype(np.float32)
    together = clf.forward(windows)
    assert together.shape == (5, len(clf.labels))
    one_by_one = np.concatenate([clf.forward(w[None]) for w in windows])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


@pytest.mark.slow
def test_evaluate_compares_a_quantised_file_with_its_run(quantized_export, tiny_run, tmp_path):
    data = "synthetic:classes=3,clips=4,seconds=3.5"
    quantized = genrenet.evaluate(os.path.join(quantized_export, "model-int8.tflite"), data,
                                  out=str(tmp_path / "q"), verbose=0)
    floating = genrenet.evaluate(str(tiny_run), data, out=str(tmp_path / "f"), verbose=0)
    assert quantized["num_clips"] == floating["num_clips"] > 0
    assert abs(quantized["clip_accuracy"] - floating["clip_accuracy"]) <= 1 / floating["num_clips"] + 1e-9


@pytest.mark.slow
def test_mediapipe_loads_every_precision(quantized_export):
    try:
        from mediapipe.tasks.python import audio
        from mediapipe.tasks.python.components.containers.audio_data import AudioData
        from mediapipe.tasks.python.core.base_options import BaseOptions
    except ImportError as e:
        if os.environ.get("GENRENET_REQUIRE_MEDIAPIPE"):
            raise
        pytest.skip(f"mediapipe is not installed: {e}")
    meta = read_metadata(read(os.path.join(quantized_export, "model.tflite")))
    sr = meta["sample_rate"]
    W = tflite_interpreter(os.path.join(quantized_export, "model.tflite")).get_input_details()[0]["shape"][-1]
    window = (0.8 * generate_clip("rock", W / sr + 0.1, sr, np.random.default_rng(3))[:W]).astype(np.float32)
    for mode in MODES:
        path = os.path.join(quantized_export, f"model-{mode}.tflite")
        it = tflite_interpreter(path, num_threads=1)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], window[None])
        it.invoke()
        lite = it.get_tensor(it.get_output_details()[0]["index"])[0]
        options = audio.AudioClassifierOptions(base_options=BaseOptions(model_asset_path=path), max_results=-1,
                                               running_mode=audio.RunningMode.AUDIO_CLIPS)
        with audio.AudioClassifier.create_from_options(options) as classifier:
            [result] = classifier.classify(AudioData.create_from_array(window, sr))
        scores = {c.category_name: c.score for c in result.classifications[0].categories}
        assert sorted(scores) == sorted(meta["labels"])
        np.testing.assert_allclose([scores[l] for l in meta["labels"]], lite, atol=1e-5)


@pytest.mark.slow
def test_cli_exports_quantised_files(tiny_run, tmp_path, capsys):
    from genrenet import cli

    out = tmp_path / "export"
    assert cli.main(["export", str(tiny_run), "--out", str(out), "--quantize", "float16"]) == 0
    assert (out / "genrenet" / "1" / "model-float16.tflite").is_file()
    assert (out / "genrenet" / "1" / "model.tflite").is_file()  # the float reference comes along
    assert "model-float16.tflite" in capsys.readouterr().out


def test_cli_refuses_unknown_quantisations(tiny_run, tmp_path, capsys):
    from genrenet import cli

    out = tmp_path / "export"
    assert cli.main(["export", str(tiny_run), "--out", str(out), "--quantize", "int4"]) == 2
    err = capsys.readouterr().err
    assert "--quantize" in err and "int4" in err and "float16, dynamic, int8" in err
    assert not out.exists()


def test_calibration_data_that_has_no_audio_is_named(tiny_run, tmp_path):
    from genrenet.errors import ExportError
    from genrenet.serve.export import export

    empty = tmp_path / "nothing"
    (empty / "rock").mkdir(parents=True)
    with pytest.raises(ExportError) as e:
        export(str(tiny_run), str(tmp_path / "x"), quantize="int8", calibration_data=str(empty), verbose=0)
    assert e.value.param == "calibration_data" and str(empty) in str(e.value)
    assert not (tmp_path / "x" / "genrenet" / "1").exists()


@pytest.fixture(scope="module")
def preset_export(preset_cache, tmp_path_factory):
    """The default preset exported in every precision, calibrated on the real dev clips."""
    from genrenet.presets import DEFAULT_PRESET
    from genrenet.serve.export import export

    version = export(DEFAULT_PRESET, str(tmp_path_factory.mktemp("preset")), quantize=",".join(MODES),
                     calibration_data=str(GTZAN_DEV), verbose=0)
    with open(os.path.join(version, "assets", "genrenet.json")) as f:
        return version, json.load(f)["tflite"]["quantized"]


needs_dev_clips = pytest.mark.skipif(not GTZAN_DEV.is_dir(), reason="../shared/data/gtzan_dev is absent")


@pytest.mark.slow
@needs_dev_clips
def test_the_default_preset_quantises_small(preset_export, tmp_path):
    """int8 ≤ 0.35× and float16 ≤ 0.6× the float32 file; a preset without calibration data is refused."""
    from genrenet.errors import ExportError
    from genrenet.presets import DEFAULT_PRESET
    from genrenet.serve.export import export

    with pytest.raises(ExportError) as e:
        export(DEFAULT_PRESET, str(tmp_path / "refused"), quantize="int8", verbose=0)
    assert e.value.param == "calibration_data"
    _, q = preset_export
    assert q["int8"]["size_ratio"] <= 0.35 and q["float16"]["size_ratio"] <= 0.6


@pytest.fixture(scope="module")
def preset_clip_labels(preset_export):
    """``{source: [label per dev clip]}`` of the float32 preset and of each of its quantised files."""
    from genrenet.presets import DEFAULT_PRESET

    version, _ = preset_export
    files = sorted(str(f) for d in sorted(GTZAN_DEV.iterdir()) if d.is_dir() for f in d.glob("*.wav"))
    sources = {"float32": DEFAULT_PRESET, **{m: os.path.join(version, f"model-{m}.tflite") for m in MODES}}
    return {name: [r["label"] for r in genrenet.predict(src, files, verbose=0)] for name, src in sources.items()}


@pytest.mark.slow
@needs_dev_clips
@pytest.mark.parametrize("mode", MODES)
def test_the_default_presets_quantised_files_keep_the_clip_labels(preset_clip_labels, mode):
    """≥ 95 % of the 40 real dev clips keep the float32 preset's label."""
    reference, got = preset_clip_labels["float32"], preset_clip_labels[mode]
    assert len(got) == len(reference) == 40
    assert np.mean([g == r for g, r in zip(got, reference)]) >= 0.95


@pytest.mark.slow
@needs_dev_clips
@pytest.mark.parametrize("mode", [
    "float16", "dynamic",
    pytest.param("int8", marks=pytest.mark.xfail(reason="the preset's int8 file keeps the label of ~90% of the "
                                                        "held-out windows (39/40 clips)", strict=False))])
def test_the_default_presets_quantised_files_keep_the_window_labels(preset_export, mode):
    """≥ 95 % of the export's held-out windows keep the float32 file's label."""
    _, q = preset_export
    assert q[mode]["label_agreement"] >= 0.95


def _wide_bn_model():
    """conv(ReLU) → BN with per-channel factors spanning 10⁴, pooled → BN → Dense, as in musicnn."""
    import keras

    inp = keras.Input((16, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    x = keras.layers.BatchNormalization(name="pool_bn")(x)
    model = keras.Model(inp, keras.layers.Dense(3, name="out")(x))
    factors = np.array([1e-2, 1.0, 10.0, 100.0], np.float32)
    for name in ("conv_bn", "pool_bn"):
        model.get_layer(name).set_weights([factors, np.array([0.1, -0.2, 0.3, 0.0], np.float32),
                                           np.array([0.5, 1.0, 2.0, 0.1], np.float32), np.ones(4, np.float32)])
    return model


def test_equalising_moves_normalisation_factors_into_the_weights_without_changing_the_output():
    from genrenet.infer.quantize import equalized

    model = _wide_bn_model()
    copy = equalized(model)
    x = np.random.default_rng(0).standard_normal((2, 16, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    gamma, _, _, var = copy.get_layer("conv_bn").get_weights()
    np.testing.assert_allclose(np.abs(gamma / np.sqrt(var + copy.get_layer("conv_bn").epsilon)), 1.0, rtol=1e-5)
    assert copy.get_layer("pool_bn").get_weights()[0].tolist() == model.get_layer("pool_bn").get_weights()[0].tolist()


def test_only_wide_normalisations_that_no_weighted_layer_absorbs_stay_float32():
    from genrenet.infer.quantize import equalized, wide_scale_norms

    model = _wide_bn_model()
    assert [l.name for l in wide_scale_norms(model)] == ["pool_bn"]
    assert [l.name for l in wide_scale_norms(equalized(model))] == ["pool_bn"]
