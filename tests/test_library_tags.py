"""Genres written into audio files' tags: dry run, safe writes, journal and undo, on MP3, FLAC, Ogg and WAV."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

mutagen = pytest.importorskip("mutagen")

from conftest import REPO, write_tone  # noqa: E402
from genrenet import cli  # noqa: E402
from genrenet.library import filetags, tag_files, undo_tags  # noqa: E402
from genrenet.library.journal import read_journal  # noqa: E402
from genrenet.library.tagging import TagChange, plan_change  # noqa: E402

CLIPS = {"blues.mp3": "blues", "metal.flac": "metal", "classical.ogg": "classical"}


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def all_tags(path):
    """Every tag of a file as comparable text (ID3 frames with their values, Vorbis comments as pairs)."""
    audio = mutagen.File(path)
    if audio.tags is None:
        return None
    return sorted((k, str(v)) for k, v in audio.tags.items())


def genre(path):
    return filetags.read_field(filetags.open_tags(path), "genre")


def player_genre(path):
    """The genre as mutagen's own readers see it: ID3 TCON, or the Vorbis GENRE comment."""
    tags = mutagen.File(path).tags
    return tags["TCON"].genres if hasattr(tags, "getall") else tags["genre"]


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    """Journals of the default location go to a private folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture(scope="module")
def library(tmp_path_factory, gtzan_dev):
    """4-s MP3, FLAC and Ogg Vorbis copies of real clips with an artist and title; the Ogg file has a genre."""
    folder = tmp_path_factory.mktemp("library")
    for name, genre_name in CLIPS.items():
        audio, rate = sf.read(str(gtzan_dev / genre_name / f"{genre_name}.00000.wav"), frames=4 * 22050)
        path = folder / name
        sf.write(str(path), audio, rate)
        tagged = filetags.open_tags(str(path))
        filetags.set_field(tagged, "comment", [f"{genre_name} take one"])
        filetags.set_field(tagged, "grouping", ["Dev clips"])
        filetags.save_tags(tagged)
    tagged = filetags.open_tags(str(folder / "classical.ogg"))
    filetags.set_field(tagged, "genre", ["Orchestral"])
    filetags.save_tags(tagged)
    return folder


@pytest.fixture
def songs(library, tmp_path):
    """A fresh copy of the library for one test."""
    return shutil.copytree(library, tmp_path / "songs")


@pytest.fixture(scope="module")
def preset(preset_cache):
    from genrenet import Classifier

    return Classifier.from_preset(None, verbose=0)


@pytest.fixture(scope="module")
def tagger(preset_cache):
    from genrenet import Classifier

    return Classifier.from_preset("musicnn-msd-tags", verbose=0)


@pytest.fixture(scope="module")
def tiny(tiny_run):
    from genrenet import Classifier

    return Classifier.from_preset(str(tiny_run), verbose=0)


def test_the_dry_run_changes_no_byte_and_shows_each_predicted_genre(preset, songs, state_home):
    files = sorted(str(p) for p in songs.iterdir())
    before = {f: sha(f) for f in files}
    report = tag_files(preset, files, verbose=0)
    assert {f: sha(f) for f in files} == before
    assert not state_home.exists() and report.journal is None
    assert [c.status for c in report.changes] == ["to write"] * 3
    for change in report.changes:
        assert change.new[0] in preset.labels and 0 < change.confidence <= 1
    assert {c.file: c.old for c in report.changes}[str(songs / "classical.ogg")] == ["Orchestral"]


def test_write_sets_the_genre_keeps_audio_and_other_tags_and_undo_restores_every_tag(preset, songs, state_home):
    files = sorted(str(p) for p in songs.iterdir())
    samples = {f: sf.read(f)[0] for f in files}
    tags = {f: all_tags(f) for f in files}
    report = tag_files(preset, files, write=True, verbose=0)

    assert [c.status for c in report.changes] == ["written"] * 3
    for change in report.changes:
        assert player_genre(change.file) == change.new
        assert np.array_equal(sf.read(change.file)[0], samples[change.file])
        assert filetags.read_field(filetags.open_tags(change.file), "comment") == [
            f"{CLIPS[os.path.basename(change.file)]} take one"]
        assert filetags.read_field(filetags.open_tags(change.file), "grouping") == ["Dev clips"]
    assert os.path.dirname(report.journal) == str(state_home / "genrenet" / "journals")
    assert sorted(os.listdir(songs)) == sorted(CLIPS)  # no copy left behind

    undone = undo_tags(report.journal, verbose=0)
    assert [c.status for c in undone.changes] == ["restored"] * 3
    assert {f: all_tags(f) for f in files} == tags
    assert all(np.array_equal(sf.read(f)[0], samples[f]) for f in files)
    assert [c.status for c in undo_tags(report.journal, verbose=0).changes] == ["unchanged"] * 3


def test_a_tagger_writes_every_tag_it_predicts_and_a_label_map_writes_your_labels(tagger, songs):
    files = sorted(str(p) for p in songs.iterdir())
    report = tag_files(tagger, files, verbose=0)
    assert all(len(c.new) > 1 and set(c.new) <= set(tagger.labels) for c in report.changes)

    gtzan_map = REPO / "genrenet" / "presets" / "maps" / "msd-to-gtzan.json"
    report = tag_files(tagger, files, write=True, labels_map=str(gtzan_map), verbose=0)
    user_labels = set(json.loads(gtzan_map.read_text()).values())
    for change in report.changes:
        assert change.status == "written" and change.new and set(change.new) <= user_labels
        assert player_genre(change.file) == change.new


@pytest.mark.parametrize("ext", ["mp3", "flac", "ogg", "opus", "wav", "aiff"])
def test_a_field_is_written_and_removed_without_changing_the_decoded_audio(tmp_path, ext):
    if ext == "opus":
        path = str(tmp_path / "tone.opus")
        sf.write(path, np.sin(np.arange(36000) / 10.0).astype(np.float32), 24000, format="OGG", subtype="OPUS")
        assert type(filetags.open_tags(path)).__name__ == "OggOpus"
    else:
        path = str(write_tone(tmp_path / f"tone.{ext}", seconds=1.5))
    samples = sf.read(path)[0]
    filetags.write_field(path, "genre", ["Jazz", "Blues"], expected=None)
    assert player_genre(path) == ["Jazz", "Blues"]
    assert np.array_equal(sf.read(path)[0], samples)
    filetags.write_field(path, "genre", None, expected=["Jazz", "Blues"], remove_if_empty=ext in ("mp3", "wav", "aiff"))
    assert genre(path) is None and np.array_equal(sf.read(path)[0], samples)
    assert os.listdir(tmp_path) == [f"tone.{ext}"]


def test_a_copy_whose_audio_differs_never_replaces_the_original(tmp_path, monkeypatch):
    path = str(write_tone(tmp_path / "tone.flac", seconds=1.5))
    original = sha(path)
    save = filetags.save_tags

    def save_and_damage(audio, **kwargs):
        save(audio, **kwargs)
        with open(audio.filename, "r+b") as f:  # flip bytes in the last audio frame
            f.seek(-64, os.SEEK_END)
            data = f.read(32)
            f.seek(-64, os.SEEK_END)
            f.write(bytes(b ^ 0xFF for b in data))

    monkeypatch.setattr(filetags, "save_tags", save_and_damage)
    with pytest.raises(filetags.AudioError, match="decod"):
        filetags.write_field(path, "genre", ["Jazz"], expected=None)
    assert sha(path) == original and os.listdir(tmp_path) == ["tone.flac"]


def test_a_linked_file_is_written_through_its_link(tmp_path):
    target = str(write_tone(tmp_path / "store" / "tone.flac", seconds=1.0))
    os.symlink(target, tmp_path / "link.flac")
    filetags.write_field(tmp_path / "link.flac", "genre", ["Jazz"], expected=None)
    assert os.path.islink(tmp_path / "link.flac") and genre(target) == ["Jazz"]
    assert os.listdir(tmp_path / "store") == ["tone.flac"]


def test_a_field_changed_meanwhile_is_left_as_it_is(tmp_path):
    path = str(write_tone(tmp_path / "tone.ogg", seconds=1.0))
    filetags.write_field(path, "genre", ["Rock"], expected=None)
    with pytest.raises(filetags.AudioError, match="changed meanwhile"):
        filetags.write_field(path, "genre", ["Jazz"], expected=None)
    assert genre(path) == ["Rock"]


def row(label, p, **extra):
    return {"file": "x", "label": label, "top": [[label, p]], **extra}


@pytest.mark.parametrize("old, mode, prediction, status, new", [
    (None, "replace", row("rock", 0.9), "to write", ["rock"]),
    (["Jazz"], "replace", row("rock", 0.9), "to write", ["rock"]),
    (["rock"], "replace", row("rock", 0.9), "unchanged", ["rock"]),
    (["Jazz"], "append", row("rock", 0.9), "to write", ["Jazz", "rock"]),
    (["Rock"], "append", row("rock", 0.9), "unchanged", ["Rock"]),
    (["Jazz"], "keep", row("rock", 0.9), "left alone", None),
    ([""], "keep", row("rock", 0.9), "to write", ["rock"]),
    (None, "replace", row("rock", 0.4), "left alone", None),
    (None, "replace", row("rock", 0.9, uncertain=True), "left alone", None),
    (None, "replace", row("rock", 0.9, uncertain=False), "to write", ["rock"]),
    (None, "replace", row(None, 0.0, reason="silent"), "left alone", None),
    (None, "replace", row("rock", 0.9, tags=[["rock", 0.9], ["guitar", 0.6], ["live", 0.3]]), "to write",
     ["rock", "guitar"]),
    (None, "replace", row("rock", 0.4, tags=[]), "left alone", None),
    (None, "replace", {"file": "x", "error": "cannot be decoded"}, "skipped", None),
])
def test_the_planned_value_follows_mode_confidence_and_tags(old, mode, prediction, status, new):
    change = TagChange("x", old=old)
    plan_change(change, prediction, mode, min_confidence=0.5)
    assert (change.status, change.new) == (status, new)
    assert bool(change.reason) == (status in ("left alone", "skipped"))


def test_the_command_skips_read_only_and_unsupported_files_and_counts_them(tiny_run, tmp_path, capsys):
    ok = str(write_tone(tmp_path / "a.flac", seconds=3.5))
    locked = str(write_tone(tmp_path / "b.flac", seconds=3.5))
    os.chmod(locked, 0o444)
    other = str(write_tone(tmp_path / "c.au", seconds=3.5))
    before = {f: sha(f) for f in (locked, other)}
    journal = tmp_path / "j.jsonl"

    code = cli.main(["tag", str(tiny_run), ok, locked, other, "--write", "--journal", str(journal)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "2 of 3 files skipped: " in err and "read-only file" in err and "unsupported format" in err
    assert "MP3" in out and "FLAC" in out  # the skip says which formats are supported
    assert {f: sha(f) for f in (locked, other)} == before and genre(ok) is not None
    assert str(journal) in err and oct(os.stat(locked).st_mode & 0o777) == "0o444"

    assert cli.main(["tag", str(tiny_run), locked, other]) == 2
    assert cli.main(["tag", str(tiny_run), ok, "--write", "--journal", str(journal)]) == 2  # never overwritten
    assert "--journal: " in capsys.readouterr().err
    assert cli.main(["tag", "--undo", str(journal), ok]) == 2
    assert cli.main(["tag", "--undo", str(journal), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["files"][0]["status"] == "restored"
    assert genre(ok) is None


def test_an_interrupted_run_leaves_each_file_old_or_new_and_the_journal_says_which(tiny, tmp_path, monkeypatch):
    files = [str(write_tone(tmp_path / f"{n}.{ext}", seconds=3.5, freq=200 + 100 * n))
             for n, ext in enumerate(["flac", "wav", "ogg"])]
    samples = [sf.read(f)[0] for f in files]
    replace, calls = os.replace, []

    def replace_then_stop(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(filetags.os, "replace", replace_then_stop)
    journal = str(tmp_path / "state.jsonl")
    with pytest.raises(KeyboardInterrupt):
        tag_files(tiny, files, write=True, journal=journal, verbose=0)
    monkeypatch.setattr(filetags.os, "replace", replace)

    assert genre(files[0]) is not None and genre(files[1]) is None and genre(files[2]) is None
    assert all(np.array_equal(sf.read(f)[0], s) for f, s in zip(files, samples))
    assert sorted(os.listdir(tmp_path)) == sorted(["0.flac", "1.wav", "2.ogg", "state.jsonl"])
    _, entries = read_journal(journal)
    assert [(os.path.basename(e["file"]), e["state"]) for e in entries] == [("0.flac", "done"), ("1.wav", "pending")]

    undone = undo_tags(journal, verbose=0)
    assert [c.status for c in undone.changes] == ["restored", "unchanged"]
    assert all(genre(f) is None for f in files)
