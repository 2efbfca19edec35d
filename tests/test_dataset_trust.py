"""A dataset never counts a file twice or under a wrong label, and training never uses a file that is not what
its header says, a clip too short to learn from or a class with no usable clip; with the files the tests write."""
import json
import os
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from conftest import write_tone
from genrenet.data import load_dataset
from genrenet.errors import DatasetError

SR = 22050


def _three_classes(root):
    for label, freq in (("blues", 200), ("classical", 300), ("jazz", 400)):
        for n in range(2):
            write_tone(root / label / f"{label}.{n:05d}.wav", seconds=1.5, freq=freq + n)
    return root


def test_a_link_back_into_the_dataset_is_reported_not_read_twice(tmp_path):
    root = _three_classes(tmp_path / "ds")
    os.symlink("..", root / "classical" / "uplink")
    os.symlink("../blues", root / "jazz" / "blues_again")
    ds = load_dataset(str(root))
    assert len(ds) == 6 and ds.labels == ["blues", "classical", "jazz"]
    assert sorted(c.label for c in ds.clips) == ["blues"] * 2 + ["classical"] * 2 + ["jazz"] * 2
    assert not any("uplink" in c.id or "blues_again" in c.id for c in ds.clips)
    reasons = dict(ds.skipped)
    assert "a link to a folder already in the dataset" in reasons[str(root / "classical" / "uplink")]
    assert "not read twice" in reasons[str(root / "jazz" / "blues_again")]


def test_two_paths_to_one_file_make_one_clip_and_a_link_to_music_outside_works(tmp_path):
    root = _three_classes(tmp_path / "ds")
    outside = tmp_path / "music"
    write_tone(outside / "album" / "song.wav", seconds=1.5, freq=500)
    os.symlink(outside / "album", root / "jazz" / "album")
    os.symlink(outside / "album", root / "blues" / "album")
    os.symlink(outside / "album" / "song.wav", root / "classical" / "song.wav")
    ds = load_dataset(str(root))
    linked = [c for c in ds.clips if c.id.endswith("song.wav")]
    assert len(ds) == 7 and [c.id for c in linked] == ["blues/album/song.wav"]
    reasons = dict(ds.skipped)
    assert "already read" in reasons[str(root / "jazz" / "album")]
    assert "already read" in reasons[str(root / "classical" / "song.wav")]


def test_a_truncated_file_is_skipped_with_what_its_header_promised(tmp_path):
    root = _three_classes(tmp_path / "ds")
    cut = write_tone(root / "jazz" / "cut.wav", seconds=30, freq=450)
    os.truncate(cut, 3000)
    ds = load_dataset(str(root))
    assert len(ds) == 6 and not any(c.id == "jazz/cut.wav" for c in ds.clips)
    assert dict(ds.skipped)[str(cut)] == "truncated: the header promises 30 s, the file holds 0.07 s"


def _train(data, out, **settings):
    from genrenet.training.trainer import train

    return train("cnn", str(data), str(out), epochs=1, verbose=0, batch_size=4,
                 model_kwargs={"filters": [8, 16], "dense_units": [16]}, **settings)


def _skips(run_dir):
    rows = (run_dir / "skipped.tsv").read_text().splitlines()[1:]
    return dict(row.split("\t", 1) for row in rows)


def test_a_class_that_decodes_to_no_usable_clip_is_left_out_of_the_model(tmp_path, monkeypatch):
    from genrenet.data.sources import base

    root = _three_classes(tmp_path / "ds")
    for name in ("jazz.00000.wav", "jazz.00001.wav"):  # headers read, the audio is all zeros
        sf.write(root / "jazz" / name, np.zeros(SR * 2, np.float32), SR)
    write_tone(root / "blues" / "short.wav", seconds=0.5, freq=250)
    decodes = Counter()
    original = base.load_audio
    monkeypatch.setattr(base, "load_audio", lambda path, sr: decodes.update([path]) or original(path, sr))
    run = _train(root, tmp_path / "run", cache="memory")
    assert decodes and set(decodes.values()) == {1}  # the check before training is the memory cache
    assert json.loads((tmp_path / "run" / "labels.json").read_text()) == ["blues", "classical"]
    assert run.config["data"]["train_clips"] == 4
    skips = _skips(tmp_path / "run")
    assert skips[str(root / "jazz" / "jazz.00000.wav")] == "is silent (all samples are zero)"
    assert skips[str(root / "blues" / "short.wav")] == "too short (0.5 s; at least 1 s)"
    card = (tmp_path / "run" / "README.md").read_text()
    assert "4 clips for training" in card


def test_training_refuses_when_fewer_than_two_classes_have_usable_clips(tmp_path):
    root = _three_classes(tmp_path / "ds")
    for label in ("jazz", "classical"):
        for n in range(2):
            sf.write(root / label / f"{label}.{n:05d}.wav", np.zeros(SR * 2, np.float32), SR)
    with pytest.raises(DatasetError, match=r"no usable training audio in at least two classes.*"
                                           r"usable clips: blues\); 4 files skipped: .*silent"):
        _train(root, tmp_path / "run")
