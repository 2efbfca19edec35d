"""Datasets, splits and the tf.data pipeline: what users rely on when they bring their own audio."""
import numpy as np
import pytest
import soundfile as sf

from conftest import TINY, write_tone
from genrenet.data import (AudioError, Clip, DatasetError, SkipLog, TrainingSpec, holdout_split, load_audio,
                           load_dataset, streamed_window_batches, training_epochs, window_dataset)
from genrenet.data import synthetic


def test_synthetic_is_seeded_and_varied():
    a = synthetic.generate(classes=("rock", "jazz"), clips_per_class=2, seconds=2.0, seed=3)
    b = synthetic.generate(classes=("rock", "jazz"), clips_per_class=2, seconds=2.0, seed=3)
    c = synthetic.generate(classes=("rock", "jazz"), clips_per_class=2, seconds=2.0, seed=4)
    for (ia, la, xa), (ib, lb, xb) in zip(a, b):
        assert (ia, la) == (ib, lb) and np.array_equal(xa, xb)
    assert not np.array_equal(a[0][2], c[0][2])
    assert not np.array_equal(a[0][2], a[1][2])  # clips of one class differ
    for _, _, x in a:
        assert x.dtype == np.float32 and x.shape == (44100,) and 0.05 < np.abs(x).max() <= 1.0


def test_synthetic_spec_options():
    ds = load_dataset("synthetic:classes=4,clips=3,seconds=2,seed=5")
    assert len(ds) == 12 and len(ds.labels) == 4 and not ds.has_splits
    with pytest.raises(DatasetError, match="unknown synthetic options"):
        load_dataset("synthetic:colors=3")


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_multichannel_files_are_averaged_to_mono(tmp_path, channels):
    rng = np.random.default_rng(channels)
    audio = (0.3 * rng.standard_normal((22050, channels))).astype(np.float32)
    path = tmp_path / f"c{channels}.wav"
    sf.write(path, audio, 22050, subtype="FLOAT")
    mono = load_audio(path, 22050)
    assert mono.dtype == np.float32 and mono.shape == (22050,)
    np.testing.assert_allclose(mono, audio.mean(axis=1), rtol=0, atol=1e-6)
    if channels <= 2:  # the common cases are exactly the channel mean
        np.testing.assert_array_equal(mono, audio.mean(axis=1))


def test_folder_of_mixed_formats_rates_and_channels(tmp_path):
    write_tone(tmp_path / "a" / "one.wav", sr=44100, channels=2)
    write_tone(tmp_path / "a" / "two.flac", sr=16000)
    write_tone(tmp_path / "b" / "three.ogg", sr=22050, freq=660)
    write_tone(tmp_path / "b" / "four.mp3", sr=44100, freq=880)
    ds = load_dataset(str(tmp_path))
    assert ds.labels == ["a", "b"] and len(ds) == 4 and not ds.skipped
    for clip in ds.clips:
        audio = clip.load(22050)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) - 22050) < 1200  # mp3 adds encoder padding


def test_resampling_keeps_the_pitch(tmp_path):
    path = write_tone(tmp_path / "t.wav", seconds=1.0, sr=44100, freq=1000.0, channels=2)
    audio = load_audio(path, 16000)
    assert len(audio) == 16000
    peak_hz = np.argmax(np.abs(np.fft.rfft(audio))) * 16000 / len(audio)
    assert abs(peak_hz - 1000.0) < 2.0


