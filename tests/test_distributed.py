"""tf.distribute training on CPU — MirroredStrategy over 2 logical CPU devices, and a real 2-worker
MultiWorkerMirroredStrategy run on localhost. Each in subprocesses (devices and collectives must be configured
before TensorFlow initialises), running the same `genrenet train` command line the docs show."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, TINY, write_tone

pytestmark = pytest.mark.slow

MODEL_ARGS = ["cnn", "--data", TINY, "--epochs", "1", "--batch-size", "2", "--verbose", "0", "--val-fraction", "0.2",
              "--set", "filters=[8,16]", "--set", "dense_units=[16]"]

# Runs `genrenet ARGS` in-process after an optional logical-device split, saving the model's weights after every
# epoch to $GENRENET_TEST_DUMP-<epoch>.npz (so that the workers' weights can be compared).
WRAPPER = r"""
import os, sys
import numpy as np
import tensorflow as tf
if os.environ.get("SPLIT_CPU"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from genrenet.training import checkpoint as resume
original = resume.EpochCheckpoint.on_epoch_end
def dump(self, epoch, logs=None):
    original(self, epoch, logs)
    np.savez(f"{os.environ['GENRENET_TEST_DUMP']}-{epoch}.npz", *[np.asarray(w) for w in self.model.get_weights()])
resume.EpochCheckpoint.on_epoch_end = dump
if os.environ.get("GENRENET_TEST_READS"):  # log every record shard this process reads
    from genrenet.data.sources import tfrecord
    read = tfrecord.read_record
    def logged(shard, offset):
        with open(os.environ["GENRENET_TEST_READS"], "a") as f:
            f.write(shard + "\n")
        return read(shard, offset)
    tfrecord.read_record = logged
from genrenet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", **extra)


def _weights(path):
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", WRAPPER, "train", *MODEL_ARGS, "--strategy", "mirrored",
                        "--out", str(run)], env=_env(SPLIT_CPU="1", GENRENET_TEST_DUMP=str(tmp_path / "w")),
                       capture_output=True, text=True, timeout=400, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["strategy"] == "mirrored" and config["run"]["replicas"] == 2
    assert config["training"]["batch_size"] == 2 and config["run"]["global_batch_size"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["final_loss"]) and np.isfinite(metrics["final_val_loss"])
    assert all(np.all(np.isfinite(w)) for w in _weights(tmp_path / "w-0.npz"))


def _two_workers(tmp_path, args, **env):
    """Run ``genrenet train ARGS --strategy multi_worker`` as worker 0 and 1 of a localhost cluster; their
    (stdout, stderr), after checking that both succeeded."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        extra = {k: f"{v}{index}" for k, v in env.items()}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WRAPPER, "train", *args, "--strategy", "multi_worker"],
            env=_env(TF_CONFIG=tf_config, GENRENET_TEST_DUMP=str(tmp_path / f"worker{index}"), **extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=500))
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    return outputs


def test_multi_worker_mirrored_strategy_two_workers_on_localhost(tmp_path):
    run = tmp_path / "run"
    outputs = _two_workers(tmp_path, [*MODEL_ARGS, "--out", str(run)])
    chief, other = _weights(tmp_path / "worker0-0.npz"), _weights(tmp_path / "worker1-0.npz")
    assert len(chief) == len(other) and all(np.array_equal(a, b) for a, b in zip(chief, other))
    config = json.loads((run / "config.json").read_text())  # written by the chief only
    assert config["training"]["strategy"] == "multi_worker" and config["run"]["replicas"] == 2
    assert config["run"]["global_batch_size"] == 4
    assert (run / "model.keras").is_file() and "run saved to" in outputs[0][0] and "run saved to" not in outputs[1][0]


def test_two_workers_train_on_disjoint_record_shards(tmp_path):
    from genrenet.data.prepare import prepare

    for i in range(6):
        write_tone(tmp_path / "audio" / "low" / f"low{i}.wav", seconds=3.5, freq=180 + 25 * i)
        write_tone(tmp_path / "audio" / "high" / f"high{i}.wav", seconds=3.5, freq=1200 + 60 * i)
    prefix = tmp_path / "records" / "clips"
    prepare(str(tmp_path / "audio"), str(prefix), sample_rate=22050, num_shards=3)
    shards = sorted(str(p) for p in prefix.parent.glob("clips-*.tfrecord"))
    run = tmp_path / "run"
    args = ["cnn", "--data", f"tfrecord:{prefix}", "--epochs", "2", "--batch-size", "2", "--val-fraction", "0",
            "--verbose", "2", "--set", "filters=[8,16]", "--set", "dense_units=[16]", "--out", str(run)]
    outputs = _two_workers(tmp_path, args, GENRENET_TEST_READS=tmp_path / "reads")

    reads = [set((tmp_path / f"reads{i}").read_text().split()) for i in range(2)]
    assert reads[0] and reads[1] and reads[0].isdisjoint(reads[1])
    assert sorted(reads[0] | reads[1]) == shards  # together the workers read every shard once
    assert "worker 1 of 2 reads 2 of 3 record shards (8 training clips)" in outputs[0][0]  # the chief speaks
    # 8 and 4 clips in batches of 2: both take the 2 steps per epoch the smaller part gives, in step
    for epoch in range(2):
        chief, other = _weights(tmp_path / f"worker0-{epoch}.npz"), _weights(tmp_path / f"worker1-{epoch}.npz")
        assert all(np.array_equal(a, b) for a, b in zip(chief, other))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and np.isfinite(metrics["final_loss"])
