"""Real-dataset sources (FMA, k-fold specs), the decoded-audio cache and bad input, with files the tests write."""
import csv
import os
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY, write_tone
from genrenet.data import (DatasetError, SkipLog, TrainingSpec, kfold, load_dataset, training_epochs,
                           validation_dataset, window_dataset)
from genrenet.data import sources

SR = 22050


# ------------------------------------------------------------------------------------------------ FMA
def _fma(root, tracks, subsets=("small",), write=True):
    """A miniature FMA: fma_metadata/tracks.csv with FMA's 3-row header, and fma_<subset>/NNN/NNNNNN.mp3."""
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    top = ["", "album", "artist", "artist", "set", "set", "track", "track", "track"]
    names = ["", "title", "id", "name", "split", "subset", "genre_top", "genres", "title"]
    third = ["track_id"] + [""] * 8
    with open(meta / "tracks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([top, names, third])
        for tid, artist, split, subset, genre in tracks:
            w.writerow([tid, "An album, with comma", artist, f"Artist {artist}", split, subset, genre, "[12]",
                        "A title\nwith a newline"])
    for s in subsets:
        (root / f"fma_{s}").mkdir()
    if write:
        for tid, _, _, subset, genre in tracks:
            for s in subsets:
                if sources is not None and ("small", "medium", "large").index(subset) <= (
                        "small", "medium", "large").index(s):
                    write_tone(root / f"fma_{s}" / f"{tid:06d}"[:3] / f"{tid:06d}.wav", seconds=0.3,
                               freq=200 + tid)
                    (root / f"fma_{s}" / f"{tid:06d}"[:3] / f"{tid:06d}.wav").rename(
                        root / f"fma_{s}" / f"{tid:06d}"[:3] / f"{tid:06d}.mp3")
    return root


TRACKS = [(2, 1, "training", "small", "Hip-Hop"), (3, 1, "training", "small", "Hip-Hop"),
          (5, 2, "validation", "small", "Rock"), (10, 3, "test", "small", "Pop"),
          (140, 4, "training", "medium", "Folk"), (141, 5, "training", "large", "Jazz"),
          (142, 6, "training", "small", "")]


def test_fma_official_split_top_genre_and_artist_groups(tmp_path):
    root = _fma(tmp_path, TRACKS)
    ds = load_dataset(f"fma:{root}")
    assert ds.name == "fma_small"
    assert sorted(c.id for c in ds.clips) == ["000002", "000003", "000005", "000010"]
    assert ds.labels == ["Hip-Hop", "Pop", "Rock"]
    by_id = {c.id: c for c in ds.clips}
    assert by_id["000005"].split == "val" and by_id["000010"].split == "test" and by_id["000002"].split == "train"
    assert by_id["000002"].group == by_id["000003"].group == "artist:1"
    assert by_id["000002"].path.endswith("fma_small/000/000002.mp3")
    assert any("train 2, val 1, test 1" in n for n in ds.notes)
    assert any("1 tracks without a top-level genre" in n for n in ds.notes)


def test_fma_subset_choice_and_missing_files(tmp_path):
    root = _fma(tmp_path, TRACKS, subsets=("small", "medium"))
    ds = load_dataset(f"fma:{root}")  # both present: the smallest, and it says so
    assert ds.name == "fma_small" and any("using small" in n for n in ds.notes)
    medium = load_dataset(f"fma:{root}?subset=medium")
    assert "Folk" in medium.labels and "Jazz" not in medium.labels and len(medium) == 5
    (root / "fma_medium" / "000" / "000140.mp3").unlink()
    medium = load_dataset(f"fma:{root}?subset=medium")
    assert len(medium) == 4 and "file not found" in dict(medium.skipped)[str(root / "fma_medium/000/000140.mp3")]
    with pytest.raises(DatasetError, match="subset large asked for"):
        load_dataset(f"fma:{root}?subset=large")


def test_fma_names_every_file_it_does_not_use(tmp_path):
    root = _fma(tmp_path, TRACKS, subsets=("small", "medium"))
    (root / "fma_metadata" / "genres.csv").write_text("genre_id,title\n")
    (root / "fma_small" / "README.txt").write_text("fma_small")
    (root / "fma_small" / "checksums").write_text("")
    ds = load_dataset(f"fma:{root}")
    reasons = {os.path.relpath(p, root): r for p, r in ds.ignored}
    assert reasons["fma_metadata/genres.csv"] == "outside the audio folder fma_small/ (metadata, not audio)"
    assert reasons["fma_small/README.txt"] == "not an audio file (extension '.txt')"
    assert reasons["fma_small/checksums"] == "not an audio file (no extension)"
    assert reasons["fma_small/000/000142.mp3"] == "track without a top-level genre in tracks.csv"
    assert reasons["fma_medium"].startswith("folder of FMA subset medium (6 files)")
    assert "fma_metadata/tracks.csv" not in reasons  # the index itself is used
    assert all(c.seconds == 30.0 for c in ds.clips)
    assert "ignored 5 files" in ds.summary()


def test_fma_errors_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="tracks.csv not found"):
        load_dataset(f"fma:{tmp_path}")
    (tmp_path / "fma_metadata").mkdir()
    (tmp_path / "fma_metadata" / "tracks.csv").write_text("track_id,genre\n1,Rock\n")
    (tmp_path / "fma_small").mkdir()
    with pytest.raises(DatasetError, match="not FMA's tracks.csv"):
        load_dataset(f"fma:{tmp_path}")


