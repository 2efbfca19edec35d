"""Scaling training: tf.distribute strategies, per-replica vs global batch size, which worker writes files.

``--batch-size`` is the batch size **per replica**; the global batch of one step is ``batch_size × replicas``
(one replica per GPU or TPU core, and one per worker × device for ``multi_worker``). The learning rate is not
scaled for you.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from ..errors import StrategyError

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")




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
            raise StrategyError(f"strategy=multi_worker: TF_CONFIG is not valid JSON ({e})") from None
        if not isinstance(config, dict) or not config.get("cluster") or not config.get("task"):
            raise StrategyError("strategy=multi_worker needs TF_CONFIG with 'cluster' and 'task', e.g. "
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
            raise StrategyError(f"strategy=tpu: no TPU available ({type(e).__name__}: "
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


def zero_batch(dataset: tf.data.Dataset, batch_size: int):
    """A batch of zeros with the element structure of a batched ``dataset``."""
    return tf.nest.map_structure(lambda spec: tf.zeros([batch_size] + spec.shape.as_list()[1:], spec.dtype),
                                 dataset.element_spec)


def average_across_replicas(variables, strategy: tf.distribute.Strategy):
    """Set ``variables`` to their mean over all replicas (one all-reduce), e.g. BatchNorm moving statistics,
    which Keras updates from each worker's own batches under MultiWorkerMirroredStrategy (workers drift apart)."""
    variables = list(variables)
    if not variables:
        return
    flat = strategy.run(lambda: tf.concat([tf.reshape(tf.cast(v.value, tf.float32), [-1]) for v in variables], 0))
    mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, flat, axis=None)
    sizes = [int(tf.size(v.value)) for v in variables]
    for v, part in zip(variables, tf.split(mean, sizes)):
        v.assign(tf.cast(tf.reshape(part, v.shape), v.dtype))


def sync_non_trainable_callback(strategy: tf.distribute.Strategy, steps_per_epoch: int):
    """A Keras callback that averages the model's non-trainable weights across workers after the last step of
    every epoch (before validation and checkpoints), so that all workers hold the same model."""
    import keras

    class SyncNonTrainable(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == steps_per_epoch - 1:
                average_across_replicas(self.model.non_trainable_weights, strategy)

    return SyncNonTrainable()
