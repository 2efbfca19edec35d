"""``train``: data spec + model name → a run directory with the best model and everything needed to use it."""
from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import platform
import shutil
import sys
import warnings
from collections import Counter
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from . import registry
from .data import ClipDataset, SkipLog, holdout_split, load_dataset, validation_dataset
from .data.augment import Augment
from .data.pipeline import training_epochs
from .data_service import DataServiceError, check as check_data_service, training_epochs as service_epochs
from .layers import spec_augment_scope
from .distribute import (StrategyError, is_chief, keras_workarounds, make_strategy, shard_by_data,
                         sync_non_trainable_callback, zero_batch)
from .resume import CHECKPOINT_DIR, CheckpointError, EpochCheckpoint, load_state, write_history_csv
from .runs import Run, _json_default, atomic_path, is_run_dir, write_json, write_text


# Our datasets end when the epoch's crops run out (their length is only known after decoding); Keras warns.
warnings.filterwarnings("ignore", message="Your input ran out of data")
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed, but will be ignored")


class TrainingError(ValueError):
    """Training cannot start (bad arguments, existing run, unusable data)."""


def _versions() -> dict:
    import librosa

    from . import __version__

    return {"genrenet": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "librosa": librosa.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _default_out(model_name: str) -> str:
    return os.path.join("runs", f"{model_name}-{datetime.datetime.now():%Y%m%d-%H%M%S}")


MIN_CLIPS_PER_CLASS_FOR_VALIDATION = 10

# Defaults measured on the 40 real GTZAN dev clips (2-fold artist-aware CV, benchmarks/gtzan_dev.py). From
# scratch, models memorise 20 training clips within 30 epochs (training accuracy 0.97+) and score at the MFCC+SVM
# baseline (crnn_attention 0.55); mixup with 60 epochs of cosine-decayed learning rate lifts crnn_attention to
# 0.675 and cnn to 0.70. A frozen pretrained backbone's head trains on cached features, where mixup does not
# apply and longer training only overfits: 30 epochs at a constant rate (musicnn msd 0.90; 60 cosine: 0.85).
DEFAULT_EPOCHS = 60
DEFAULT_AUGMENT = ("mixup",)
DEFAULT_LR_SCHEDULE = "cosine"
HEAD_EPOCHS = 30
HEAD_LR_SCHEDULE = "constant"
LR_SCHEDULES = ("cosine", "constant")


def cosine_learning_rate(learning_rate: float, epochs: int):
    """Epoch → learning rate, decaying from ``learning_rate`` to ~0 over ``epochs`` (half a cosine). A pure
    function of the epoch, so a resumed run gets the same rates as an uninterrupted one."""
    return lambda epoch, lr=None: float(learning_rate * 0.5 * (1.0 + np.cos(np.pi * epoch / max(1, epochs))))


def resolve_splits(dataset: ClipDataset, val_fraction: Optional[float], seed: int):
    """(train clips, validation clips, notes): the dataset's own split when it has one, else a seeded
    stratified hold-out by clip/group made before windowing.

    ``val_fraction=None`` (the default) holds out 20 % only when every class has at least
    :data:`MIN_CLIPS_PER_CLASS_FOR_VALIDATION` clips to spare. On fewer, a hold-out costs a large share of the
    training data and its loss is too noisy to stop on (measured on the 40 GTZAN dev clips, see
    ``benchmarks/gtzan_dev.py``), so the model trains on every clip and early stopping watches the training loss.
    """
    notes = []
    pool = dataset.clips
    if dataset.has_splits and dataset.split("train"):
        pool, val = dataset.split("train"), dataset.split("val")
        if val:
            return pool, val, notes
        notes.append("the dataset has no validation split: holding out part of its training split")
    if val_fraction is None:
        fewest = min(Counter(c.label for c in pool).values())
        if fewest < MIN_CLIPS_PER_CLASS_FOR_VALIDATION:
            return pool, [], [f"no validation split: a class has only {fewest} training clips (a hold-out needs "
                              f"{MIN_CLIPS_PER_CLASS_FOR_VALIDATION}+ per class to be worth its cost); early "
                              "stopping watches the training loss (pass val_fraction / --val-fraction to hold out "
                              "anyway)"]
        val_fraction = 0.2
    if not val_fraction:
        return pool, [], []
    train, val, more = holdout_split(pool, val_fraction, seed)
    return train, val, notes + more


def _write_skips(path, rows):
    """``skipped.tsv``: one ``file<TAB>reason`` row per skipped or padded file, written atomically."""
    write_text(path, "file\treason\n" + "".join(f"{n}\t{r}\n" for n, r in rows))


class _SkipReport(keras.callbacks.Callback):
    """Writes ``skipped.tsv`` after every epoch, so what was skipped survives an interrupted run."""

    def __init__(self, log: SkipLog, path: str, verbose: int = 1):
        super().__init__()
        self.log, self.path, self.verbose, self.batches = log, path, verbose, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        rows = self.log.to_rows()
        if rows:
            _write_skips(self.path, rows)
        if not self.batches:  # every training file failed to decode (silent, NaN, corrupt...)
            for line in self.log.summary():
                _say(self.verbose, line)
            raise TrainingError(f"no usable training audio: all training files were skipped "
                                f"({len(self.log.skipped)} skipped in total; reasons in {self.path})")


PRECISIONS = ("off", "mixed_float16", "mixed_bfloat16")
# Config keys that may differ when a run is resumed (everything else must match the started run).
_RESUMABLE_CHANGES = ("epochs", "command", "versions", "notes", "data_service")
_RUN_MARKERS = ("config.json", "labels.json", "history.csv", "metrics.json", CHECKPOINT_DIR)


def _check_out(out: str, resume: bool) -> Optional[dict]:
    """Refuse to overwrite a finished run, or to restart an unfinished one without ``resume``; returns the
    unfinished run's checkpoint state when resuming (None: nothing to resume yet)."""
    if is_run_dir(out):
        if resume:
            raise TrainingError(f"{out}: the run is already finished, nothing to resume; choose another --out for a "
                                "new run (nothing was overwritten)")
        raise TrainingError(f"{out}: already holds a finished run; choose another --out (nothing was overwritten)")
    started = any(os.path.exists(os.path.join(out, m)) for m in _RUN_MARKERS)
    if started and not resume:
        raise TrainingError(f"{out}: holds an unfinished run; use --resume to continue it from its last completed "
                            "epoch, or choose another --out (nothing was overwritten)")
    if not resume:
        return None
    try:
        return load_state(out)
    except CheckpointError as e:
        raise TrainingError(str(e)) from None


def _check_same_config(out: str, config: dict):
    """A resumed run must be the same run: same model, data, seed, batch size, ... (``epochs`` may grow)."""
    path = os.path.join(out, "config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        started = json.load(f)
    now = json.loads(json.dumps(config, default=_json_default))
    diff = sorted(k for k in set(started) | set(now) if k not in _RESUMABLE_CHANGES and started.get(k) != now.get(k))
    if diff:
        detail = ", ".join(f"{k}: {started.get(k)!r} -> {now.get(k)!r}" for k in diff[:4])
        raise TrainingError(f"{out}: cannot resume with different settings ({detail}); rerun the original command "
                            "with --resume")


@contextlib.contextmanager
def _reproducibility(seed: int, deterministic: bool):
    """Seed Python, NumPy and TF; with ``deterministic`` also make TF ops deterministic (restored afterwards)."""
    keras.utils.set_random_seed(seed)
    was = tf_config.is_op_determinism_enabled()
    if deterministic and not was:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if deterministic and not was:
            tf_config.disable_op_determinism()


@contextlib.contextmanager
def _precision_policy(mixed_precision: str):
    """Build layers under ``mixed_precision`` (the front-end and the softmax stay float32 by construction)."""
    if mixed_precision not in PRECISIONS:
        raise TrainingError(f"mixed_precision must be one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32" if mixed_precision == "off" else mixed_precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def train(model: str, data="synthetic", out: Optional[str] = None, *, epochs: Optional[int] = None,
          batch_size: int = 32, learning_rate: float = 1e-3, lr_schedule: Optional[str] = None, seed: int = 0,
          patience: int = 10, val_fraction: Optional[float] = None, window_seconds: Optional[float] = None,
          crops_per_clip: Optional[int] = None, model_kwargs: Optional[dict] = None, pretrained: Optional[str] = None,
          freeze_backbone: Optional[bool] = None, fine_tune_epochs: int = 0, fine_tune_learning_rate: float = 1e-5,
          verbose: int = 1, evaluate_val: bool = True, resume: bool = False, deterministic: bool = False,
          mixed_precision: str = "off", strategy: str = "default", augment="default", cache=True,
          data_service: Optional[str] = None) -> Run:
    """Train ``model`` (a registered name) on ``data`` (a spec or a :class:`ClipDataset`) into ``out``.

    ``epochs``, ``lr_schedule`` and ``augment`` default to what was measured best on real music: from scratch
    60 epochs, ``"cosine"`` (the learning rate decays from ``learning_rate`` to ~0 over the epochs) and mixup;
    for the head of a frozen pretrained backbone 30 epochs at a ``"constant"`` rate and no augmentation (see
    :data:`DEFAULT_EPOCHS`, :data:`HEAD_EPOCHS`). Early stopping on the validation loss keeps the best epoch's
    weights. Without a validation split (the default when a class has fewer than 10 clips, see
    :func:`resolve_splits`) it watches the training loss. Returns the :class:`Run`; its ``metrics.json``
    holds the validation clip accuracy of the kept model.

    Transfer learning: ``pretrained`` (e.g. ``"msd"`` for musicnn) loads pretrained weights; the backbone is
    then frozen unless ``freeze_backbone=False``, and the new head trains on cached backbone features (see
    :mod:`genrenet.transfer`). ``fine_tune_epochs`` then trains the whole model at ``fine_tune_learning_rate``.

    Every epoch end leaves a checkpoint in ``out/checkpoint``: ``resume=True`` continues an interrupted run from
    its last completed epoch with the same results as an uninterrupted one. ``deterministic`` makes two runs
    with the same seed bit-identical on CPU. ``mixed_precision``: ``off``, ``mixed_float16`` or
    ``mixed_bfloat16``. ``strategy``: ``default``, ``mirrored``, ``multi_worker`` (``TF_CONFIG``) or ``tpu``;
    ``batch_size`` is per replica (the global batch is ``batch_size × replicas``).

    ``augment``: training-only augmentation, e.g. ``["gain", "noise", "specaugment", "mixup"]`` or
    ``{"noise": {"snr_db": [10, 20]}}`` (see :mod:`genrenet.data.augment`); ``"default"`` is mixup from
    scratch (:data:`DEFAULT_AUGMENT`), ``None`` none.
    ``cache``: ``True`` keeps decoded audio in memory, a directory keeps it on disk (datasets larger than
    memory), ``False`` decodes every epoch.

    ``data_service``: ``"grpc://HOST:PORT"`` of a tf.data service dispatcher (``genrenet data-service``); each
    epoch's training batches (reading, crops, shuffles, augmentation, mixup) are then made by its workers, from
    the decoded audio in ``cache`` (a directory they can read at the same path; the trainer still decodes each
    clip once into it, to count the steps). Every epoch gets the same batches as without the service, but with
    more than one worker they arrive in a varying order: runs are then not bit-identical and ``resume`` does
    not reproduce an uninterrupted run. Validation and fine-tuning epochs stay local (see
    :mod:`genrenet.data_service`).
    """
    default_augment = isinstance(augment, str) and augment == "default"
    aug = Augment.resolve(DEFAULT_AUGMENT if default_augment else augment)
    spec = registry.get_spec(model)
    if mixed_precision not in PRECISIONS:
        raise TrainingError(f"mixed_precision must be one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")
    if lr_schedule is not None and lr_schedule not in LR_SCHEDULES:
        raise TrainingError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
    try:
        data_service = data_service and check_data_service(data_service, strategy=strategy, cache=cache)
    except DataServiceError as e:
        raise TrainingError(str(e)) from None
    try:
        dist = make_strategy(strategy)  # first: multi-worker collectives must be set up before any TF op
    except StrategyError as e:
        raise TrainingError(str(e)) from None
    chief = is_chief(dist)
    out = out or _default_out(model)
    # Only the chief checks the run dir: the others may start after it has begun writing there.
    state = _check_out(out, resume) if chief else (load_state(out) if resume else None)
    with _reproducibility(seed, deterministic):
        return _train(model, spec, data, out, dist=dist, chief=chief, state=state, epochs=epochs,
                      batch_size=batch_size, learning_rate=learning_rate, lr_schedule=lr_schedule, seed=seed,
                      patience=patience, val_fraction=val_fraction, window_seconds=window_seconds,
                      crops_per_clip=crops_per_clip, model_kwargs=model_kwargs, verbose=verbose if chief else 0,
                      evaluate_val=evaluate_val, resume=resume, deterministic=deterministic,
                      mixed_precision=mixed_precision,
                      strategy=strategy, pretrained=pretrained, freeze_backbone=freeze_backbone,
                      fine_tune_epochs=fine_tune_epochs, fine_tune_learning_rate=fine_tune_learning_rate,
                      aug=aug, default_augment=default_augment, cache=cache, data_service=data_service)


def _train(model, spec, data, out, *, dist, chief, state, epochs, batch_size, learning_rate, lr_schedule, seed,
           patience, val_fraction, window_seconds, crops_per_clip, model_kwargs, verbose, evaluate_val, resume,
           deterministic, mixed_precision, strategy, pretrained, freeze_backbone, fine_tune_epochs,
           fine_tune_learning_rate, aug, default_augment, cache, data_service) -> Run:
    dataset = data if isinstance(data, ClipDataset) else load_dataset(data)
    train_clips, val_clips, notes = resolve_splits(dataset, val_fraction, seed)
    notes = dataset.notes + notes
    if data_service:
        notes.append("--data-service: each epoch has the batches it would have locally, in the order the service's "
                     "workers make them (with several workers: not bit-identical, --resume not exact)")
    labels = dataset.labels
    window_seconds = window_seconds or spec.window_seconds
    model_kwargs = dict(model_kwargs or {})
    if pretrained:
        if pretrained not in spec.pretrained:
            raise TrainingError(f"{model} has no pretrained weights {pretrained!r}"
                                f" (available: {', '.join(spec.pretrained) or 'none'})")
        model_kwargs.update(pretrained=pretrained, freeze_backbone=freeze_backbone is not False)
    elif freeze_backbone:
        raise TrainingError("--freeze-backbone needs --pretrained")
    replicas = dist.num_replicas_in_sync
    global_batch = batch_size * replicas
    spec_augment = dict(aug.spec_augment, seed=seed) if aug.spec_augment else None
    with dist.scope(), _precision_policy(mixed_precision), spec_augment_scope(spec_augment):
        net = registry.build_model(model, num_classes=len(labels), window_seconds=window_seconds, **model_kwargs)
        net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                    metrics=["accuracy"])
        net.optimizer.build(net.trainable_variables)  # its state is part of a checkpoint
    if aug.spec_augment and not any(layer.name == "spec_augment" for layer in net.layers):
        raise TrainingError(f"{model} has its own front-end (no spectrogram_input): specaugment cannot be added")
    from . import transfer

    head_only = transfer.backbone_is_frozen(net)
    if epochs is None:
        epochs = HEAD_EPOCHS if head_only else DEFAULT_EPOCHS
    lr_schedule = lr_schedule or (HEAD_LR_SCHEDULE if head_only else DEFAULT_LR_SCHEDULE)
    if head_only and default_augment:
        aug = Augment.resolve(None)  # the head trains on cached features: nothing to augment
    unsupported = [flag for flag, used in (("--resume", resume), ("--strategy", strategy != "default"),
                                           ("--data-service", data_service)) if used]
    if head_only and unsupported:
        raise TrainingError("a frozen pretrained backbone trains its head on cached features: "
                            f"{', '.join(unsupported)} not supported there (the head trains in seconds to minutes)")
    features = spec.features
    window_samples = int(net.input_shape[-1])

    log = SkipLog(dataset.skipped)
    _say(verbose, dataset.summary())
    for n in notes:
        _say(verbose, f"note: {n}")
    _say(verbose, f"training {model} ({net.count_params():,} parameters) on {len(train_clips)} clips, "
                  f"validating on {len(val_clips)} clips; run dir {out}")
    if replicas > 1 or strategy != "default":
        _say(verbose, f"strategy {strategy}: {replicas} replicas, batch {batch_size} per replica, "
                      f"global batch {global_batch}")

    config = {
        "model": model, "model_kwargs": model_kwargs, "num_classes": len(labels),
        "fine_tune_epochs": fine_tune_epochs, "fine_tune_learning_rate": fine_tune_learning_rate,
        "features": features.to_dict(), "window_seconds": window_seconds, "window_samples": window_samples,
        "data": dataset.spec, "seed": seed, "epochs": epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "lr_schedule": lr_schedule, "patience": patience,
        "val_fraction": val_fraction,
        "train_clips": len(train_clips), "val_clips": len(val_clips), "notes": notes, "versions": _versions(),
        "augment": aug.to_dict(), "cache": cache if isinstance(cache, bool) else str(cache),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("genrenet") else None,
        "deterministic": deterministic, "mixed_precision": mixed_precision, "strategy": strategy,
        "replicas": replicas, "global_batch_size": global_batch, "data_service": data_service,
    }
    if chief:
        if resume:
            _check_same_config(out, config)
        write_json(os.path.join(out, "labels.json"), labels)
        write_json(os.path.join(out, "config.json"), config)
    initial_epoch = 0
    if state:
        initial_epoch = epochs if state.get("stop_training") else min(int(state["epoch"]), epochs)
        _say(verbose, f"resuming {out} after epoch {state['epoch']}"
                      + (" (early stopping had ended it)" if state.get("stop_training") else ""))
    elif resume:
        _say(verbose, f"nothing to resume in {out} yet: starting from the first epoch")
    epochs_pipeline = training_epochs if not data_service else functools.partial(
        service_epochs, service=data_service, say=lambda text: _say(verbose, text))
    try:
        train_ds, steps = epochs_pipeline(train_clips, labels, sample_rate=features.sample_rate,
                                          window_samples=window_samples, batch_size=global_batch, seed=seed,
                                          initial_epoch=initial_epoch, epochs=epochs, crops_per_clip=crops_per_clip,
                                          log=log, drop_remainder=strategy != "default", augment=aug,
                                          cache=cache)
    except ValueError as e:
        rows = log.to_rows()
        if chief and rows:
            _write_skips(os.path.join(out, "skipped.tsv"), rows)
        for line in log.summary():
            _say(verbose, line)
        where = os.path.join(out, "skipped.tsv")
        detail = f" ({len(log.skipped)} skipped in total; reasons in {where})" if rows else ""
        raise TrainingError(f"{e}{detail}") from None
    val_ds = (validation_dataset(val_clips, labels, sample_rate=features.sample_rate, window_samples=window_samples,
                                 batch_size=global_batch, log=log, cache=cache) if val_clips else None)
    if strategy != "default":
        train_ds = shard_by_data(train_ds)
        val_ds = shard_by_data(val_ds) if val_ds is not None else None
    monitor = "val_loss" if val_ds is not None else "loss"
    early_stopping = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)
    checkpoint = EpochCheckpoint(out, early_stopping, state=state, write=chief,
                                 extra={"steps_per_epoch": steps})
    callbacks = [early_stopping, checkpoint]
    if lr_schedule == "cosine":
        callbacks.insert(0, keras.callbacks.LearningRateScheduler(cosine_learning_rate(learning_rate, epochs)))
    if isinstance(dist, tf.distribute.MultiWorkerMirroredStrategy):
        callbacks.insert(0, sync_non_trainable_callback(dist, steps))
    if chief:
        callbacks.append(_SkipReport(log, os.path.join(out, "skipped.tsv"), verbose))
    if head_only:
        transfer.fit_head(net, train_clips, val_clips, labels, sample_rate=features.sample_rate,
                          window_samples=window_samples, batch_size=batch_size, epochs=epochs,
                          learning_rate=learning_rate, callbacks=callbacks, verbose=verbose, log=log)
    else:
        with keras_workarounds(net, dist, zero_batch(train_ds, batch_size)):
            net.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch,
                    steps_per_epoch=steps, callbacks=callbacks, verbose=verbose)
    if fine_tune_epochs:
        checkpoint = _fine_tune(net, checkpoint, train_clips, labels, val_ds, out, chief=chief, dist=dist,
                                epochs=fine_tune_epochs, learning_rate=fine_tune_learning_rate, monitor=monitor,
                                patience=patience, sample_rate=features.sample_rate, window_samples=window_samples,
                                batch_size=global_batch, seed=seed, crops_per_clip=crops_per_clip, log=log,
                                verbose=verbose)
    for line in log.summary():
        _say(verbose, line)

    history = checkpoint.history
    losses = [row[monitor] for row in history if monitor in row]
    metrics = {"best_epoch": int(np.argmin(losses)) + 1 if losses else None, "epochs_run": len(history),
               "skipped_files": len(log.skipped), "padded_clips": len(log.padded)}
    if history:
        for key, value in history[-1].items():
            if key != "epoch":
                metrics[f"final_{key}"] = float(value)
    if not chief:  # the chief writes the run; the other workers are done
        return None
    if val_clips and evaluate_val:
        from .evaluation import evaluate_clips

        val_metrics = evaluate_clips(net, labels, val_clips, sample_rate=features.sample_rate,
                                     window_samples=window_samples, batch_size=batch_size, verbose=0)
        metrics.update({f"val_{k}": val_metrics[k] for k in ("clip_accuracy", "macro_f1", "window_accuracy",
                                                             "num_clips")})
        _say(verbose, f"validation: clip accuracy {val_metrics['clip_accuracy']:.3f}, "
                      f"macro-F1 {val_metrics['macro_f1']:.3f} on {val_metrics['num_clips']} clips")
    write_history_csv(os.path.join(out, "history.csv"), history)
    write_json(os.path.join(out, "metrics.json"), metrics)
    with atomic_path(os.path.join(out, "model.keras")) as tmp:  # last: model.keras marks the run finished
        net.save(tmp)
    shutil.rmtree(os.path.join(out, CHECKPOINT_DIR), ignore_errors=True)
    return Run(out)