# ------------------------------------------------------------------------------------------------ k-fold
def _clips(groups_per_label):
    from genrenet.data import Clip

    out = []
    for label, groups in groups_per_label.items():
        for g, n in enumerate(groups):
            out += [Clip(id=f"{label}{g}.{i}", label=label, group=f"{label}:{g}") for i in range(n)]
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_kfold_is_stratified_group_disjoint_and_seeded(seed):
    clips = _clips({"a": [3, 2, 2, 1, 1, 1], "b": [2, 2, 2, 2, 2], "c": [4, 1, 1, 1, 1, 1, 1]})
    folds, notes = kfold(clips, 3, seed)
    assert not notes
    assert sorted(c.id for f in folds for c in f) == sorted(c.id for c in clips)
    for i, f in enumerate(folds):
        others = {c.group for j, g in enumerate(folds) if j != i for c in g}
        assert not {c.group for c in f} & others
        assert set(Counter(c.label for c in f)) == {"a", "b", "c"}
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 3
    again, _ = kfold(clips, 3, seed)
    assert [[c.id for c in f] for f in folds] == [[c.id for c in f] for f in again]


def test_kfold_splits_single_artist_classes_by_clip_and_says_so():
    clips = _clips({"blues": [4], "jazz": [2, 2]})
    folds, notes = kfold(clips, 2, 0)
    assert [Counter(c.label for c in f) for f in folds] == [{"blues": 2, "jazz": 2}] * 2
    assert len(notes) == 1 and "'blues'" in notes[0] and "by clip" in notes[0]


def test_fold_specs_on_folders_and_gtzan(tmp_path, gtzan_dev):
    ds = load_dataset(f"{gtzan_dev}?folds=4&fold=1")
    test = ds.split("test")
    assert len(test) == 10 and len(ds.split("train")) == 30 and ds.name.endswith("fold1of4")
    assert set(c.label for c in test) == set(ds.labels)
    two = load_dataset(f"{gtzan_dev}?folds=2&fold=0")
    jazz_test = {c.group for c in two.split("test") if c.label == "jazz"}
    assert jazz_test and not jazz_test & {c.group for c in two.split("train")}  # two jazz artists: disjoint
    g = load_dataset(f"gtzan:{gtzan_dev}?folds=4&fold=1")
    assert len(g) == 40 and [c.id for c in g.split("test")] == [c.id for c in test]  # folds use every file
    with pytest.raises(DatasetError, match="fold must be in"):
        load_dataset(f"{gtzan_dev}?folds=4&fold=4")


# ------------------------------------------------------------------------------------------------ cache
def _count_loads(monkeypatch):
    calls = Counter()
    original = sources.Clip.load

    def counting(self, sample_rate):
        calls[self.id] += 1
        return original(self, sample_rate)

    monkeypatch.setattr(sources.Clip, "load", counting)
    return calls


