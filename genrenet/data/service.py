"""Optional tf.data service for the training input: each epoch's batches are made on tf.data service workers
(other processes or machines) instead of in the trainer.

Why it is built this way:

- genrenet decodes audio with soundfile and soxr inside ``tf.numpy_function``, and a worker in another process
  cannot run a Python function of the trainer ("Could not find callback pyfunc_0"). So the service reads the
  decoded audio that ``--cache DIR`` holds, with TensorFlow ops only. The trainer still decodes every clip once,
  as it always does to count the windows of an epoch; that pass fills DIR, and a warm DIR (an earlier run) makes
  it a read. DIR must be readable by the workers at the same absolute path (shared storage on a cluster).
- Each epoch is its own service job, sharded statically at batch level (``ShardingPolicy.HINT``) *before*
  waveform augmentation: worker k augments (and mixes up) batches k, k+N, ... of the same epoch stream that
  :func:`genrenet.data.training.training_epochs` gives, so every batch of an epoch is made once and an epoch
  has exactly ``steps_per_epoch`` batches. Reading, cropping and shuffling are cheap and run on every worker.
  With one job for all epochs, a fast worker's stream can arrive long before another's and Keras "epochs" would
  mix data epochs; with ``parallel_epochs`` every worker would produce the whole epoch (N copies of each batch);
  ``distributed_epoch`` splits clips across workers, which changes the batches and their count.
- Static sharding needs a dispatcher that knows how many workers it has (``DispatcherConfig.worker_addresses``);
  :func:`start` and ``genrenet data-service`` set it.

What does not hold across a service: the batches of an epoch arrive in the order the workers finish them, so
with more than one worker runs are not bit-identical (``--deterministic``), and ``--resume`` continues at the
right epoch with that epoch's batches but not with the results of an uninterrupted run. With one worker the
stream is that of a run without the service. A worker that dies stalls the epoch until it is back at the same
address. The servers listen on every interface (TensorFlow has no bind address) and run whatever graph they
are sent, file reads and writes included: run them only on a trusted network.
"""
from __future__ import annotations

import functools
import os
import re
import signal
import socket
import threading
import uuid
from typing import Callable

import numpy as np

from ..errors import DataServiceError
from .cache import CachePolicy

ADDRESS = re.compile(r"^(?:grpc://)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})$")
PROBE_SECONDS = 60.0
NEEDS_DIR = ("data_service needs cache=DIR, a directory the service's workers can read at the same path: they read "
             "the decoded audio from there (they cannot run genrenet's Python decoder)")


