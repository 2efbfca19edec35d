"""Nothing under a dataset root is lost without a word; decoded audio goes to disk when it would not fit in
memory; one training process per run directory."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import run_cli, write_tone
from genrenet.data import load_dataset
from genrenet.data.cache import CachePolicy, audio_cache_dir
from genrenet.data.memory import decoded_bytes
from genrenet.errors import ConfigError, RunError
from genrenet.run import LOCK_FILE, run_lock

SR = 22050
SMALL = ["--set", "filters=[8]", "--set", "dense_units=[8]"]
BAD = ("empty.wav", "truncated.wav", "random.wav", "cut.au")
REASONS = {"empty.wav": "empty file (0 bytes)", "truncated.wav": "truncated or damaged", "random.wav": "not audio",
           "cut.au": "not audio"}  # what each bad file is skipped as, in plain words
IGNORED = ("notes.txt", ".DS_Store", "README", "cover.jpg")


def _user_folder(root):
    """GTZAN layout (3 genres x 4 clips) plus what users add: their own song, three broken .wav files and a
    broken .au, a text file, a picture, a hidden file and a README at the root."""
    for g, genre in enumerate(("blues", "jazz", "rock")):
        for i in range(4):
            write_tone(root / genre / f"{genre}.{i:05d}.wav", seconds=3.5, freq=200 * (g + 1) + 20 * i)
    write_tone(root / "rock" / "my own song.wav", seconds=3.5, freq=900)
    (root / "jazz" / "empty.wav").write_bytes(b"")
    (root / "jazz" / "truncated.wav").write_bytes((root / "jazz" / "jazz.00001.wav").read_bytes()[:30])
    (root / "blues" / "random.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "rock" / "cut.au").write_bytes(b".snd\x00\x00")
    (root / "blues" / "notes.txt").write_text("liner notes")
    (root / "rock" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    (root / ".DS_Store").write_bytes(b"\x00")
    (root / "README").write_text("my music")
    return root


def _all_files(root):
    return {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}


def _accounted(ds):
    return [c.path for c in ds.clips] + [p for p, _ in ds.skipped] + [p for p, _ in ds.ignored]


def test_a_gtzan_layout_folder_uses_every_audio_file_and_names_every_other_file(tmp_path):
    root = _user_folder(tmp_path / "music")
    ds = load_dataset(str(root))
    assert len(ds.clips) == 13 and ds.labels == ["blues", "jazz", "rock"]
    by_name = {os.path.basename(c.path): c for c in ds.clips}
    own = by_name["my own song.wav"]
    assert own.label == "rock" and own.group == "rock/my own song.wav"  # a group of its own
    assert by_name["blues.00000.wav"].id == "blues/blues.00000"
    assert all(c.seconds == pytest.approx(3.5) for c in ds.clips)  # durations from the headers
    assert sorted(os.path.basename(p) for p, _ in ds.skipped) == sorted(BAD)
    assert all(r.startswith(REASONS[os.path.basename(p)]) for p, r in ds.skipped)
    assert sorted(os.path.basename(p) for p, _ in ds.ignored) == sorted(IGNORED)
    assert dict((os.path.basename(p), r) for p, r in ds.ignored)[".DS_Store"] == "hidden file"
    # every file is used, skipped or ignored, exactly once
    accounted = _accounted(ds)
    assert sorted(accounted) == sorted(_all_files(root))
    assert ds.summary() == (f"music: 13 clips, 3 classes (no predefined split); skipped {len(BAD)} files; "
                            f"ignored {len(IGNORED)} files that are not clips of the dataset")


def test_the_filtered_gtzan_split_lists_the_files_outside_it(tmp_path):
    root = _user_folder(tmp_path / "music")
    ds = load_dataset(f"gtzan:{root}")
    outside = {os.path.basename(p) for p, r in ds.ignored if "outside the fault-filtered split" in r}
    assert "my own song.wav" in outside
    assert sorted(_accounted(ds)) == sorted(_all_files(root))
    assert not {os.path.basename(c.path) for c in ds.clips} & outside
    everything = load_dataset(f"gtzan:{root}?split=none")
    assert len(everything.clips) == 13


def test_genres_folder_and_loose_files_at_the_root_are_counted(tmp_path):
    root = tmp_path / "gtzan"
    _user_folder(root / "genres")
    (root / "LICENSE").write_text("terms")
    write_tone(root / "genres" / "loose.wav", seconds=1.0)  # audio outside the class folders
    ds = load_dataset(f"gtzan:{root}?split=none")
    reasons = {os.path.basename(p): r for p, r in ds.ignored}
    assert reasons["LICENSE"] == "outside the genres/ folder"
    assert "outside the class folders" in reasons["loose.wav"]
    assert sorted(_accounted(ds)) == sorted(_all_files(root))


def test_train_uses_all_good_files_and_reports_the_rest_in_skipped_tsv(tmp_path):
    """The folder a new user tries: 13 good clips, broken files, a text file; all of it in the output."""
    root = _user_folder(tmp_path / "music")
    out = tmp_path / "run"
    r = run_cli("train", "cnn", "--data", root, "--out", out, "--epochs", "1", "--verbose", "2", *SMALL,
                timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "13 clips, 3 classes" in r.stdout and "training cnn" in r.stdout and "on 13 clips" in r.stdout
    assert f"skipped {len(BAD)} files" in r.stdout and f"ignored {len(IGNORED)} files" in r.stdout
    rows = dict(line.split("\t", 1) for line in (out / "skipped.tsv").read_text().splitlines()[1:])
    names = {os.path.basename(p): reason for p, reason in rows.items()}
    assert set(names) == set(BAD) | set(IGNORED)
    assert all(names[n].startswith("ignored: ") for n in IGNORED)
    assert all(names[n].startswith(REASONS[n]) for n in BAD)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["skipped_files"], metrics["ignored_files"]) == (len(BAD), len(IGNORED))
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["cache"] == "memory" and config["data"]["train_clips"] == 13
    assert not (out / LOCK_FILE).exists()


# ------------------------------------------------------------------------------------------------ cache=auto
def test_auto_cache_is_memory_within_the_budget_and_disk_beyond_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRENET_CACHE", str(tmp_path / "cache"))
    ds = load_dataset(str(_user_folder(tmp_path / "music")))
    need = decoded_bytes(ds.clips, SR)
    assert need == pytest.approx(13 * 3.5 * SR * 4, rel=1e-3)
    auto = CachePolicy.of("auto")
    assert auto.resolve(ds.clips, SR, memory_budget=need) == (CachePolicy("memory"), None)
    cache, note = auto.resolve(ds.clips, SR, memory_budget=need - 1)
    assert cache.directory == audio_cache_dir() == str(tmp_path / "cache" / "audio")
    assert f"caching it on disk in {cache}" in note and "4 MB" in note
    for given in ("memory", "none", str(tmp_path / "mine")):  # explicit choices are kept
        assert CachePolicy.of(given).resolve(ds.clips, SR, memory_budget=1) == (CachePolicy(given), None)


def test_cache_settings_old_booleans_included_become_one_policy(tmp_path):
    assert CachePolicy.of(True) == CachePolicy.of("memory") and CachePolicy.of(True).memory
    assert CachePolicy.of(False) == CachePolicy.of("none") and CachePolicy.of("none").directory is None
    assert CachePolicy.of(tmp_path / "c").directory == str(tmp_path / "c")
    assert str(CachePolicy.of(tmp_path / "c")) == str(tmp_path / "c")  # what config.json records
    for bad in (3, "", ["memory"]):
        with pytest.raises(ConfigError, match="cache: must be auto, memory, none or a directory") as caught:
            CachePolicy.of(bad)
        assert caught.value.param == "cache"


def test_train_config_reads_old_cache_booleans_and_refuses_other_values():
    from genrenet.training.config import TrainConfig

    assert TrainConfig.from_dict({"cache": True}).check().to_dict()["cache"] == "memory"
    assert TrainConfig(cache=False).to_dict()["cache"] == "none"
    with pytest.raises(ConfigError, match="cache: must be auto, memory, none or a directory, got 3"):
        TrainConfig(cache=3).check()


def test_one_cache_root_holds_decoded_audio_and_presets(monkeypatch, tmp_path):
    from genrenet.presets import cache_dir

    monkeypatch.delenv("GENRENET_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert audio_cache_dir() == str(tmp_path / "xdg" / "genrenet" / "audio")
    assert cache_dir() == str(tmp_path / "xdg" / "genrenet" / "presets")
    monkeypatch.setenv("GENRENET_CACHE", str(tmp_path / "root"))
    assert audio_cache_dir() == str(tmp_path / "root" / "audio")
    assert cache_dir() == str(tmp_path / "root" / "presets")


def test_the_cache_root_is_found_without_importing_tensorflow():
    """Presets and `genrenet cache` find the cache root (and the data package imports) before TensorFlow loads."""
    code = ("import sys, genrenet.data, genrenet.data.cache, genrenet.presets; genrenet.data.cache.cache_root(); "
            "genrenet.presets.cache_dir(); genrenet.data.SkipLog(); print('tensorflow' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_a_dataset_larger_than_the_memory_budget_trains_from_a_disk_cache(tmp_path, monkeypatch, capsys):
    from genrenet.training.trainer import train

    monkeypatch.setenv("GENRENET_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "music"
    for genre in ("a", "b"):
        for i in range(3):
            write_tone(root / genre / f"{i}.wav", seconds=3.5, freq=300 + 200 * (genre == "b") + 30 * i)
    run = train("cnn", str(root), str(tmp_path / "run"), epochs=2, memory_budget=100_000, verbose=1,
                model_kwargs={"filters": [4], "dense_units": [4]})
    assert run.training["cache"] == str(tmp_path / "cache" / "audio")
    assert any("caching it on disk" in n for n in run.config["data"]["notes"])
    assert "caching it on disk in " + str(tmp_path / "cache" / "audio") in capsys.readouterr().out
    cached = list((tmp_path / "cache" / "audio").rglob("*.npy"))
    assert len(cached) == 6 and all(np.load(f).dtype == np.float32 for f in cached)


def test_cache_command_shows_and_clears_the_disk_cache_and_nothing_else(tmp_path, monkeypatch, capsys):
    from genrenet.cli import main
    from genrenet.data import AudioCache

    monkeypatch.setenv("GENRENET_CACHE", str(tmp_path / "root"))
    audio = tmp_path / "root" / "audio"  # decoded audio lives below the one cache root
    assert main(["cache"]) == 0 and "no cache (nothing decoded there yet)" in capsys.readouterr().out
    cache = AudioCache(audio)
    cache.put("ab12", np.zeros(1000, np.float32))
    cache.put("cd34", np.ones(500, np.float32))
    cache.put_error("ef56", "cannot decode")
    mine = audio / "ab" / "notes.txt"
    mine.write_text("not a cache entry")
    assert main(["cache"]) == 0
    assert "2 decoded clips and 1 remembered decoding failures" in capsys.readouterr().out
    assert main(["cache", str(audio), "--clear"]) == 0
    assert "removed 3 entries" in capsys.readouterr().out
    assert cache.entries() == [] and cache.get("ab12") == (None, None)
    assert mine.read_text() == "not a cache entry"  # a file the cache did not write stays, with its folder


# ------------------------------------------------------------------------------------------------ run lock
def test_a_second_training_process_cannot_write_a_run_directory_in_use(tmp_path):
    out = tmp_path / "run"
    with run_lock(out):
        r = run_cli("train", "cnn", "--data", "synthetic:classes=2,clips=2,seconds=3.5", "--out", out,
                    "--epochs", "1", *SMALL)
        with pytest.raises(RunError, match="another process"):
            with run_lock(out):
                pass
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "genrenet" in line]
    assert errors == [f"genrenet: error: {out}: another process (pid {os.getpid()}) is writing this run directory; "
                      "wait for it to end or choose another run directory"]
    assert not out.exists()  # the lock made the directory; nothing was written, so it is gone again


def test_the_lock_of_a_process_that_died_does_not_block(tmp_path):
    out = tmp_path / "run"
    pid = os.fork()
    if pid == 0:  # the child takes the lock and dies without releasing it
        held = run_lock(out)
        held.__enter__()
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    assert (out / LOCK_FILE).exists()  # the file stays behind ...
    with run_lock(out):  # ... but its lock died with its process
        assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert not (out / LOCK_FILE).exists()


def test_an_au_file_in_gtzan_layout_is_used(tmp_path):
    root = tmp_path / "g"
    for genre in ("blues", "jazz"):
        write_tone(root / genre / f"{genre}.00000.wav", seconds=1.0)
    x = (0.3 * np.sin(np.arange(SR) / 10)).astype(np.float32)
    sf.write(str(root / "jazz" / "jazz.00001.au"), x, SR, format="AU", subtype="PCM_16")
    ds = load_dataset(str(root))
    assert sorted(c.id for c in ds.clips) == ["blues/blues.00000", "jazz/jazz.00000", "jazz/jazz.00001"]


def test_disk_cached_epochs_are_the_memory_cached_epochs(tmp_path):
    """Under a disk cache clip indices are shuffled before decoding (no buffer of decoded audio): the epochs are
    still exactly those of the memory cache, skipped files included."""
    from genrenet.data import SkipLog, TrainingSpec, training_epochs

    root = tmp_path / "d"
    for i in range(6):
        write_tone(root / "ab"[i % 2] / f"{i}.wav", seconds=1.5, freq=200 + 50 * i)
    sf.write(str(root / "a" / "silent.wav"), np.zeros(SR, np.float32), SR)  # skipped when decoded
    ds = load_dataset(str(root))
    spec = TrainingSpec(ds.labels, sample_rate=SR, window_samples=SR // 2, batch_size=4, seed=3, cache="memory")
    memory, _ = training_epochs(ds.clips, spec, epochs=2, log=SkipLog())
    disk, _ = training_epochs(ds.clips, spec.replace(cache=str(tmp_path / "cache")), epochs=2, log=SkipLog())
    a, b = [x.numpy() for x, _ in memory], [x.numpy() for x, _ in disk]
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