def test_memory_cache_decodes_each_clip_once(monkeypatch, tmp_path):
    for n, label in enumerate(("a", "a", "b", "b")):
        write_tone(tmp_path / "d" / label / f"{n}.wav", seconds=1.5, freq=200 + 50 * n)
    calls = _count_loads(monkeypatch)
    ds = load_dataset(str(tmp_path / "d"))
    spec = TrainingSpec(ds.labels, sample_rate=SR, window_samples=SR, batch_size=8, seed=0, cache="memory")
    batches, _ = training_epochs(ds.clips, spec, epochs=3)
    list(batches)
    assert len(calls) == len(ds) and set(calls.values()) == {1}


def test_disk_cache_is_reused_by_later_pipelines_and_runs(monkeypatch, tmp_path):
    write_tone(tmp_path / "d" / "a" / "x.wav", seconds=1.5)
    write_tone(tmp_path / "d" / "b" / "y.flac", seconds=1.5, freq=300)
    sf.write(tmp_path / "d" / "b" / "silent.wav", np.zeros(SR * 2, np.float32), SR)
    ds = load_dataset(str(tmp_path / "d"))
    calls = _count_loads(monkeypatch)
    cache = tmp_path / "cache"
    spec = TrainingSpec(ds.labels, sample_rate=SR, window_samples=SR, seed=0, cache=str(cache))
    first = SkipLog()
    epoch1 = [x.numpy() for x, _ in training_epochs(ds.clips, spec, epochs=1, log=first)[0]]
    assert sum(calls.values()) == 3 and len(list(cache.rglob("*.npy"))) == 3
    later = SkipLog()  # e.g. a second epoch in a new process, or the next run
    epoch2 = [x.numpy() for x, _ in training_epochs(ds.clips, spec, epochs=1, log=later)[0]]
    list(validation_dataset(ds.clips, ds.labels, sample_rate=SR, window_samples=SR, cache=str(cache), log=later))
    assert sum(calls.values()) == 3  # not decoded again
    assert all(np.array_equal(a, b) for a, b in zip(epoch1, epoch2))
    assert "silent" in " ".join(later.summary())  # skips are still reported from the cache
    # another sample rate is another cache entry
    list(window_dataset(ds.clips, sample_rate=16000, window_samples=16000, cache=str(cache)))
    assert sum(calls.values()) == 6


# ------------------------------------------------------------------------------------------------ bad input
def _bad_folder(root):
    """Good files in two classes plus one of every kind of bad input; 'empty' is a class with nothing usable."""
    write_tone(root / "rock" / "good1.wav", seconds=1.5)
    write_tone(root / "rock" / "good2.ogg", seconds=1.5, freq=500)
    write_tone(root / "jazz" / "good3.flac", seconds=1.5, freq=300)
    write_tone(root / "jazz" / "short.wav", seconds=0.4, freq=350)
    good = (root / "rock" / "good1.wav").read_bytes()
    (root / "rock" / "truncated.wav").write_bytes(good[:30])  # header cut
    (root / "rock" / "corrupt.mp3").write_bytes(b"\xff\xfb" + b"garbage" * 50)
    (root / "rock" / "zero.wav").write_bytes(b"")
    (root / "rock" / "song.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    (root / "rock" / "notes.txt").write_text("not audio, ignored")
    sf.write(root / "jazz" / "silent.wav", np.zeros(SR * 2, np.float32), SR)
    bad = np.full(SR * 2, 0.1, np.float32)
    bad[100] = np.inf
    sf.write(root / "jazz" / "inf.wav", bad, SR, subtype="FLOAT")
    bad[100] = np.nan
    sf.write(root / "jazz" / "nan.wav", bad, SR, subtype="FLOAT")
    (root / "empty").mkdir()
    (root / "empty" / "broken.wav").write_bytes(b"RIFF....WAVE")
    (root / "nothing").mkdir()
    return root


def test_bad_files_are_reported_with_reasons(tmp_path):
    ds = load_dataset(str(_bad_folder(tmp_path)))
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in ds.skipped}
    assert set(reasons) == {"truncated.wav", "corrupt.mp3", "zero.wav", "song.m4a", "broken.wav"}
    assert reasons["song.m4a"] == ".m4a: unsupported format; convert with ffmpeg (e.g. ffmpeg -i song.m4a song.flac)"
    assert reasons["truncated.wav"].startswith("truncated or damaged")
    assert reasons["corrupt.mp3"].startswith("not audio") and reasons["zero.wav"] == "empty file (0 bytes)"
    assert ds.labels == ["jazz", "rock"]
    assert "class 'empty' has no usable files (1 skipped): it is left out" in ds.notes
    assert "folder 'nothing' has no audio files: it is not used as a class" in ds.notes
    log = SkipLog(ds.skipped)
    list(window_dataset(ds.clips, sample_rate=SR, window_samples=SR, log=log))
    later = {n.rsplit("/", 1)[-1]: r for n, r in log.skipped.items()}
    assert later["silent.wav"] == "is silent (all samples are zero)"
    assert "NaN or infinite" in later["nan.wav"] and "NaN or infinite" in later["inf.wav"]
    assert [p.rsplit("/", 1)[-1] for p in log.padded] == ["short.wav"]
    assert "padded 1 clips shorter than one window" in "\n".join(log.summary())