def test_bad_files_are_skipped_with_reasons(tmp_path):
    write_tone(tmp_path / "good" / "ok.wav")
    write_tone(tmp_path / "good" / "ok2.wav", freq=300)
    (tmp_path / "good" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    (tmp_path / "good" / "empty.wav").write_bytes(b"")
    ds = load_dataset(str(tmp_path))
    assert len(ds) == 2
    reasons = dict(ds.skipped)
    assert set(map(lambda p: p.split("/")[-1], reasons)) == {"corrupt.wav", "empty.wav"}
    assert {p.split("/")[-1]: r for p, r in reasons.items()} == {
        "corrupt.wav": "truncated or damaged (its header or data is cut short or broken)",
        "empty.wav": "empty file (0 bytes)"}
    assert "skipped 2 files" in ds.summary()


def test_nan_and_silent_audio_are_refused(tmp_path):
    p = tmp_path / "nan.wav"
    sf.write(p, np.array([0.1, np.nan, 0.2] * 1000, np.float32), 22050, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(p, 22050)
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav", 22050)


def test_empty_or_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="path not found"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no audio files"):
        load_dataset(str(tmp_path / "empty"))


def test_csv_dataset(tmp_path):
    write_tone(tmp_path / "x.wav")
    write_tone(tmp_path / "y.wav", freq=200)
    (tmp_path / "list.csv").write_text("path,label,split,group\nx.wav,rock,train,a1\ny.wav,jazz,test,a2\n"
                                       ",jazz,train,a3\n")
    ds = load_dataset(f"csv:{tmp_path / 'list.csv'}")
    assert [c.label for c in ds.clips] == ["rock", "jazz"]
    assert [c.split for c in ds.clips] == ["train", "test"]
    assert len(ds.skipped) == 1
    (tmp_path / "bad.csv").write_text("file,genre\nx.wav,rock\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_dataset(f"csv:{tmp_path / 'bad.csv'}")


def test_gtzan_layout_gets_artist_groups_and_the_filtered_split(gtzan_dev):
    plain = load_dataset(str(gtzan_dev))
    assert len(plain) == 40 and len(plain.labels) == 10 and not plain.has_splits
    blues = {c.group for c in plain.clips if c.label == "blues"}
    assert blues == {"blues:John Lee Hooker"}
    filtered = load_dataset(f"gtzan:{gtzan_dev}")
    assert len(filtered) == 38  # two dev clips are excluded by the fault filter
    assert {s: len(filtered.split(s)) for s in ("train", "val", "test")} == {"train": 15, "val": 19, "test": 4}
    assert "found train 15/443" in filtered.notes[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holdout_never_leaks_a_clip_or_group(seed):
    ds = load_dataset("synthetic:classes=4,clips=10,seconds=1")
    for i, c in enumerate(ds.clips):
        c.group = f"artist{i // 3}"  # groups of 3 clips
    train, held, notes = holdout_split(ds.clips, 0.25, seed)
    assert not notes
    assert {c.id for c in train}.isdisjoint({c.id for c in held})
    assert {c.group for c in train}.isdisjoint({c.group for c in held})
    assert len(train) + len(held) == len(ds)
    assert {c.label for c in train} == {c.label for c in held} == set(ds.labels)


def test_holdout_of_a_single_artist_class_falls_back_to_clips(gtzan_dev):
    ds = load_dataset(str(gtzan_dev))
    train, held, notes = holdout_split(ds.clips, 0.25, 0)
    assert {c.label for c in train} == set(ds.labels)  # no class lost from training
    assert any("'blues'" in n and "by clip" in n for n in notes)
    assert not any("'jazz'" in n for n in notes)  # two jazz artists: held out by artist
    assert {c.id for c in train}.isdisjoint({c.id for c in held})


def test_validation_is_held_out_by_default_only_when_every_class_can_spare_clips():
    from genrenet.training.splits import resolve_splits

    big = load_dataset("synthetic:classes=3,clips=10,seconds=1")
    train, val, notes = resolve_splits(big, None, 0)
    assert len(val) == 6 and len(train) == 24 and not notes  # 20 % of 10 clips per class
    small = load_dataset("synthetic:classes=3,clips=9,seconds=1")
    train, val, notes = resolve_splits(small, None, 0)
    assert not val and len(train) == 27 and "only 9 training clips" in notes[0]
    train, val, _ = resolve_splits(small, 0.2, 0)  # asked for explicitly: held out anyway
    assert len(val) == 6
    train, val, notes = resolve_splits(big, 0, 0)  # 0 never holds out
    assert not val and len(train) == 30


def test_training_windows_are_random_crops_with_one_hot_labels():
    ds = load_dataset(TINY)
    log = SkipLog()
    spec = TrainingSpec(ds.labels, sample_rate=22050, window_samples=22050, batch_size=4, seed=0)
    batches, steps = training_epochs(ds.clips, spec, epochs=2, log=log)
    both = [(x.numpy(), y.numpy()) for x, y in batches]
    epoch1, epoch2 = both[:steps], both[steps:]
    total = sum(len(x) for x, _ in epoch1)
    assert total == len(ds) * 4  # round(3.5 s / 1 s) crops per clip
    x, y = epoch1[0]
    assert x.shape == (4, 22050) and y.shape == (4, 3) and np.allclose(y.sum(1), 1)
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])  # fresh crops/order every epoch


def test_evaluation_windows_cover_each_clip_in_order(tmp_path):
    write_tone(tmp_path / "c" / "short.wav", seconds=0.5)
    write_tone(tmp_path / "c" / "long.wav", seconds=3.2)
    ds = load_dataset(str(tmp_path))
    log = SkipLog()
    items = [(x.numpy(), i.numpy()) for x, i in window_dataset(ds.clips, sample_rate=22050,
                                                               window_samples=22050, batch_size=2, log=log)]
    index = np.concatenate([i for _, i in items])
    names = [c.id for c in ds.clips]
    assert index.tolist() == [names.index("c/long.wav")] * 3 + [names.index("c/short.wav")]
    assert len(log.padded) == 1 and "padded 1 clips" in " ".join(log.summary())



def _windows_by_clip(batches):
    out = {}
    for x, index in batches:
        for row, i in zip(np.asarray(x), np.asarray(index)):
            out.setdefault(int(i), []).append(row)
    return out


def test_predict_streamed_and_exported_models_cut_the_same_windows():
    """Every window starts at a multiple of the hop while a whole window fits (the rest of the audio is left
    out), and a clip shorter than a window gives one zero-padded window: in predict's tf.data windows, in the
    streamed windows of long files and in an exported model's in-graph windows alike."""
    import tensorflow as tf

    from genrenet.serve.export import windowed_classifier

    w, hop, sr = 100, 40, 8000
    starts = {30: [0], 100: [0], 139: [0], 140: [0, 40], 261: [0, 40, 80, 120, 160]}
    lengths = list(starts)
    clips = [Clip(id=f"c{n}", label="", audio=np.arange(1, n + 1, dtype=np.float32), sample_rate=sr)
             for n in lengths]
    options = dict(sample_rate=sr, window_samples=w, hop_samples=hop, batch_size=3)
    predicted = _windows_by_clip(window_dataset(clips, **options))
    streamed = _windows_by_clip(streamed_window_batches(clips, block_seconds=37 / sr, **options))
    for k, n in enumerate(lengths):
        padded = np.pad(np.arange(1, n + 1, dtype=np.float32), (0, w))
        expected = np.stack([padded[s:s + w] for s in starts[n]])
        np.testing.assert_array_equal(np.stack(predicted[k]), expected)
        np.testing.assert_array_equal(np.stack(streamed[k]), expected)
    # the export's windows, seen through a model whose output marks the first sample of each window it gets
    top = max(lengths)
    classify = windowed_classifier(lambda x, training: tf.one_hot(tf.cast(x[:, 0], tf.int32) - 1, top),
                                   [str(i) for i in range(top)], w, hop)
    batch = np.stack([np.pad(np.arange(1, n + 1, dtype=np.float32), (0, top - n)) for n in lengths])
    probabilities = classify(tf.constant(batch), tf.constant(lengths))["probabilities"].numpy()
    for row, n in zip(probabilities, lengths):
        assert np.flatnonzero(row).tolist() == starts[n]
        np.testing.assert_allclose(row[starts[n]], 1 / len(starts[n]))
