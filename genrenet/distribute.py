"""Scaling training: tf.distribute strategies, per-replica vs global batch size, which worker writes files.

``--batch-size`` is the batch size **per replica**; the global batch of one step is ``batch_size × replicas``
(one replica per GPU or TPU core, and one per worker × device for ``multi_worker``). The learning rate is not
scaled for you.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


class StrategyError(ValueError):
    """A distribution strategy that cannot be created here (no TPU, no TF_CONFIG, ...)."""


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """``default`` (one device: the GPU when there is one), ``mirrored`` (every local GPU; without GPUs every
    logical CPU device), ``multi_worker`` (MultiWorkerMirroredStrategy, cluster from ``TF_CONFIG``) or ``tpu``
    (TPUStrategy; ``TPU_NAME`` names a remote TPU, default: the local TPU VM).

    ``multi_worker`` must be created before TensorFlow runs any op in the process (train() does it first).
    """
    if name in (None, "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multi_worker":
        try:
            config = json.loads(os.environ.get("TF_CONFIG") or "null")
        except json.JSONDecodeError as e:
            raise StrategyError(f"--strategy multi_worker: TF_CONFIG is not valid JSON ({e})") from None
        if not isinstance(config, dict) or not config.get("cluster") or not config.get("task"):
            raise StrategyError("--strategy multi_worker needs TF_CONFIG with 'cluster' and 'task', e.g. "
                                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                                '"task": {"type": "worker", "index": 0}}')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except Exception as e:  # no TPU here: say so in one line
            raise StrategyError(f"--strategy tpu: no TPU available ({type(e).__name__}: "
                                f"{str(e).strip().splitlines()[0] if str(e).strip() else 'not found'})") from None
    raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (checkpoints, history, model): only one worker does."""
    return bool(strategy.extended.should_checkpoint)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard across workers by element (every worker reads the clips, keeps its part of each global batch):
    the pipeline reads in-memory or decoded clips, not one file per element, so FILE sharding does not apply."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