def test_csv_problems(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "nolabel.csv").write_text("path,genre\na.wav,rock\n")
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['label'\]"):
        load_dataset(f"csv:{tmp_path / 'nolabel.csv'}")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="missing column"):
        load_dataset(f"csv:{tmp_path / 'empty.csv'}")
    (tmp_path / "gone.csv").write_text("path,label\nmissing.wav,rock\nzz.wav,jazz\n")
    with pytest.raises(DatasetError, match="no usable audio clips.*missing.wav"):
        load_dataset(f"csv:{tmp_path / 'gone.csv'}")
    (tmp_path / "half.csv").write_text("path,label\na.wav,rock\nmissing.wav,jazz\n")
    ds = load_dataset(f"csv:{tmp_path / 'half.csv'}")
    assert ds.labels == ["rock"] and "class 'jazz' has no usable files (1 skipped): it is left out" in ds.notes


def test_training_continues_over_good_files_and_reports_skips(tmp_path, capsys):
    from genrenet.training.trainer import train

    data = _bad_folder(tmp_path / "data")
    run = tmp_path / "run"
    train("cnn", str(data), str(run), epochs=1, window_seconds=1.0, val_fraction=0.34, verbose=2,
          model_kwargs={"filters": [4], "dense_units": [4]})
    out = capsys.readouterr().out
    assert "skipped 5 files" in out and "class 'empty' has no usable files" in out
    assert "skipped 9 files" in out  # + silent, NaN, inf and too short, found decoding before training
    assert "is silent" in out and "short.wav: too short (0.4 s; at least 1 s)" in out
    rows = (run / "skipped.tsv").read_text().splitlines()
    assert rows[0] == "file\treason" and any("nan.wav\t" in r for r in rows)
    assert (run / "model.keras").exists()

    silent = tmp_path / "silent"
    for label in ("a", "b"):
        for i in range(2):
            (silent / label).mkdir(parents=True, exist_ok=True)
            sf.write(silent / label / f"{i}.wav", np.zeros(SR * 2, np.float32), SR)
    with pytest.raises(DatasetError, match="no usable training audio"):
        train("cnn", str(silent), str(tmp_path / "run2"), epochs=1, window_seconds=1.0, verbose=0,
              model_kwargs={"filters": [4], "dense_units": [4]})
    (tmp_path / "allbad" / "x").mkdir(parents=True)
    (tmp_path / "allbad" / "x" / "broken.wav").write_bytes(b"RIFF....WAVE")
    with pytest.raises(DatasetError, match="no usable audio clips.*broken.wav"):
        train("cnn", str(tmp_path / "allbad"), str(tmp_path / "run3"), verbose=0)


def test_fixed_hop_training_windows_are_the_same_every_epoch():
    ds = load_dataset(TINY)  # 3.5-s clips
    spec = TrainingSpec(ds.labels, sample_rate=SR, window_samples=SR, batch_size=100, seed=0, hop_samples=SR // 2)
    batches, steps = training_epochs(ds.clips, spec, epochs=2)
    both = [x.numpy() for x, _ in batches]
    e1, e2 = np.concatenate(both[:steps]), np.concatenate(both[steps:])
    assert len(e1) == len(ds) * 6  # windows at 0, 0.5, ..., 2.5 s
    key = lambda a: sorted(map(bytes, a))  # noqa: E731  (order is shuffled, content is fixed)
    assert key(e1) == key(e2)