def check(address: str, *, strategy: str = "default", cache=None, timeout: float = 5.0) -> str:
    """``grpc://HOST:PORT`` for ``address`` (``HOST:PORT`` is accepted too), after checking that the options
    allow the service and that something listens there. TensorFlow itself retries a malformed or dead address
    for an hour, silently: this makes both a one-line error before any data is decoded."""
    match = ADDRESS.match(str(address).strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise DataServiceError(f"data_service={address!r} is not grpc://HOST:PORT (`genrenet data-service` "
                               "starts a local service and prints its address)")
    host, port = match["host"], int(match["port"])
    if strategy not in (None, "default", "mirrored"):
        raise DataServiceError(f"data_service works with strategy=default or strategy=mirrored (one trainer process), "
                               f"not {strategy}: several trainers would each need their part of the same batches")
    if CachePolicy.of(cache).directory is None:
        raise DataServiceError(NEEDS_DIR)
    try:
        socket.create_connection((host.strip("[]"), port), timeout=timeout).close()
    except OSError as e:
        raise DataServiceError(f"data_service: nothing answers at {host}:{port} ({e.strerror or e}); start a "
                               f"service with `genrenet data-service --port {port}`") from None
    return f"grpc://{host}:{port}"


def _cached_sources(clips, sample_rate: int, cache: str, log):
    """(absolute ``.npy`` paths, byte offsets of their data, clip indices) of the clips the trainer's counting
    pass decoded into ``cache``; the clips it skipped (undecodable, silent, NaN) are left out, as locally."""
    from .memory import AudioCache, cache_key

    disk = AudioCache(cache)
    paths, offsets, indices = [], [], []
    for i, clip in enumerate(clips):
        if clip.name in log.skipped:
            continue
        path = os.path.abspath(disk.file(cache_key(clip, sample_rate), ".npy"))
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
                offset = f.tell()
        except (OSError, ValueError) as e:
            raise DataServiceError(f"{clip.name}: its decoded audio is not in the cache {cache} ({e})") from None
        if len(shape) != 1 or dtype != np.dtype("<f4"):
            raise DataServiceError(f"{path}: not a cached genrenet clip (shape {shape}, dtype {dtype})")
        paths.append(path)
        offsets.append(offset)
        indices.append(i)
    return paths, offsets, indices


def training_epochs(clips, spec, *, service: str, epochs: int, initial_epoch: int = 0, log=None,
                    say: Callable[[str], None] = print):
    """Like :func:`genrenet.data.training.training_epochs` (the same :class:`~genrenet.data.training.TrainingSpec`,
    the same batches in each epoch, the same ``steps_per_epoch``), but every epoch's batches come from the tf.data
    service at ``service``. The spec's cache must be a directory the workers can read (see the module
    docstring); ``say`` gets one line on the service (its number of workers)."""
    from .skips import SkipLog
    from .training import AUTOTUNE, concatenate, epoch_stream, steps_per_epoch

    log = log if log is not None else SkipLog()
    if spec.cache.directory is None:
        raise DataServiceError(NEEDS_DIR)
    steps, decoded = steps_per_epoch(clips, spec, log)  # decodes every clip once: fills the cache workers read
    if initial_epoch >= epochs:  # nothing left to train: an empty stream and no job
        return epoch_stream(spec, decoded, spec.targets(clips), 0, shuffled=False).take(0), steps
    sources = _cached_sources(clips, spec.sample_rate, spec.cache.directory, log)
    job = f"genrenet-{uuid.uuid4().hex[:12]}"  # unique: a shared job name would split one stream between readers
    workers = _probe(service, job)
    if steps < workers:
        raise DataServiceError(f"an epoch has {steps} batches, fewer than the {workers} workers of the tf.data "
                               f"service at {service} (each must make one): use fewer workers or smaller batches")
    say(f"training batches from the tf.data service at {service} ({workers} worker{'s' * (workers != 1)}, "
        f"one job per epoch, job names {job}-epochN)")
    epoch = functools.partial(_service_epoch, clips, spec, sources, service=service, job=job)
    return concatenate([epoch(e) for e in range(initial_epoch, epochs)]).prefetch(AUTOTUNE), steps


def _service_epoch(clips, spec, sources, e: int, *, service: str, job: str):
    """Epoch ``e`` of the training pipeline, read from the disk cache and made on the service's workers: each
    worker augments (and mixes up) its share of the epoch's batches, sharded between batching and augmentation."""
    import tensorflow as tf

    from .training import epoch_seeds, epoch_stream

    hint = tf.data.experimental.SHARD_HINT
    # Clip indices are shuffled before reading, into the order of the local pipeline's clip shuffle: no worker
    # holds decoded clips in a shuffle buffer.
    clip_ds = _cached_clips(sources, spec.window_samples, epoch_seeds(spec.seed, e)[0], len(clips))
    ds = epoch_stream(spec, clip_ds, spec.targets(clips), e, shuffled=True, split=lambda d: d.shard(hint, hint))
    return ds.apply(tf.data.experimental.service.distribute(
        tf.data.experimental.service.ShardingPolicy.HINT, service, job_name=f"{job}-epoch{e}",
        compression=None))  # float audio hardly compresses, and decompressing would cost the trainer CPU


def _cached_clips(sources, window_samples: int, shuffle_seed: int, num_clips: int):
    """``(audio, clip index)`` of the ``(paths, offsets, indices)`` :func:`_cached_sources` found, shuffled as
    :func:`genrenet.data.decoding.clip_audio` shuffles ``num_clips`` clips, before they are read from the disk
    cache, with TF ops only (this runs on the service's workers)."""
    import tensorflow as tf

    from .decoding import AUTOTUNE

    paths, offsets, indices = sources

    def read(path, offset, i):
        data = tf.io.read_file(path)
        audio = tf.io.decode_raw(tf.strings.substr(data, offset, tf.strings.length(data) - offset), tf.float32)
        return tf.pad(audio, [[0, tf.maximum(0, window_samples - tf.shape(audio)[0])]]), i  # pads as locally

    clip_ds = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), tf.constant(offsets, tf.int32),
                                                  tf.constant(indices, tf.int64)))
    clip_ds = clip_ds.shuffle(max(1, num_clips), seed=shuffle_seed, reshuffle_each_iteration=False)
    return clip_ds.map(read, num_parallel_calls=AUTOTUNE, deterministic=True)


