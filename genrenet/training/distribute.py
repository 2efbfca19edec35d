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
            raise StrategyError(f"multi_worker: TF_CONFIG is not valid JSON ({e})", param="strategy") from None
        if not isinstance(config, dict) or not config.get("cluster") or not config.get("task"):
            raise StrategyError("multi_worker needs TF_CONFIG with 'cluster' and 'task', e.g. "
                                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                                '"task": {"type": "worker", "index": 0}}', param="strategy")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except Exception as e:  # no TPU here: say so in one line
            raise StrategyError(f"tpu: no TPU available ({type(e).__name__}: "
                                f"{str(e).strip().splitlines()[0] if str(e).strip() else 'not found'})",
                                param="strategy") from None
    raise StrategyError(f"must be one of {', '.join(STRATEGIES)}, got {name!r}", param="strategy")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (checkpoints, history, model): only one worker does."""
    return bool(strategy.extended.should_checkpoint)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard across workers by element (every worker reads the clips, keeps its part of each global batch):
    the pipeline reads in-memory or decoded clips, not one file per element, so FILE sharding does not apply."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def reads_record_shards(clips) -> bool:
    """Whether ``clips`` come from ``genrenet prepare``'s TFRecord shards (``tfrecord:PREFIX`` data), which
    multi-worker training shards by file."""
    return bool(clips) and all(hasattr(c, "shard") for c in clips)


def input_pipeline(strategy: tf.distribute.Strategy) -> tuple:
    """``(index, count)`` of this worker among the cluster's input pipelines (the chief first, then the workers),
    as ``tf.distribute.InputContext`` numbers them."""
    resolver = strategy.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    chiefs = len(jobs.get("chief", []))
    index = resolver.task_id + (chiefs if resolver.task_type == "worker" else 0)
    return index, chiefs + len(jobs.get("worker", []))


def fewest_across_workers(value: int, strategy: tf.distribute.Strategy, index: int, count: int) -> int:
    """The smallest of every worker's ``value`` (one all-reduce: each worker fills its own slot of a vector)."""
    local = max(1, strategy.num_replicas_in_sync // count)
    slots = strategy.run(lambda: tf.one_hot(index, count, dtype=tf.float32) * float(value))
    totals = strategy.reduce(tf.distribute.ReduceOp.SUM, slots, axis=None).numpy() / local
    return int(round(float(totals.min())))


def shard_by_file(strategy: tf.distribute.Strategy, clips, make_epochs, *, say=print):
    """``(distributed dataset, steps_per_epoch)`` where each worker reads only the clips of its own record
    shards (every ``count``-th shard: disjoint parts that together hold every clip), batched per replica.
    ``make_epochs(clips, agree_steps=...)`` builds one worker's epochs (:func:`genrenet.data.training_epochs`);
    all workers cut every epoch to the fewest steps any worker's part gives, so their collectives stay in step."""
    from ..data.sources.tfrecord import worker_shards

    index, count = input_pipeline(strategy)
    shards = sorted({c.shard for c in clips if c.shard})
    if len(shards) < count:
        raise StrategyError(f"the training clips are in {len(shards)} record shards, fewer than the {count} "
                            f"workers: prepare the data with --num-shards {count} or more")
    mine = set(worker_shards(shards, count, index))
    # clips that failed to decode while being prepared have no shard: the chief reports them as skipped
    part = [c for c in clips if c.shard in mine or (not c.shard and index == 0)]
    local = max(1, strategy.num_replicas_in_sync // count)
    agreed = {}

    def agree(batches: int) -> int:
        agreed["steps"] = fewest_across_workers(batches // local, strategy, index, count)
        return agreed["steps"] * local

    dataset, _ = make_epochs(part, agree_steps=agree)
    say(f"worker {index + 1} of {count} reads {len(mine)} of {len(shards)} record shards ({len(part)} training "
        f"clips): {', '.join(sorted(os.path.basename(m) for m in mine))}")
    return strategy.distribute_datasets_from_function(lambda context: dataset), agreed["steps"]


def zero_batch(model, num_classes: int, batch_size: int):
    """A training batch of zeros for ``model``: ``(waveforms [B, W], one-hot labels [B, C])``."""
    return (tf.zeros([batch_size, *model.input_shape[1:]], tf.float32),
            tf.zeros([batch_size, num_classes], tf.float32))


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
