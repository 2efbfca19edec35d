"""Kill-and-resume, bit-identical seeded runs, atomic run files, and mixed precision on CPU."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, TINY, run_cli

SMALL = {"filters": [8, 16], "dense_units": [16]}
ARGS = ["cnn", "--data", TINY, "--epochs", "5", "--batch-size", "4", "--patience", "2", "--seed", "3",
        "--deterministic", "--verbose", "0", "--set", "filters=[8,16]", "--set", "dense_units=[16]"]


def _weights(run):
    from genrenet.run import Run

    return Run(run).load_model().get_weights()


def _same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (in this process) that interrupted and repeated runs must reproduce."""
    from genrenet.training.trainer import train

    out = tmp_path_factory.mktemp("ref") / "run"
    train("cnn", TINY, str(out), epochs=5, batch_size=4, patience=2, seed=3, deterministic=True, verbose=0,
          model_kwargs=SMALL)
    return out


def test_two_seeded_deterministic_runs_are_bit_identical(reference, tmp_path):
    from genrenet.training.trainer import train

    train("cnn", TINY, str(tmp_path / "again"), epochs=5, batch_size=4, patience=2, seed=3, deterministic=True,
          verbose=0, model_kwargs=SMALL)
    assert _same_weights(_weights(reference), _weights(tmp_path / "again"))
    assert _metrics(reference) == _metrics(tmp_path / "again")
    assert (reference / "history.csv").read_text() == (tmp_path / "again" / "history.csv").read_text()
    config = json.loads((reference / "config.json").read_text())
    assert config["training"]["deterministic"] is True and config["training"]["seed"] == 3


@pytest.mark.slow  # three CLI processes; CI runs `pytest -m slow`
def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(reference, tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "genrenet", "train", *ARGS, "--out", str(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    state = run / "checkpoint" / "state.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if state.is_file() and json.loads(state.read_text())["epoch"] >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)  # somewhere in epoch 3 (or its validation)
    finally:
        proc.kill()
        proc.wait()
    assert not (run / "model.keras").exists() and not (run / "metrics.json").exists()
    history = (run / "history.csv").read_text().splitlines()  # complete rows only: written atomically
    assert history[0].startswith("epoch,") and len(history) - 1 >= 2
    assert [len(row.split(",")) for row in history[1:]] == [len(history[0].split(","))] * (len(history) - 1)

    r = run_cli("train", *ARGS, "--out", run)  # the same command without --resume is refused
    assert r.returncode == 2 and "--resume: " in r.stderr and "holds an unfinished run: set it to continue" \
        in r.stderr, r.stderr
    r = run_cli("train", *ARGS, "--out", run, "--resume")
    assert r.returncode == 0, r.stderr
    assert _metrics(run) == _metrics(reference)
    assert _same_weights(_weights(run), _weights(reference))
    assert (run / "history.csv").read_text() == (reference / "history.csv").read_text()
    assert not (run / "checkpoint").exists()



class _Crash(Exception):
    pass


def test_crash_at_an_epoch_boundary_then_resume_restores_everything(reference, tmp_path, monkeypatch):
    """Early-stopping state, best weights, optimizer and RNG states all survive: same result as one go."""
    from genrenet.training import checkpoint as resume
    from genrenet.errors import TrainingError
    from genrenet.training.trainer import train

    original = resume.EpochCheckpoint.on_epoch_end

    def crash_after_epoch_3(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 2:
            raise _Crash()

    monkeypatch.setattr(resume.EpochCheckpoint, "on_epoch_end", crash_after_epoch_3)
    run = tmp_path / "run"
    kw = dict(batch_size=4, patience=2, seed=3, deterministic=True, verbose=0, model_kwargs=SMALL)
    with pytest.raises(_Crash):
        train("cnn", TINY, str(run), epochs=5, **kw)
    monkeypatch.undo()
    state = resume.load_state(str(run))
    assert state["epoch"] == 3 and len(state["history"]) == 3 and state["best_weights"]
    assert set(state["early_stopping"]) == {"wait", "best", "best_epoch", "stopped_epoch"}
    with pytest.raises(TrainingError, match="resume: .* holds an unfinished run: set it to continue"):
        train("cnn", TINY, str(run), epochs=5, **kw)
    train("cnn", TINY, str(run), epochs=5, resume=True, **kw)
    assert _metrics(run) == _metrics(reference)
    assert _same_weights(_weights(run), _weights(reference))
    assert (run / "history.csv").read_text() == (reference / "history.csv").read_text()
    with pytest.raises(TrainingError, match="already finished"):
        train("cnn", TINY, str(run), epochs=5, resume=True, **kw)


def test_refuses_unfinished_run_without_resume_and_changed_settings(tmp_path):
    from genrenet.errors import TrainingError
    from genrenet.training.trainer import train

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "cnn", "seed": 1}))
    (run / "labels.json").write_text(json.dumps(["ambient", "disco", "rock"]))
    with pytest.raises(TrainingError, match="resume: .* holds an unfinished run: set it to continue"):
        train("cnn", TINY, str(run), epochs=1, verbose=0, model_kwargs=SMALL)
    with pytest.raises(TrainingError, match="cannot resume with different settings"):
        train("cnn", TINY, str(run), epochs=1, verbose=0, model_kwargs=SMALL, resume=True)


