"""Apache Beam: ``predict --runner`` gives what ``predict`` gives, one line per file; ``prepare`` writes TFRecord
shards that ``tfrecord:PREFIX`` reads back as the same clips, audio and training results as the folder."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run_cli, write_tone

pytest.importorskip("apache_beam")

MODEL_SETTINGS = ("--set", "filters=[8,16]", "--set", "dense_units=[16]")


def read_jsonl(prefix):
    rows = []
    for path in sorted(prefix.parent.glob(prefix.name + "-*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def audio_files(folder):
    """Tones at three sample rates and lengths (one shorter than a window), a corrupt and an empty file."""
    files = [write_tone(folder / "tone_22k.wav", seconds=7.0, freq=330),
             write_tone(folder / "tone_16k.wav", seconds=4.0, sr=16000, freq=520),
             write_tone(folder / "short_44k.flac", seconds=1.2, sr=44100, freq=880, channels=2)]
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt nonsense")
    (folder / "empty.wav").write_bytes(b"")
    return files + [folder / "corrupt.wav", folder / "empty.wav"]


def assert_same_as_predict(rows, source, files):
    import genrenet

    expected = {r["file"]: r for r in genrenet.predict(str(source), [str(f) for f in files], verbose=0)}
    got = {r["file"]: r for r in rows}
    assert len(rows) == len(got) == len(files), "every file appears exactly once"
    assert set(got) == set(expected)
    for name, want in expected.items():
        if "error" in want:
            assert "error" in got[name] and "label" not in got[name], name
            continue
        have = got[name]
        assert have["label"] == want["label"] and have["windows"] == want["windows"], name
        assert [l for l, _ in have["top"]] == [l for l, _ in want["top"]], name
        for label, p in want["probabilities"].items():
            assert abs(have["probabilities"][label] - p) <= 1e-5, (name, label)


def test_beam_predict_gives_the_results_of_predict(tiny_run, tmp_path):
    from genrenet.infer.beam import predict_pipeline

    files = audio_files(tmp_path / "audio")
    counts = predict_pipeline(str(tiny_run), [str(tmp_path / "audio" / "*.*")], str(tmp_path / "out" / "pred"),
                              runner="DirectRunner")
    rows = read_jsonl(tmp_path / "out" / "pred")
    assert_same_as_predict(rows, tiny_run, files)
    assert counts == {"classified": 3, "errors": 2}
    assert all(set(r) == {"file", "label", "uncertain", "top", "probabilities", "windows"}
               for r in rows if "error" not in r)


def test_beam_predict_from_a_savedmodel_and_a_tflite_export(tiny_run, tmp_path):
    from genrenet.infer.beam import predict_pipeline
    from genrenet.serve.export import export

    files = audio_files(tmp_path / "audio")
    version = export(str(tiny_run), str(tmp_path / "export"), tflite=True, verbose=0)
    for source in (version, f"{version}/model.tflite"):
        out = tmp_path / "out" / source.replace("/", "_")[-20:]
        predict_pipeline(source, [str(tmp_path / "audio")], str(out), runner="DirectRunner")
        assert_same_as_predict(read_jsonl(out), source, files)


def test_patterns_that_match_nothing_or_overlap_are_reported_once(tiny_run, tmp_path):
    from genrenet.infer.beam import predict_pipeline

    tone = write_tone(tmp_path / "a" / "x.wav", seconds=3.0)
    patterns = [str(tmp_path / "a"), str(tmp_path / "a" / "*.wav"), str(tmp_path / "missing.wav"),
                str(tmp_path / "none" / "*.mp3")]
    predict_pipeline(str(tiny_run), patterns, str(tmp_path / "out"), runner="DirectRunner")
    rows = {r["file"]: r for r in read_jsonl(tmp_path / "out")}
    assert len(read_jsonl(tmp_path / "out")) == 3
    assert rows[str(tone)]["windows"] == 1
    assert rows[str(tmp_path / "missing.wav")]["error"] == "file not found"
    assert rows[str(tmp_path / "none" / "*.mp3")]["error"] == "no files match"


@pytest.mark.slow
def test_cli_multi_process_runner_on_real_and_synthetic_clips(tiny_run, tmp_path, request):
    files = audio_files(tmp_path / "audio")
    patterns = [str(tmp_path / "audio")]
    if (REPO.parent / "shared" / "data" / "gtzan_dev").is_dir():
        real = request.getfixturevalue("gtzan_dev")
        patterns.append(str(real / "*" / "*.wav"))
        files += sorted(real.glob("*/*.wav"))
    out = tmp_path / "out" / "pred"
    r = run_cli("predict", tiny_run, *patterns, "--runner", "DirectRunner", "--output", out,
                "--direct_num_workers=2", "--direct_running_mode=multi_processing", timeout=900)
    assert r.returncode == 1, r.stderr[-3000:]  # some files failed: exit 1, as predict without a runner
    assert f"classified {len(files) - 2} files, 2 errors" in r.stdout
    assert f"genrenet: 2 of {len(files)} files failed" in r.stderr
    assert_same_as_predict(read_jsonl(out), tiny_run, files)


def test_beam_flags_only_with_runner(tiny_run, tmp_path, capsys):
    from genrenet.cli import main

    tone = str(write_tone(tmp_path / "x.wav", seconds=3.0))
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(tiny_run), tone, "--direct_num_workers=2"])
    assert exit_.value.code == 2 and "unrecognized arguments: --direct_num_workers=2" in capsys.readouterr().err
    assert main(["predict", str(tiny_run), tone, "--runner", "DirectRunner"]) == 2
    assert "--output PREFIX" in capsys.readouterr().err


def test_cli_exits_with_an_error_when_no_file_could_be_classified(tiny_run, tmp_path, capsys):
    from genrenet.cli import main

    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    assert main(["predict", str(tiny_run), str(tmp_path / "corrupt.wav"), "--runner", "DirectRunner",
                 "--output", str(tmp_path / "out")]) == 2
    assert "none of the files could be classified" in capsys.readouterr().err
    [row] = read_jsonl(tmp_path / "out")
    assert row["file"] == str(tmp_path / "corrupt.wav") and row["error"].startswith("truncated or damaged")


def test_import_genrenet_leaves_beam_unimported_until_the_transform_is_used():
    code = ("import sys, genrenet, genrenet.data; assert 'apache_beam' not in sys.modules; "
            "from genrenet.infer.beam import ClassifyAudio; assert genrenet.ClassifyAudio is ClassifyAudio")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def labelled_folder(root):
    """Two classes of tones at two sample rates, a file whose header is broken (skipped while scanning) and a
    float WAV with a NaN sample (fails only when decoded)."""
    for i in range(5):
        write_tone(root / "low" / f"low{i}.wav", seconds=3.5, freq=180 + 25 * i)
        write_tone(root / "high" / f"high{i}.wav", seconds=3.5, sr=16000, freq=1200 + 60 * i)
    (root / "high" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    nan = np.full(22050, 0.1, np.float32)
    nan[100] = np.nan
    sf.write(str(root / "low" / "nan.wav"), nan, 22050, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from genrenet.data.prepare import prepare

    root = labelled_folder(tmp_path_factory.mktemp("folder"))
    prefix = tmp_path_factory.mktemp("prepared") / "clips"
    meta = prepare(str(root), str(prefix), sample_rate=22050, num_shards=3)
    return root, prefix, meta


def test_prepared_dataset_has_the_folders_clips_and_audio(prepared):
    from genrenet.data import load_dataset

    root, prefix, meta = prepared
    folder, records = load_dataset(str(root)), load_dataset(f"tfrecord:{prefix}")
    assert meta["num_clips"] == 11 and meta["num_shards"] == 3 and meta["failed"] == 1
    assert records.labels == folder.labels
    assert [(c.id, c.label, c.split, c.group, c.name) for c in records.clips] == \
           [(c.id, c.label, c.split, c.group, c.name) for c in folder.clips]
    assert records.skipped == folder.skipped and "broken.wav" in records.skipped[0][0]
    for r, f in zip(records.clips, folder.clips):
        if f.id.endswith("nan.wav"):
            with pytest.raises(ValueError, match="nan.wav: contains NaN"):
                r.load(22050)
            continue
        np.testing.assert_array_equal(r.load(22050), f.load(22050))
        assert len(r.load(16000)) == round(3.5 * 16000)  # a model at another rate gets its rate
    index = [json.loads(line) for line in (prefix.parent / "clips.index.jsonl").read_text().splitlines()]
    failed = [row for row in index if "error" in row]
    assert len(failed) == 1 and "NaN" in failed[0]["error"]
    assert all(row["duration"] == 3.5 for row in index if "error" not in row)


def test_tfrecord_spec_errors_name_the_missing_file(tmp_path):
    from genrenet.data import DatasetError, load_dataset

    with pytest.raises(DatasetError, match=r"nowhere\.json not found .*genrenet prepare"):
        load_dataset(f"tfrecord:{tmp_path / 'nowhere'}")


def test_two_workers_read_disjoint_shards_that_cover_all(prepared):
    from genrenet.data.sources.tfrecord import worker_shards

    _, prefix, _ = prepared
    shards = sorted(str(p) for p in prefix.parent.glob("clips-*-of-00003.tfrecord"))
    assert len(shards) == 3
    parts = [worker_shards(shards, 2, i) for i in range(2)]
    assert set(parts[0]).isdisjoint(parts[1]) and sorted(parts[0] + parts[1]) == shards
    assert parts[0] and parts[1]
    with pytest.raises(ValueError):
        worker_shards(shards, 2, 2)


@pytest.mark.slow
def test_training_on_prepared_records_equals_training_on_the_folder(prepared, tmp_path):
    root, prefix, _ = prepared
    results = []
    for data in (str(root), f"tfrecord:{prefix}"):
        out = tmp_path / data.replace(":", "_").replace("/", "_")[-40:]
        r = run_cli("train", "cnn", "--data", data, "--out", out, "--epochs", "2", "--seed", "3", "--deterministic",
                    "--val-fraction", "0.3", "--verbose", "0", *MODEL_SETTINGS)
        assert r.returncode == 0, r.stderr[-3000:]
        results.append((json.loads((out / "metrics.json").read_text()), json.loads((out / "config.json").read_text())))
        ev = run_cli("evaluate", out, "--data", data, "--json")
        assert ev.returncode == 0, ev.stderr[-3000:]
        results[-1] += (json.loads(ev.stdout.splitlines()[-1]),)
        assert "nan.wav" in (out / "skipped.tsv").read_text()  # reported, never dropped silently
    (folder_metrics, folder_config, folder_eval), (record_metrics, record_config, record_eval) = results
    assert record_metrics == folder_metrics
    assert (record_config["data"]["train_clips"], record_config["data"]["val_clips"]) == \
        (folder_config["data"]["train_clips"], folder_config["data"]["val_clips"])
    for key in ("clip_accuracy", "macro_f1", "window_accuracy", "num_clips"):
        assert record_eval[key] == folder_eval[key]


def test_prepare_cli_refuses_in_memory_data(tmp_path, capsys):
    from genrenet.cli import main

    assert main(["prepare", "synthetic", "--output", str(tmp_path / "x")]) == 2
    assert "need no preparation" in capsys.readouterr().err