def _fine_tune(net, checkpoint, train_clips, labels, val_ds, out, *, chief, dist, epochs, learning_rate, monitor,
               patience, sample_rate, window_samples, batch_size, seed, crops_per_clip, log, verbose):
    """Second phase of transfer learning: everything but BatchNorm trains at a low learning rate, continuing
    the epoch count and history of the first phase. Returns the checkpoint callback that holds the history."""
    _say(verbose, f"fine-tuning the whole model for up to {epochs} epochs at learning rate {learning_rate}")
    from . import transfer

    done = len(checkpoint.history)
    transfer.unfreeze(net)
    with dist.scope():
        net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                    metrics=["accuracy"])
    train_ds, steps = training_epochs(train_clips, labels, sample_rate=sample_rate, window_samples=window_samples,
                                      batch_size=batch_size, seed=seed, initial_epoch=done, epochs=done + epochs,
                                      crops_per_clip=crops_per_clip, log=log)
    early_stopping = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)
    tuned = EpochCheckpoint(out, early_stopping, write=chief, extra={"steps_per_epoch": steps})
    tuned.history = list(checkpoint.history)
    net.fit(train_ds, validation_data=val_ds, epochs=done + epochs, initial_epoch=done, steps_per_epoch=steps,
            callbacks=[early_stopping, tuned], verbose=verbose)
    return tuned


def _say(verbose, text):
    if verbose:
        print(text, flush=True)
