"""Training batches from a tf.data service. `genrenet data-service` runs in subprocesses (a dispatcher and
workers on localhost, as in the docs); the trainer side runs in this process and as the real `genrenet train`
command line. The workers are other processes, so they can only run the graph they are sent (no Python of ours)."""
import json
import os
import selectors
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, TINY

TRAIN_ARGS = ["cnn", "--data", TINY, "--epochs", "2", "--batch-size", "2", "--verbose", "2",
              "--set", "filters=[8,16]", "--set", "dense_units=[16]"]


def _start_service(workers, log):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "genrenet", "data-service", "--port", "0", "--workers",
                             str(workers)], stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def _address(proc, timeout=120):
    """The loopback address from the service's first line (grpc://localhost:PORT → grpc://127.0.0.1:PORT)."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), "genrenet data-service printed nothing"
    line = proc.stdout.readline()
    assert line.startswith("tf.data service at grpc://localhost:"), line
    return "grpc://127.0.0.1:" + line.split("grpc://localhost:", 1)[1].split()[0]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """{workers: address} for a 1-worker and a 2-worker `genrenet data-service`, started in parallel."""
    logs = tmp_path_factory.mktemp("service-logs")
    procs = {n: _start_service(n, open(logs / f"{n}.log", "w")) for n in (1, 2)}
    try:
        yield {n: _address(p) for n, p in procs.items()}
    finally:
        for n, p in procs.items():
            p.send_signal(signal.SIGTERM)  # the normal way to stop it: it says so and exits 0
        for n, p in procs.items():
            try:
                out, _ = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                raise AssertionError(f"genrenet data-service --workers {n} did not stop on SIGTERM") from None
            assert p.returncode == 0 and "tf.data service stopped" in out, (p.returncode, out)


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def _epoch_key(batches):
    return sorted(x.tobytes() + y.tobytes() for x, y in batches)


def test_service_makes_the_local_batches_of_every_epoch(services, tmp_path):
    """Same (bit-identical) batches per epoch as the local pipeline, with augmentation that needs crops longer
    than a window (stretch), per-window (gain) and per-batch (mixup) random ops; one worker keeps the order."""
    from genrenet.data import service as data_service
    from genrenet.data import SkipLog, TrainingSpec, load_dataset, training_epochs

    data = load_dataset(TINY)
    spec = TrainingSpec(data.labels, sample_rate=16000, window_samples=48000, batch_size=2, seed=5,
                        augment=["stretch", "gain", "mixup"], cache=str(tmp_path / "cache"))
    kwargs = dict(initial_epoch=1, epochs=3)
    local, steps = training_epochs(data.clips, spec, log=SkipLog(), **kwargs)
    local = _batches(local)
    assert len(local) == 2 * steps and steps == 6
    said = []
    for workers, address in services.items():
        ds, service_steps = data_service.training_epochs(data.clips, spec, service=address, log=SkipLog(),
                                                         say=said.append, **kwargs)
        remote = _batches(ds)
        assert service_steps == steps and len(remote) == len(local)
        for e in range(2):  # each epoch: the same batches, each once (the order varies with several workers)
            assert _epoch_key(remote[e * steps:(e + 1) * steps]) == _epoch_key(local[e * steps:(e + 1) * steps])
        if workers == 1:
            assert all(np.array_equal(a, b) for r, l in zip(remote, local) for a, b in zip(r, l))
        assert f"({workers} worker" in said[-1]  # counted from the shards the service's workers produced


@pytest.mark.slow  # trains end to end
def test_train_cli_with_a_data_service(services, tmp_path):
    """The local example of docs/scaling.md: `genrenet train ... --cache DIR --data-service grpc://127.0.0.1:PORT`."""
    address, run = services[2], tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "genrenet", "train", *TRAIN_ARGS, "--out", str(run),
                        "--cache", str(tmp_path / "cache"), "--data-service", address],
                       env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"training batches from the tf.data service at {address} (2 workers" in r.stdout, r.stdout
    assert "6/6" in r.stdout  # steps_per_epoch as without the service (12 windows, batch 2)
    assert (run / "model.keras").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["data_service"] == address
    assert any(n.startswith("data_service:") for n in config["data"]["notes"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and np.isfinite(metrics["final_loss"])
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("extra, message", [
    (["--cache", "CACHE", "--data-service", "notanaddress"], "'notanaddress' is not grpc://HOST:PORT"),
    (["--cache", "CACHE", "--data-service", "grpc://127.0.0.1:FREE"], "nothing answers at 127.0.0.1:"),
    (["--data-service", "grpc://127.0.0.1:FREE"], "a directory the service's workers can read"),
    (["--cache", "CACHE", "--data-service", "127.0.0.1:FREE", "--strategy", "multi_worker"],
     "not multi_worker"),
])
def test_data_service_errors_are_one_line(extra, message, tmp_path, capsys):
    from genrenet.cli import main

    port = str(_free_port())
    args = [a.replace("CACHE", str(tmp_path / "cache")).replace("FREE", port) for a in extra]
    assert main(["train", *TRAIN_ARGS, "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genrenet: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()  # refused before anything was written or decoded


def test_data_service_command_refuses_zero_workers(capsys):
    from genrenet.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["data-service", "--workers", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith("error: argument --workers: must be ≥ 1, got 0\n")
