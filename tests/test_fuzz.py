"""Hostile input: every case ends in a clear per-file error or a skip — never a hang, an unbounded allocation or
the end of the whole run. Seeded and bounded; each test has a timeout (pytest-timeout)."""
import io
import os
import resource
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run_cli, write_tone
from genrenet.data import AudioError, load_audio, load_dataset

pytestmark = pytest.mark.timeout(120)
RNG = np.random.default_rng(1234)
SR = 22050


def _wav_bytes(data, sr, subtype="PCM_16", fmt="WAV"):
    buf = io.BytesIO()
    sf.write(buf, data, sr, subtype=subtype, format=fmt)
    return buf.getvalue()


def _tone(seconds=0.5, sr=SR, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


def _riff(fmt_chunk: bytes, data: bytes, declared_data=None) -> bytes:
    declared_data = len(data) if declared_data is None else declared_data
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
    body += b"data" + struct.pack("<I", declared_data) + data
    return b"RIFF" + struct.pack("<I", min(len(body), 2 ** 32 - 1)) + body


def _fmt(channels=1, rate=SR, bits=16, tag=1):
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, (rate * block) % 2 ** 32, block % 2 ** 16, bits)


def hostile_files():
    """(name, bytes) pairs: random bytes, truncated headers, lies in headers, odd shapes and rates."""
    wav = _wav_bytes(_tone(), SR)
    flac = _wav_bytes(_tone(), SR, subtype="PCM_16", fmt="FLAC")
    mp3 = _wav_bytes(_tone(1.0), SR, subtype="MPEG_LAYER_III", fmt="MP3")
    cases = [("empty.wav", b""), ("random.wav", RNG.bytes(4096)), ("random.mp3", RNG.bytes(4096)),
             ("random.flac", RNG.bytes(777)), ("text.wav", b"not audio at all\n" * 10)]
    for n in (4, 12, 20, 36, 44, 45):
        cases += [(f"trunc{n}.wav", wav[:n]), (f"trunc{n}.flac", flac[:n]), (f"trunc{n}.mp3", mp3[:n])]
    cases += [("half.wav", wav[: len(wav) // 2]), ("half.flac", flac[: len(flac) // 2]),
              ("half.mp3", mp3[: len(mp3) // 2])]
    samples = (_tone(0.1) * 32767).astype("<i2").tobytes()
    cases += [
        ("huge_data_len.wav", _riff(_fmt(), samples, declared_data=2 ** 32 - 2)),
        ("zero_channels.wav", _riff(_fmt(channels=0), samples)),
        ("zero_rate.wav", _riff(_fmt(rate=0), samples)),
        ("huge_rate.wav", _riff(_fmt(rate=2 ** 31), samples)),
        ("many_channels.wav", _riff(_fmt(channels=65535), samples)),
        ("bad_bits.wav", _riff(_fmt(bits=3), samples)),
        ("bad_tag.wav", _riff(_fmt(tag=0x1234), samples)),
    ]
    # FLAC whose STREAMINFO claims 2^36 - 1 samples (days of audio) in a tiny file.
    f = bytearray(flac)
    info = f.index(b"fLaC") + 8  # STREAMINFO body
    total_at = info + 13  # 4 bits + 32 bits of total samples at the end of the 8-byte rate/channels/bits field
    f[total_at] |= 0x0F
    f[total_at + 1:total_at + 5] = b"\xff\xff\xff\xff"
    cases.append(("huge_total.flac", bytes(f)))
    # Random bit flips in valid files.
    for i in range(12):
        src = [wav, flac, mp3][i % 3]
        b = bytearray(src)
        for pos in RNG.integers(0, len(b), 8):
            b[pos] ^= 1 << int(RNG.integers(0, 8))
        cases.append((f"flipped{i}" + [".wav", ".flac", ".mp3"][i % 3], bytes(b)))
    return cases


def test_decoder_survives_hostile_files(tmp_path):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, data in hostile_files():
        path = tmp_path / name
        path.write_bytes(data)
        try:
            audio = load_audio(path, SR)
        except AudioError as e:
            assert e.path == str(path) and e.reason and "\n" not in e.reason, (name, e)
        else:  # a damaged but decodable file is fine: finite mono float32 audio
            assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0, name
            assert np.all(np.isfinite(audio)), name
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, f"decoding hostile files grew the peak RSS by {grown_mb:.0f} MB"


@pytest.mark.parametrize("rate", [8000, 192000])
@pytest.mark.parametrize("channels", [1, 2, 8])
def test_rates_and_channels(tmp_path, rate, channels):
    path = write_tone(tmp_path / "x.wav", seconds=0.25, sr=rate, channels=channels)
    audio = load_audio(path, SR)
    assert audio.dtype == np.float32 and audio.ndim == 1 and abs(audio.size - SR // 4) <= 2


@pytest.mark.parametrize("rate", [8000, 22050, 192000])
def test_one_sample_clip(tmp_path, rate):
    path = tmp_path / "one.wav"
    sf.write(str(path), np.array([0.5], np.float32), rate)
    try:
        audio = load_audio(path, SR)
    except AudioError as e:
        assert "too short" in e.reason or "no audio" in e.reason
    else:
        assert audio.size >= 1 and np.all(np.isfinite(audio))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(tmp_path, value):
    x = _tone(0.2)
    x[100] = value
    path = tmp_path / "bad.wav"
    sf.write(str(path), x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path, SR)


def test_declared_length_limit(tmp_path):
    path = write_tone(tmp_path / "long.wav", seconds=2.0)
    with pytest.raises(AudioError, match="limit"):
        load_audio(path, SR, max_seconds=1.0)


def _hostile_tree(root):
    """A folder-per-class dataset full of traps, with two good files per class."""
    for label in ("a", "b"):
        for i in range(2):
            write_tone(root / label / f"good{i}.wav", seconds=1.2, freq=300 + 100 * i)
    (root / "a" / "x.wav").mkdir()  # a directory named like a file
    (root / "a" / "x.wav" / "inner.wav").write_bytes(b"junk")
    (root / "a" / "random.wav").write_bytes(RNG.bytes(2048))
    (root / "b" / "trunc.flac").write_bytes(b"fLaC\x00\x00")
    os.symlink(root / "a", root / "a" / "loop")  # a symlink loop
    os.symlink("self.wav", root / "b" / "self.wav")  # a symlink to itself
    os.symlink(root / "nowhere.wav", root / "b" / "dangling.wav")
    long_name = "n" * 240 + ".wav"
    write_tone(root / "b" / long_name, seconds=1.2)
    raw = os.fsencode(root / "b") + b"/\xff\xfe-latin1-\xe9.wav"  # not UTF-8
    with open(raw, "wb") as f:
        f.write((root / "a" / "good0.wav").read_bytes())
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "a" / "fifo.wav")  # opening it for reading would block forever
    return root


# Files that are not audio by their names, or hidden: ignored and listed, never read, never silently dropped.
NON_AUDIO = ("notes.txt", "cover.jpg", "track.mid", "booklet.pdf", "LICENSE", "playlist.m3u", "song.wav.part",
             "Thumbs.db", "._blues.00000.wav", ".hidden.wav")


def _non_audio(folder):
    for i, name in enumerate(NON_AUDIO):
        (folder / name).write_bytes(RNG.bytes(int(RNG.integers(0, 300))) if i % 2 else b"")


def _files_below(root):
    """Every file below ``root``, and every link to a folder (a dataset reports the links it does not follow)."""
    return sorted(os.path.join(d, f) for d, dirs, files in os.walk(root)
                  for f in files + [n for n in dirs if os.path.islink(os.path.join(d, n))])


def _accounted(ds):
    return sorted([c.path for c in ds.clips] + [p for p, _ in ds.skipped] + [p for p, _ in ds.ignored])


def test_gtzan_layout_accounts_for_every_hostile_and_non_audio_file(tmp_path):
    root = tmp_path / "gtzan"
    for genre in ("blues", "jazz"):
        for i in range(2):
            write_tone(root / genre / f"{genre}.{i:05d}.wav", seconds=1.2, freq=300 + 100 * i)
    for name, data in hostile_files():
        (root / "blues" / name).write_bytes(data)
    _non_audio(root / "jazz")
    (root / "README.txt").write_text("GTZAN")
    ds = load_dataset(str(root))
    assert _accounted(ds) == _files_below(root)  # every file once: a clip, a skip or ignored
    ids = {c.id for c in ds.clips}
    assert {"blues/blues.00000", "blues/blues.00001", "jazz/jazz.00000", "jazz/jazz.00001"} <= ids
    ignored = {os.path.basename(p) for p, _ in ds.ignored}
    assert set(NON_AUDIO) | {"README.txt"} == ignored
    assert {os.path.basename(p) for p, _ in ds.skipped} >= {"empty.wav", "random.wav", "trunc4.wav"}
    assert all(r and "\n" not in r for _, r in ds.skipped + ds.ignored)
    for clip in ds.clips:  # a kept clip is audio, or a damaged file whose decoding fails with a reason
        try:
            assert clip.load(SR).size > 0
        except AudioError as e:
            assert e.reason


def test_dataset_scan_skips_traps_and_keeps_good_files(tmp_path):
    root = _hostile_tree(tmp_path / "data")
    _non_audio(root / "b")
    ds = load_dataset(str(root))
    assert _accounted(ds) == _files_below(root)
    assert {os.path.basename(p) for p, _ in ds.ignored} == set(NON_AUDIO)
    names = sorted(os.path.basename(c.path) for c in ds.clips)
    assert names.count("good0.wav") == 2 and names.count("good1.wav") == 2
    assert "n" * 240 + ".wav" in names
    assert any(n.endswith("-latin1-\udce9.wav") for n in names)  # non-UTF-8 name kept (surrogate-escaped)
    skipped = dict(ds.skipped)
    assert any(p.endswith("random.wav") for p in skipped) and any(p.endswith("fifo.wav") for p in skipped)
    assert all(reason and "\n" not in reason for reason in skipped.values())
    for clip in ds.clips:  # every kept clip decodes
        assert clip.load(SR).size > 0


def test_cli_train_and_predict_on_hostile_files(tmp_path):
    root = _hostile_tree(tmp_path / "data")
    r = run_cli("train", "cnn", "--data", root, "--out", tmp_path / "run", "--epochs", "1", "--verbose", "0",
                "--batch-size", "4", "--set", "filters=[8]", "--set", "dense_units=[8]", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    skipped = (tmp_path / "run" / "skipped.tsv").read_bytes()
    assert b"random.wav" in skipped and b"fifo.wav" in skipped

    # Bad files named one by one and a whole folder (with a non-UTF-8 name, printed as its original bytes).
    (tmp_path / "junk.mp3").write_bytes(np.random.default_rng(5).bytes(20000))  # libmpg123 has things to say
    files = [root / "a" / "random.wav", root / "a" / "x.wav", root / "b" / "self.wav", root / "a" / "fifo.wav",
             tmp_path / "missing.wav", tmp_path / "junk.mp3", root]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "genrenet", "predict", str(tmp_path / "run"), *map(str, files)],
                       capture_output=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and b" files failed" in r.stderr, r.stderr[-2000:]
    assert b"MPEG" not in r.stderr and b"mpg123" not in r.stderr and b"possibly a pipe" not in r.stdout
    lines = r.stdout.strip().splitlines()
    errors = [line for line in lines if b": error: " in line]
    for name in (b"random.wav", b"x.wav/inner.wav", b"self.wav", b"fifo.wav", b"missing.wav"):  # a folder x.wav/
        assert any(line.split(b": error: ")[0].endswith(b"/" + name) for line in errors), name
    assert any(b"/\xff\xfe-latin1-\xe9.wav: " in line and b"error" not in line for line in lines)
    assert b"Traceback" not in r.stderr


def test_cli_rejects_a_dataset_of_random_bytes(tmp_path):
    for i in range(6):
        (tmp_path / "d" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / f"c{i % 2}" / f"f{i}.wav").write_bytes(RNG.bytes(int(RNG.integers(0, 5000))))
    r = run_cli("train", "cnn", "--data", tmp_path / "d", "--out", tmp_path / "run")
    assert r.returncode == 2 and "no usable audio clips" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------ plain reasons
def test_each_bad_file_gets_its_reason_in_plain_words(tmp_path):
    good = _wav_bytes(_tone(1.0), SR)
    cases = {
        "empty.wav": (b"", "empty file (0 bytes)"),
        "song.m4a": (b"\x00\x00\x00\x18ftypM4A " + RNG.bytes(200),
                     ".m4a: unsupported format; convert with ffmpeg (e.g. ffmpeg -i song.m4a song.flac)"),
        "random.mp3": (RNG.bytes(20000), "not audio (not a WAV, FLAC, Ogg, MP3, AIFF or AU file)"),
        "notes.wav": (b"just some text, not a recording\n" * 20,
                      "not audio (not a WAV, FLAC, Ogg, MP3, AIFF or AU file)"),
        "cut.wav": (good[:30], "truncated or damaged (its header or data is cut short or broken)"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AudioError) as e:
            load_audio(tmp_path / name, SR)
        assert e.value.reason == reason, name


def test_a_file_that_cannot_be_read_says_permission_denied(tmp_path, monkeypatch):
    from genrenet.data import audio

    path = tmp_path / "locked.wav"
    path.write_bytes(_wav_bytes(_tone(1.0), SR))
    assert audio.decode_reason(path, PermissionError(13, "Permission denied")) == \
        "permission denied (cannot read the file)"
    monkeypatch.setattr(audio.os, "access", lambda p, mode: False)  # as a user without read permission sees it
    assert audio.decode_reason(path, RuntimeError("System error.")) == "permission denied (cannot read the file)"


def test_libmpg123_lines_do_not_reach_the_terminal_and_other_lines_do(tmp_path, capfd):
    from genrenet.data.quiet import decoder_noise_filtered

    (tmp_path / "random.mp3").write_bytes(RNG.bytes(20000))
    with pytest.raises(AudioError):
        load_audio(tmp_path / "random.mp3", SR)
    with decoder_noise_filtered("x.mp3"):
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 19996.\nNote: Trying to resync...\n"
                    b"[src/libmpg123/parse.c:skip_junk():1234] error: Giving up searching valid MPEG header\n"
                    b"a warning of genrenet's own\n")
    assert capfd.readouterr().err == "a warning of genrenet's own\n"


def test_a_folder_names_itself_when_unreadable_and_counts_unsupported_formats(tmp_path, monkeypatch):
    from genrenet.data import files
    from genrenet.data.files import expand_audio_paths
    from genrenet.errors import DatasetError

    album = tmp_path / "album"
    album.mkdir()
    (album / "a.m4a").write_bytes(b"x")
    (album / "b.m4a").write_bytes(b"x")
    (album / "c.wav").write_bytes(_wav_bytes(_tone(1.0), SR))
    found = expand_audio_paths([album])
    assert found.files == [str(album / "c.wav")]
    assert found.notes == [f"{album}: skipped 2 file(s) in an unsupported format (.m4a); convert them with ffmpeg "
                           "(e.g. ffmpeg -i song.m4a song.flac)"]
    monkeypatch.setattr(files.os, "access", lambda p, mode: os.fspath(p) != str(album))
    with pytest.raises(DatasetError, match=f"no audio files in {album} .{album}: cannot read the folder "
                                           r"\(permission denied\)"):
        expand_audio_paths([album])


def test_in_graph_wav_decoding_answers_random_bytes_with_invalid_argument():
    """classify_wav's decoder: random bytes, bytes behind a RIFF/WAVE header, empty and cut-short files are all
    InvalidArgument (never a UnicodeDecodeError from TensorFlow's message carrying the raw bytes)."""
    import tensorflow as tf

    from genrenet.nn.wav import decode_wav_mono

    decode = tf.function(lambda b: decode_wav_mono(b, 16000))
    rng = np.random.default_rng(28)
    cases = [b"", b"RIF", b"RIFF" + rng.bytes(4) + b"WAVE" + rng.bytes(7)]
    for i in range(300):
        junk = rng.bytes(int(rng.integers(0, 400)))
        cases.append(b"RIFF" + junk[:4] + b"WAVE" + junk[4:] if i % 2 else junk)
    for junk in cases:
        with pytest.raises(tf.errors.InvalidArgumentError):
            decode(tf.constant(junk))