def test_mixed_float16_trains_on_cpu_and_matches_float32(tmp_path):
    import keras

    import genrenet
    from genrenet.run import Run
    from genrenet.training.trainer import train

    run = train("cnn", TINY, str(tmp_path / "mp"), epochs=1, batch_size=4, verbose=0, model_kwargs=SMALL,
                mixed_precision="mixed_float16", evaluate_val=False, val_fraction=0.2)
    assert keras.mixed_precision.global_policy().name == "float32"  # the global policy is restored
    assert Run(run.path).training["mixed_precision"] == "mixed_float16"
    metrics = run.metrics
    assert np.isfinite(metrics["final_loss"]) and np.isfinite(metrics["final_val_loss"])
    model = run.load_model()
    assert model.get_layer("log_mel").compute_dtype == "float32"
    assert model.get_layer("probabilities").compute_dtype == "float32"
    assert model.get_layer("conv1_conv").compute_dtype == "float16"
    reference = genrenet.build_model("cnn", num_classes=3, **SMALL)
    reference.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((4, model.input_shape[-1])).astype(np.float32) * 0.1
    p16, p32 = model(x, training=False), reference(x, training=False)
    assert p16.dtype.name == "float32" and np.all(np.isfinite(p16))
    np.testing.assert_allclose(np.asarray(p16), np.asarray(p32), atol=2e-2)


def test_streamed_prediction_matches_whole_file_decoding(tiny_run, tmp_path):
    """predict decodes block by block (memory independent of file length) with the same windows and results."""
    import soundfile as sf

    from conftest import write_tone
    from genrenet.data import Clip, SkipLog, streamed_window_batches
    from genrenet.infer.windows import predict_clips
    from genrenet.run import Run

    run = Run(tiny_run)
    files = [write_tone(tmp_path / "long.wav", seconds=9.5, sr=44100, channels=2),
             write_tone(tmp_path / "short.flac", seconds=1.0, sr=16000),
             write_tone(tmp_path / "exact.wav", seconds=6.0, sr=22050, freq=220)]
    sf.write(str(tmp_path / "silent.wav"), np.zeros(30000, np.float32), 22050)
    (tmp_path / "junk.wav").write_bytes(b"RIFF junk")
    files += [tmp_path / "silent.wav", tmp_path / "junk.wav"]
    clips = [Clip(id=str(f), label="", path=str(f)) for f in files]
    model = run.load_model()
    kw = dict(sample_rate=run.sample_rate, window_samples=run.window_samples, batch_size=4, verbose=0)
    whole_log, stream_log = SkipLog(), SkipLog()
    mean_a, votes_a, counts_a = predict_clips(model, clips, log=whole_log, **kw)
    mean_b, votes_b, counts_b = predict_clips(model, clips, log=stream_log, stream=True, **kw)
    assert counts_a.tolist() == counts_b.tolist() == [3, 1, 2, 0, 0]
    np.testing.assert_allclose(mean_a[:3], mean_b[:3], atol=1e-4)
    assert set(whole_log.skipped) == set(stream_log.skipped) and whole_log.padded == stream_log.padded
    # a tiny block size exercises the block joins
    chunks = list(streamed_window_batches(clips[:1], sample_rate=run.sample_rate,
                                           window_samples=run.window_samples, batch_size=2,
                                           block_seconds=0.37))
    whole = list(streamed_window_batches(clips[:1], sample_rate=run.sample_rate,
                                          window_samples=run.window_samples, batch_size=2))
    assert len(chunks) == len(whole)
    for (x, i), (y, j) in zip(chunks, whole):
        assert np.array_equal(i, j)
        np.testing.assert_allclose(x, y, atol=1e-4)


def test_evaluating_a_model_again_does_not_trace_it_again():
    import gc
    import weakref

    import genrenet
    from genrenet.data import load_dataset
    from genrenet.infer.windows import inference_function, predict_clips, worth_fusing

    model = genrenet.build_model("cnn", num_classes=3, **SMALL)
    ds = load_dataset(TINY)
    kw = dict(sample_rate=22050, window_samples=int(model.input_shape[-1]), batch_size=4, verbose=0)
    first = predict_clips(model, ds.clips, **kw)[0]
    used = inference_function(model, fused=worth_fusing(len(ds.clips)))
    traces = used.experimental_get_tracing_count()
    assert traces >= 1
    again = predict_clips(model, ds.clips, **kw)[0]
    assert used.experimental_get_tracing_count() == traces
    np.testing.assert_allclose(first, again, rtol=1e-6)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None  # the cache does not keep models alive


def test_many_clips_run_the_fused_front_end_with_the_same_results():
    """From FUSE_MIN_CLIPS clips on, inference compiles the front-end with XLA (worth its compile time); the
    probabilities are those of the plain graph."""
    import genrenet
    from genrenet.data import Clip
    from genrenet.infer.windows import FUSE_MIN_CLIPS, inference_function, predict_clips

    model = genrenet.build_model("cnn", num_classes=3, **SMALL)
    window = int(model.input_shape[-1])
    rng = np.random.default_rng(0)
    clips = [Clip(id=f"c{i}", label="", audio=(0.1 * rng.standard_normal(window)).astype(np.float32),
                  sample_rate=22050) for i in range(FUSE_MIN_CLIPS)]
    kw = dict(sample_rate=22050, window_samples=window, batch_size=32, verbose=0)
    few = predict_clips(model, clips[:FUSE_MIN_CLIPS - 1], **kw)[0]
    assert inference_function(model, fused=False).experimental_get_tracing_count() >= 1
    assert inference_function(model, fused=True).experimental_get_tracing_count() == 0
    many = predict_clips(model, clips, **kw)[0]
    assert inference_function(model, fused=True).experimental_get_tracing_count() >= 1
    np.testing.assert_allclose(many[:-1], few, atol=1e-5)
