"""TFLite Model Metadata in the exported model.tflite: written and read back by genrenet, ignored by LiteRT (same
outputs bit for bit), and enough for MediaPipe Tasks' AudioClassifier to load the file and agree with predict."""
import os

import keras
import numpy as np
import pytest

from conftest import GTZAN_DEV

import genrenet
from genrenet.data.synthetic import generate_clip
from genrenet.infer.tflite_metadata import read_metadata, with_audio_metadata

SR = 22050
LABELS = ["blues", "classical", "hip hop", "métal"]  # a space and a non-ASCII letter must survive
DESCRIBE = dict(sample_rate=SR, name="genrenet cnn", description="genrenet cnn genre classifier",
                version=genrenet.__version__)


def _interpreter(content):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=content, num_threads=1)


def _lite_probs(content, windows):
    """LiteRT's probabilities for ``windows`` [n, W], one window per call (as MediaPipe runs the model)."""
    it = _interpreter(content)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    rows = []
    for window in windows:
        it.set_tensor(inp, window[None].astype(np.float32))
        it.invoke()
        rows.append(it.get_tensor(out)[0].copy())
    return np.stack(rows)


def _music(style, seconds, seed):
    return (0.8 * generate_clip(style, seconds, SR, np.random.default_rng(seed))).astype(np.float32)


@pytest.fixture(scope="module")
def plain_cnn():
    """A small untrained cnn (fixed seed) and its plain TFLite conversion."""
    from genrenet.serve.export import tflite_model

    keras.utils.set_random_seed(0)
    model = genrenet.build_model("cnn", num_classes=len(LABELS), filters=[8, 16], dense_units=[16])
    return model, tflite_model(model, model.input_shape[1])


def test_metadata_round_trips_and_is_idempotent(plain_cnn):
    _, plain = plain_cnn
    content = with_audio_metadata(plain, labels=LABELS, author="genrenet", license="MIT", **DESCRIBE)
    assert read_metadata(content) == {
        "name": "genrenet cnn", "description": "genrenet cnn genre classifier", "version": genrenet.__version__,
        "author": "genrenet", "license": "MIT", "min_parser_version": "1.3.0", "sample_rate": SR, "channels": 1,
        "label_file": "labels.txt", "labels": LABELS, "score_thresholds": None, "global_score_threshold": None}
    assert with_audio_metadata(content, labels=LABELS, author="genrenet", license="MIT", **DESCRIBE) == content
    relabelled = with_audio_metadata(content, labels=[l.upper() for l in LABELS], **dict(DESCRIBE, sample_rate=16000))
    meta = read_metadata(relabelled)
    assert meta["labels"] == [l.upper() for l in LABELS] and meta["sample_rate"] == 16000 and meta["author"] is None


def test_model_without_metadata_or_with_wrong_labels_is_refused(plain_cnn):
    _, plain = plain_cnn
    with pytest.raises(ValueError, match="no TFLite Model Metadata"):
        read_metadata(plain)
    with pytest.raises(ValueError, match="4 outputs but 3 labels"):
        with_audio_metadata(plain, labels=LABELS[:3], **DESCRIBE)
    with pytest.raises(ValueError, match="line breaks"):
        with_audio_metadata(plain, labels=["a", "b\nc", "d", "e"], **DESCRIBE)


def test_litert_outputs_are_bit_identical_with_metadata(plain_cnn):
    model, plain = plain_cnn
    W = model.input_shape[1]
    content = with_audio_metadata(plain, labels=LABELS, **DESCRIBE)
    windows = np.stack([_music(style, W / SR + 0.1, 3)[:W] for style in ("rock", "jazz", "ambient")])
    before, after = _lite_probs(plain, windows), _lite_probs(content, windows)
    assert np.array_equal(before, after)
    assert np.abs(after - model(windows).numpy()).max() <= 1e-4  # and it is still the model


# --- the exported file in MediaPipe Tasks ---------------------------------------------------------------------

def _mediapipe_audio():
    """MediaPipe's audio tasks; skipped when mediapipe is not installed unless GENRENET_REQUIRE_MEDIAPIPE is set
    (CI sets it: the ``test`` extra installs mediapipe, so there a missing mediapipe fails)."""
    try:
        from mediapipe.tasks.python import audio
        from mediapipe.tasks.python.components.containers.audio_data import AudioData
        from mediapipe.tasks.python.core.base_options import BaseOptions
    except ImportError as e:
        if os.environ.get("GENRENET_REQUIRE_MEDIAPIPE"):
            raise
        pytest.skip(f"mediapipe is not installed (pip install -e '.[test]'): {e}")
    return audio, AudioData, BaseOptions


@pytest.fixture(scope="module")
def exported_tflite(tiny_run, tmp_path_factory):
    from genrenet.serve.export import export

    version = export(str(tiny_run), str(tmp_path_factory.mktemp("export")), tflite=True, verbose=0)
    return os.path.join(version, "model.tflite")


def test_export_writes_the_runs_metadata(exported_tflite, tiny_run):
    from genrenet.run import Run

    run = Run(str(tiny_run))
    with open(exported_tflite, "rb") as f:
        meta = read_metadata(f.read())
    assert meta["labels"] == run.labels and meta["sample_rate"] == run.sample_rate and meta["channels"] == 1
    assert meta["name"] == f"genrenet {run.model_name}" and meta["version"] == genrenet.__version__