def _probe(service: str, job: str) -> int:
    """The number of workers of ``service``, from one element of a statically sharded job (worker k's batch of
    ``range(4096)`` is k, k+N, ...). A dispatcher without a worker list, or without workers, becomes a one-line
    error here instead of an error or an endless wait inside ``fit``."""
    import tensorflow as tf

    hint = tf.data.experimental.SHARD_HINT
    # map(): shard() right on a source is rewritten as file sharding; every worker must get an element.
    ds = tf.data.Dataset.range(4096).map(lambda i: i).shard(hint, hint).batch(4096).take(1)
    ds = ds.apply(tf.data.experimental.service.distribute(tf.data.experimental.service.ShardingPolicy.HINT,
                                                          service, job_name=f"{job}-probe"))
    result = {}

    def fetch():
        try:
            result["value"] = [v.tolist() for v in ds.as_numpy_iterator()]
        except Exception as e:  # reported below, in one line
            result["error"] = e

    thread = threading.Thread(target=fetch, daemon=True)  # a service without workers would block forever
    thread.start()
    thread.join(PROBE_SECONDS)
    if "error" in result:
        text = re.sub(r"^\{\{[^}]*\}\}\s*|\s*\[Op:\w+\].*$", "", str(result["error"]).strip().split("\n")[0])
        first = text or type(result["error"]).__name__
        why = (" (static sharding needs a dispatcher with a fixed worker list, DispatcherConfig(worker_addresses="
               "...); `genrenet data-service` sets one)" if "workers list" in first else "")
        raise DataServiceError(f"data_service={service}: {first}{why}")
    if not result.get("value"):
        raise DataServiceError(f"data_service={service}: no tf.data service worker produced data within "
                               f"{PROBE_SECONDS:.0f} s (are its workers running?)")
    batch = result["value"][0]
    return batch[1] - batch[0] if len(batch) > 1 else 4096


def start(port: int = 0, workers: int = 1):
    """An in-process dispatcher on ``port`` (0: any free port) and ``workers`` workers (any free ports), all
    reached through ``localhost``; returns ``(dispatcher, [worker, ...])`` (``dispatcher.target`` is
    ``grpc://localhost:PORT``). The dispatcher is told how many workers it has: static sharding needs that."""
    import tensorflow as tf

    service = tf.data.experimental.service
    if workers < 1:
        raise DataServiceError(f"--workers must be at least 1, got {workers}")
    try:
        dispatcher = service.DispatchServer(service.DispatcherConfig(
            port=port, worker_addresses=["localhost:%port%"] * workers))
        address = dispatcher.target.split("://", 1)[1]
        pool = [service.WorkerServer(service.WorkerConfig(dispatcher_address=address)) for _ in range(workers)]
    except tf.errors.OpError as e:
        raise DataServiceError(f"cannot start the tf.data service on port {port}: {e.message}") from None
    return dispatcher, pool


def serve(port: int = 5050, workers: int = 1):
    """:func:`start`, print the address, and serve until Ctrl-C or SIGTERM (the normal end, not an error); then
    return ``(dispatcher, workers)`` still running. They are not stopped here: once a trainer has gone away
    mid-job, TensorFlow's ``stop()`` (and the servers' destructors) can block for a long time, holding the GIL,
    and there is nothing to save (the dispatcher is not fault-tolerant), so ``genrenet data-service`` ends the
    process with ``os._exit``."""
    dispatcher, pool = start(port, workers)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"tf.data service at {dispatcher.target} (dispatcher + {workers} worker{'s' * (workers != 1)} on "
              f"this machine): train with --data-service {dispatcher.target} --cache DIR; Ctrl-C stops it",
              flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return dispatcher, pool
