"""Decision-level ensembles and embeddings: one model out of several runs, equal to the manual average."""
import numpy as np
import pytest

from conftest import TINY, run_cli, write_tone
from genrenet.infer.ensemble import EnsembleError, build_ensemble
from genrenet.run import Run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from genrenet.training.trainer import train

    root = tmp_path_factory.mktemp("members")
    a = train("cnn", TINY, str(root / "a"), epochs=1, verbose=0, seed=1,
              model_kwargs={"filters": [8, 16], "dense_units": [16]})
    b = train("lstm", TINY, str(root / "b"), epochs=1, verbose=0, seed=2, window_seconds=2.0,
              model_kwargs={"units": [16], "dense_units": 16})
    return a, b


@pytest.mark.parametrize("method, weights", [("mean", None), ("mean", [1.0, 3.0]), ("vote", [2.0, 1.0])])
def test_ensemble_equals_the_manual_combination(two_runs, method, weights):
    a, b = two_runs
    model, _ = build_ensemble([a, b], method, weights)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((4, a.window_samples))).astype(np.float32)
    start = (a.window_samples - b.window_samples) // 2  # the 2-s member sees the centre of the 3-s window
    pa = a.load_model()(x).numpy()
    pb = b.load_model()(x[:, start:start + b.window_samples]).numpy()
    if method == "vote":
        pa, pb = np.eye(3)[pa.argmax(1)], np.eye(3)[pb.argmax(1)]
    w = np.array(weights or [1.0, 1.0]) / sum(weights or [1.0, 1.0])
    np.testing.assert_allclose(model(x).numpy(), w[0] * pa + w[1] * pb, atol=1e-6)


@pytest.mark.slow  # three command-line processes
def test_ensemble_cli_exports_and_serves_like_one_model(two_runs, tmp_path):
    a, b = two_runs
    r = run_cli("ensemble", a.path, b.path, "--out", tmp_path / "ens", "--weights", "1", "2")
    assert r.returncode == 0, r.stderr
    song = write_tone(tmp_path / "song.wav", seconds=5.0, sr=16000)
    r = run_cli("predict", tmp_path / "ens", song, "--json")
    assert r.returncode == 0, r.stderr
    r = run_cli("export", tmp_path / "ens", "--out", tmp_path / "export")
    assert r.returncode == 0, r.stderr
    import tensorflow as tf

    served = tf.saved_model.load(str(tmp_path / "export" / "genrenet" / "1")).signatures["serving_default"]
    x = np.zeros((1, 3 * 22050), np.float32)
    x[0, ::50] = 0.5
    out = served(waveform=tf.constant(x))
    np.testing.assert_allclose(out["probabilities"].numpy(), Run(tmp_path / "ens").load_model()(x).numpy(),
                               atol=1e-5)


def test_ensemble_refuses_members_with_other_labels(two_runs, tmp_path):
    from genrenet.training.trainer import train

    other = train("cnn", "synthetic:classes=2,clips=3,seconds=3.5", str(tmp_path / "o"), epochs=1, verbose=0,
                  model_kwargs={"filters": [8], "dense_units": [8]})
    with pytest.raises(EnsembleError, match="same classes"):
        build_ensemble([two_runs[0], other])
    with pytest.raises(EnsembleError, match="non-negative"):
        build_ensemble(list(two_runs), weights=[1.0])


def test_embed_writes_one_vector_per_decodable_file(two_runs, tmp_path):
    good = write_tone(tmp_path / "good.wav", seconds=7.0)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"garbage")
    r = run_cli("embed", two_runs[0].path, good, bad, "--out", tmp_path / "e.npz")
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout and "bad.wav" in r.stdout
    data = np.load(tmp_path / "e.npz")
    assert data["embeddings"].shape == (1, 16)  # the cnn's last FC block has 16 units here
    assert data["windows"].tolist() == [2] and data["files"][0].endswith("good.wav")