def test_metadata_parses_with_mediapipes_own_schema_module(exported_tflite, tiny_run):
    """An independent reader of metadata_schema.fbs (flatc-generated, shipped with mediapipe) sees every field
    in its slot, including those MediaPipe does not need to load the model."""
    _mediapipe_audio()
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    from genrenet.run import Run
    from genrenet.infer.tflite_metadata import metadata_buffer

    with open(exported_tflite, "rb") as f:
        buf = bytearray(metadata_buffer(f.read()))
    assert fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0)
    meta = fb.ModelMetadataT.InitFromPackedBuf(buf, 0)
    assert (meta.name, meta.minParserVersion) == (b"genrenet cnn", b"1.3.0")
    assert meta.version == genrenet.__version__.encode()
    assert meta.author is meta.license is meta.associatedFiles is None
    [graph] = meta.subgraphMetadata
    [waveform], [probabilities] = graph.inputTensorMetadata, graph.outputTensorMetadata
    assert waveform.content.contentPropertiesType == fb.ContentProperties.AudioProperties
    audio = waveform.content.contentProperties
    assert (audio.sampleRate, audio.channels) == (Run(str(tiny_run)).sample_rate, 1)
    assert probabilities.content.contentPropertiesType == fb.ContentProperties.FeatureProperties
    [labels] = probabilities.associatedFiles
    assert (labels.name, labels.type) == (b"labels.txt", fb.AssociatedFileType.TENSOR_AXIS_LABELS)


def _one_window_wavs(folder, clips):
    """Each clip cut to one model window and written as 16-bit WAV; returns the paths and the samples as read
    back, so predict and MediaPipe see the very same audio."""
    import soundfile as sf

    paths, windows = [], []
    for i, clip in enumerate(clips):
        path = folder / f"clip{i}.wav"
        sf.write(str(path), clip, SR, subtype="PCM_16")
        paths.append(str(path))
        windows.append(sf.read(str(path), dtype="float32")[0])
    return paths, np.stack(windows)


def _check_mediapipe_agrees(path, tiny_run, folder, clips):
    """MediaPipe's scores on each one-window clip equal LiteRT's on the same file; its top label is predict's."""
    from genrenet import predict

    audio, AudioData, BaseOptions = _mediapipe_audio()
    files, windows = _one_window_wavs(folder, clips)
    with open(path, "rb") as f:
        content = f.read()
    labels = read_metadata(content)["labels"]
    lite = _lite_probs(content, windows)
    reference = predict(str(tiny_run), files, verbose=0)
    options = audio.AudioClassifierOptions(base_options=BaseOptions(model_asset_path=path), max_results=-1,
                                           running_mode=audio.RunningMode.AUDIO_CLIPS)
    with audio.AudioClassifier.create_from_options(options) as classifier:
        for window, expected, ref in zip(windows, lite, reference):
            [result] = classifier.classify(AudioData.create_from_array(window, SR))  # one window → one result
            categories = result.classifications[0].categories
            assert sorted(c.category_name for c in categories) == sorted(labels)
            scores = np.zeros(len(labels))
            for c in categories:
                assert c.category_name == labels[c.index]
                scores[c.index] = c.score
            np.testing.assert_allclose(scores, expected, atol=1e-6)
            assert ref["windows"] == 1
            p = np.array([ref["probabilities"][l] for l in labels])
            np.testing.assert_allclose(scores, p, atol=1e-4)
            top2 = np.sort(p)[-2:]
            assert categories[0].category_name == ref["label"] or top2[1] - top2[0] <= 1e-4


def test_mediapipe_audio_classifier_agrees_on_synthetic_clips(exported_tflite, tiny_run, tmp_path):
    from genrenet.run import Run

    W = Run(str(tiny_run)).window_samples
    clips = [_music(style, W / SR + 0.1, seed)[:W] for seed, style in enumerate(("rock", "jazz", "ambient", "disco"))]
    _check_mediapipe_agrees(exported_tflite, tiny_run, tmp_path, clips)


@pytest.mark.skipif(not GTZAN_DEV.is_dir(), reason="../shared/data/gtzan_dev is absent")
def test_mediapipe_audio_classifier_agrees_on_real_gtzan_clips(exported_tflite, tiny_run, tmp_path):
    import soundfile as sf

    from genrenet.run import Run

    W = Run(str(tiny_run)).window_samples
    files = [sorted(d.glob("*.wav"))[0] for d in sorted(GTZAN_DEV.iterdir()) if d.is_dir()]
    clips = [sf.read(str(f), start=10 * SR, frames=W, dtype="float32")[0] for f in files]  # 10 s in, one window
    assert len(clips) == 10 and all(len(c) == W for c in clips)
    _check_mediapipe_agrees(exported_tflite, tiny_run, tmp_path, clips)


def test_predict_reads_labels_and_rate_from_a_lone_tflite_file(exported_tflite, tiny_run, plain_cnn, tmp_path):
    """A .tflite copied away from its export (no genrenet.json beside it) predicts from its own metadata; one
    without metadata is refused with the file named."""
    import shutil

    import soundfile as sf

    from genrenet import predict

    lone = tmp_path / "phone" / "genres.tflite"
    lone.parent.mkdir()
    shutil.copy(exported_tflite, lone)
    song = tmp_path / "song.wav"
    sf.write(str(song), _music("rock", 7.0, 5), SR, subtype="PCM_16")
    [got], [ref] = predict(str(lone), [str(song)], verbose=0), predict(str(tiny_run), [str(song)], verbose=0)
    assert got["label"] == ref["label"] and got["windows"] == ref["windows"] == 2
    assert max(abs(got["probabilities"][k] - ref["probabilities"][k]) for k in ref["probabilities"]) <= 1e-4

    bare = tmp_path / "bare.tflite"
    bare.write_bytes(plain_cnn[1])
    with pytest.raises(genrenet.GenrenetError, match="bare.tflite: no labels or sample rate"):
        predict(str(bare), [str(song)], verbose=0)
