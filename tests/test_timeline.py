"""Genre timelines: per-window probabilities that average to predict's, the figure, and predict --timeline."""
import struct

import numpy as np
import pytest
from matplotlib.figure import Figure

from conftest import run_cli, write_tone
from genrenet import Classifier, plot_timeline, predict
from genrenet.errors import AudioError
from genrenet.infer.timeline import png_name, window_probabilities


@pytest.fixture(scope="module")
def predictor(tiny_run):
    return Classifier.from_preset(str(tiny_run))


def _predict_probs(predictor, path):
    result = predict(predictor.source, [path], verbose=0)[0]
    return result, np.array([result["probabilities"][label] for label in predictor.labels])


@pytest.mark.parametrize("seconds, rate, channels", [(10.0, 44100, 2), (7.3, 22050, 1), (1.2, 16000, 1)],
                         ids=["resampled-stereo", "partial-last-window", "shorter-than-a-window"])
def test_window_probabilities_average_to_predict(predictor, tmp_path, seconds, rate, channels):
    path = write_tone(tmp_path / f"song-{rate}.flac", seconds=seconds, sr=rate, freq=330.0, channels=channels)
    times, probs = window_probabilities(predictor, path)
    result, expected = _predict_probs(predictor, path)
    window = predictor.window_samples / predictor.sample_rate
    assert probs.shape == (result["windows"], len(predictor.labels))
    np.testing.assert_allclose(times, np.arange(len(times)) * window)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs.mean(axis=0), expected, atol=1e-5)


def test_window_probabilities_of_a_real_clip(predictor, gtzan_dev):
    path = sorted((gtzan_dev / "jazz").glob("*.wav"))[0]
    times, probs = window_probabilities(predictor, path)
    _, expected = _predict_probs(predictor, path)
    assert len(times) == 10  # 30 s in 3-s windows
    np.testing.assert_allclose(probs.mean(axis=0), expected, atol=1e-5)


def test_window_probabilities_refuse_what_predict_skips(predictor, tmp_path):
    silent = tmp_path / "silent.wav"
    import soundfile as sf

    sf.write(str(silent), np.zeros(22050, np.float32), 22050)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio")
    for path, reason in ((silent, "silent"), (corrupt, "truncated or damaged")):
        with pytest.raises(AudioError, match=reason):
            window_probabilities(predictor, path)
        row = predict(predictor.source, [path], verbose=0)[0]
        assert row.get("label") is None and reason in (row.get("error") or row.get("reason")), row


def test_a_file_shorter_than_a_window_is_drawn_over_one_whole_window(predictor, tmp_path):
    path = write_tone(tmp_path / "short.wav", seconds=0.5)
    times, probs = window_probabilities(predictor, path)
    assert times.tolist() == [0.0] and probs.shape == (1, len(predictor.labels))
    genre_ax = plot_timeline(predictor, path).axes[1]
    assert genre_ax.get_xlim()[1] == pytest.approx(predictor.window_samples / predictor.sample_rate)


def test_plot_timeline_shares_one_time_axis_over_the_song(tiny_run, tmp_path):
    path = write_tone(tmp_path / "song.wav", seconds=10.0)
    fig = plot_timeline(str(tiny_run), path)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    spec_ax, genre_ax = fig.axes
    assert spec_ax.get_shared_x_axes().joined(spec_ax, genre_ax)
    lo, hi = genre_ax.get_xlim()
    assert lo <= 0 and 10.0 <= hi < 10.5
    assert genre_ax.get_ylim() == (0, 1)
    labels = Classifier.from_preset(str(tiny_run)).labels
    assert {t.get_text() for t in genre_ax.get_legend().get_texts()} == set(labels)
    assert spec_ax.images and spec_ax.images[0].get_array().shape[0] == 128  # mel bands of the run's front-end


def test_png_names_stay_unique_within_a_job():
    taken = set()
    names = [png_name(p, taken) for p in ("a/song.wav", "b/song.flac", "c/song.wav", "d/other.ogg")]
    assert names == ["song.png", "song-2.png", "song-3.png", "other.png"]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_predict_timeline_writes_one_png_per_file(tiny_run, tmp_path):
    songs = [write_tone(tmp_path / "in" / "a.wav", seconds=7.0, freq=220.0),
             write_tone(tmp_path / "in" / "b.flac", seconds=4.0, sr=44100, freq=880.0)]
    corrupt = tmp_path / "in" / "c.wav"
    corrupt.write_bytes(b"not audio")
    out = tmp_path / "timelines"
    r = run_cli("predict", tiny_run, *songs, corrupt, "--timeline", out, "--json")
    assert r.returncode == 1 and "genrenet: 1 of 3 files failed" in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    for png in out.iterdir():
        width, height = _png_size(png)
        assert 800 <= width <= 2000 and 400 <= height <= 1200, (png, width, height)
        assert png.stat().st_size > 10_000
    assert f"wrote {out / 'a.png'}" in r.stderr
    assert r.stdout.strip().startswith("[")  # --json output stays clean on stdout


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    from genrenet.serve.export import export

    return export(str(tiny_run), str(tmp_path_factory.mktemp("export")), tflite=True, verbose=0)


@pytest.mark.parametrize("kind", ["savedmodel", "tflite"])
def test_timelines_of_exported_models_average_to_predict(exported, kind, tmp_path):
    import os

    source = str(exported) if kind == "savedmodel" else os.path.join(str(exported), "model.tflite")
    exported_predictor = Classifier.from_preset(source)
    assert exported_predictor.kind == kind
    path = write_tone(tmp_path / "song.wav", seconds=9.5, sr=32000, freq=660.0)
    _, probs = window_probabilities(exported_predictor, path)
    _, expected = _predict_probs(exported_predictor, path)
    np.testing.assert_allclose(probs.mean(axis=0), expected, atol=1e-5)
    assert len(plot_timeline(exported_predictor, path).axes) == 2


def test_spectrogram_follows_the_front_end_recorded_beside_a_tflite_file(exported, tmp_path):
    import json
    import os
    import shutil

    with open(os.path.join(str(exported), "assets", "genrenet.json"), encoding="utf-8") as f:
        meta = json.load(f)
    meta["features"] = {**meta["features"], "n_mels": 40, "hop_length": 1024}
    shutil.copy(os.path.join(str(exported), "model.tflite"), tmp_path / "m.tflite")
    (tmp_path / "m.json").write_text(json.dumps(meta), encoding="utf-8")
    path = write_tone(tmp_path / "song.wav", seconds=5.0)
    fig = plot_timeline(str(tmp_path / "m.tflite"), path)
    spectrogram = fig.axes[0].images[0].get_array()
    assert spectrogram.shape == (40, 1 + int(5.0 * 22050) // 1024)  # [bands, frames] at the recorded settings
