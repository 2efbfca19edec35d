"""``train``: a model name, a dataset and a :class:`TrainConfig` → a run directory with the best model.

The trainer is a few short steps: check the settings and the run directory, prepare the data (splits), build
the model, fit, fine-tune (optional), finish (validation metrics, ``history.csv``, ``metrics.json``, and
``model.keras`` last). Every phase gets its batches from the same pipeline code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import os
import platform
import shutil
import sys
import tempfile
import warnings
from importlib.metadata import version as package_version
from typing import Optional, Union

import keras
import numpy as np
import tensorflow as tf

from .. import registry
from ..data import ClipDataset, SkipLog, kfold, load_dataset
from ..data.augment import Augment
from ..data.cache import CachePolicy
from ..data.decoding import trainable_clips
from ..data.sources.tfrecord import prepared_clips
from ..data.service import check as check_data_service, training_epochs as service_epochs
from ..data.training import TrainingSpec, label_targets, training_epochs, validation_dataset
from ..errors import ConfigError, DatasetError
from ..infer.evaluate import evaluate_clips
from ..infer.multilabel import THRESHOLDS_FILE, default_thresholds, tag_metrics, tag_scores, tune_thresholds
from ..infer.windows import model_forward
from ..keras_compat import keras_workarounds, op_determinism
from ..registry import ModelSpec
from ..run import CALIBRATION_FILE, LOGS_DIR, Run, RunWriter, run_lock
from ..run.split import SPLIT_FILE, split_record
from ..run.card import CARD_FILE, model_card
from . import calibration, transfer
from ..infer.calibration import calibration_metrics
from .checkpoint import (CHECKPOINT_DIR, EpochCheckpoint, check_run_dir, check_same_config, load_state,
                         run_dir_and_resume)
from .config import TrainConfig
from .objective import balanced_pos_weight
from ..run.config import FORMAT
from .distribute import (is_chief, make_strategy, reads_record_shards, shard_by_data, shard_by_file,
                         sync_non_trainable_callback, zero_batch)
from .splits import resolve_splits

# Our datasets end when the epoch's crops run out (their length is only known after decoding); Keras warns.
warnings.filterwarnings("ignore", message="Your input ran out of data")
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed, but will be ignored")


def cosine_learning_rate(learning_rate: float, epochs: int):
    """Epoch → learning rate, decaying from ``learning_rate`` to ~0 over ``epochs`` (half a cosine). A pure
    function of the epoch, so a resumed run gets the same rates as an uninterrupted one."""
    return lambda epoch, lr=None: float(learning_rate * 0.5 * (1.0 + np.cos(np.pi * epoch / max(1, epochs))))


@dataclasses.dataclass
class _Session:
    """What every step of one training run needs: the model's spec, the resolved settings, where it writes."""

    spec: ModelSpec
    cfg: TrainConfig
    out: str
    dist: tf.distribute.Strategy
    chief: bool
    state: Optional[dict]
    resume: bool
    verbose: int
    log: SkipLog = dataclasses.field(default_factory=SkipLog)
    out_of_fold: Optional[dict] = None  # a frozen head's out-of-fold predictions, when it had no validation clips

    @property
    def writer(self) -> RunWriter:
        return RunWriter(self.out)

    @property
    def global_batch(self) -> int:
        return self.cfg.batch_size * self.dist.num_replicas_in_sync

    @property
    def keras_verbose(self) -> int:
        """Keras' progress bars (verbose 1) redraw their line with terminal codes: on a terminal or in a notebook
        only; anywhere else (a log file, CI) one line per epoch (verbose 2)."""
        if self.verbose == 1 and not (sys.stdout.isatty() or "ipykernel" in sys.modules):
            return 2
        return self.verbose

    def say(self, text: str):
        if self.verbose:
            print(text, flush=True)


@dataclasses.dataclass
class _Data:
    """The dataset and its training and validation clips."""

    dataset: ClipDataset
    train_clips: list
    val_clips: list
    notes: list

    @property
    def labels(self) -> list:
        return self.dataset.labels


def train(model: str, data="synthetic", out: Optional[str] = None, *, config: Optional[TrainConfig] = None,
          resume: Union[bool, str] = False, verbose: int = 1, **fields) -> Optional[Run]:
    """Train ``model`` (a registered name) on ``data`` (a spec or a :class:`~genrenet.data.ClipDataset`) into
    ``out`` (default ``runs/<model>-<time>``). Returns the :class:`~genrenet.run.Run` (``None`` on the
    non-chief workers of a multi-worker run).

    The settings are a :class:`TrainConfig` (``config``), overridden by keyword ``fields``:
    ``train("cnn", data, epochs=30, seed=0)``. Their defaults are what was measured best on real music: from
    scratch 60 epochs, a cosine-decayed learning rate, pitch shift and mixup; for the head of a frozen pretrained
    backbone (``pretrained="msd"``) 30 epochs at a constant rate, trained on cached backbone features. Early stopping
    keeps the best epoch's weights. ``config.json`` records every resolved setting, so ``genrenet train
    --config RUN/config.json`` trains the same run again.

    Every epoch end leaves a checkpoint in ``out/checkpoint``: ``resume=True`` continues an interrupted run
    ``out`` from its last completed epoch with the same results as an uninterrupted one (``resume="RUN"`` names
    the run directory itself). Errors keep their class: a bad setting raises :class:`ConfigError` (its
    ``param`` names it), bad data :class:`DatasetError`, before anything is written. TensorBoard events go to
    ``out/logs``, the model card to ``out/README.md``. ``verbose``: 0 silent, 1 Keras progress bars on a
    terminal or in a notebook (one line per epoch elsewhere), 2 one line per epoch.
    """
    cfg = (config or TrainConfig()).replace(**fields).check()
    spec = registry.get_spec(model)
    registry.check_hyperparameters(model, cfg.model_kwargs)
    default_out = os.path.join("runs", f"{model}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    out, resume = run_dir_and_resume(out, resume, default_out)
    if cfg.pretrained and cfg.pretrained not in spec.pretrained:
        raise ConfigError(f"{model} has no pretrained weights {cfg.pretrained!r}"
                          f" (available: {', '.join(spec.pretrained) or 'none'})", param="pretrained")
    if cfg.head_only and resume:
        raise ConfigError("not supported for a frozen pretrained backbone: its head trains on cached features in "
                          "seconds to minutes", param="resume")
    cfg = cfg.resolved()
    if cfg.data_service:
        cfg.data_service = check_data_service(cfg.data_service, strategy=cfg.strategy, cache=cfg.cache)
    dist = make_strategy(cfg.strategy)  # first: multi-worker collectives must be set up before any TF op
    chief = is_chief(dist)
    # Only the chief locks and checks the run dir: the others may start after it has begun writing there.
    with run_lock(out) if chief else contextlib.nullcontext():
        state = check_run_dir(out, resume) if chief else (load_state(out) if resume else None)
        session = _Session(spec, cfg, out, dist, chief, state, resume, verbose if chief else 0)
        with _reproducibility(cfg.seed, cfg.deterministic):
            return _run(session, data)


def _run(s: _Session, data) -> Optional[Run]:
    """The steps of one run, in order."""
    d = _prepare(s, data)
    net = _build(s, d)
    config = _run_config(s, d, net)
    if s.chief:
        if s.resume:
            check_same_config(s.out, config)
        s.writer.json("labels.json", d.labels)
        s.writer.json(SPLIT_FILE, split_record(d.dataset.spec, d.train_clips, d.val_clips))
        s.writer.json("config.json", config)
        _save_skips(s)  # what the dataset skipped and ignored is on disk from the start
    checkpoint = _fit(s, d, net)
    if s.cfg.fine_tune_epochs:
        checkpoint = _fine_tune(s, d, net, checkpoint)
    for line in s.log.summary():
        s.say(line)
    return _finish(s, d, net, checkpoint.history, config) if s.chief else None


def _prepare(s: _Session, data) -> _Data:
    """Load the dataset, make the splits, say what will happen."""
    dataset = data if isinstance(data, ClipDataset) else load_dataset(data)
    s.log = SkipLog(dataset.skipped, dataset.ignored)
    s.cfg = s.cfg.replace(multi_label=resolve_multi_label(s.cfg, dataset))
    train_clips, val_clips, notes = resolve_splits(dataset, s.cfg.val_fraction, s.cfg.seed)
    s.cfg = s.cfg.with_patience(bool(val_clips))
    notes = dataset.notes + notes
    if not s.cfg.head_only or s.cfg.fine_tune_epochs:  # a frozen backbone's head alone trains on features
        cache, cache_note = CachePolicy.of(s.cfg.cache).resolve(
            train_clips + val_clips, s.spec.features.sample_rate, memory_budget=s.cfg.memory_budget)
        s.cfg = s.cfg.replace(cache=cache)  # resolved once: every pipeline and config.json use this policy
        notes += [cache_note] if cache_note else []
    dataset, train_clips, val_clips, dropped = _trainable(s, dataset, train_clips, val_clips)
    notes += dropped
    if s.cfg.data_service:
        notes.append("data_service: each epoch has the batches it would have locally, in the order the service's "
                     "workers make them (with several workers: not bit-identical, resuming not exact)")
    s.say(dataset.summary())
    for n in notes:
        s.say(f"note: {n}")
    return _Data(dataset, train_clips, val_clips, notes)


def resolve_multi_label(cfg: TrainConfig, dataset: ClipDataset) -> bool:
    """Whether the run trains tags (sigmoids, binary cross-entropy): as set, else when a clip carries several
    labels. Settings that contradict the data raise :class:`ConfigError` before anything is built."""
    multi = dataset.multi_label if cfg.multi_label is None else cfg.multi_label
    if not multi and dataset.multi_label:
        raise ConfigError(f"{dataset.spec} has clips with several labels: it trains a multi-label model only",
                          param="multi_label")
    if multi and cfg.head == "logistic":
        raise ConfigError("the logistic head picks one class per clip; multi-label heads train with keras",
                          param="head")
    if not multi and cfg.pos_weight != "none":
        raise ConfigError(f"weights the positives of each tag, but {dataset.spec} has one label per clip (set "
                          "multi_label to train tags anyway)", param="pos_weight")
    return multi


def _trainable(s: _Session, dataset: ClipDataset, train_clips: list, val_clips: list) -> tuple:
    """``(dataset, train clips, validation clips, notes)`` without the clips that do not decode to at least a
    second of usable audio, and without the classes left with no training clip (a model would claim a class it
    never saw). Fewer than two classes left is a :class:`DatasetError`."""
    if reads_record_shards(train_clips):  # prepared shards hold audio decoded and checked by `genrenet prepare`
        check = functools.partial(prepared_clips, log=s.log)
    else:
        check = functools.partial(trainable_clips, sample_rate=s.spec.features.sample_rate, log=s.log,
                                  cache=s.cfg.cache)
    train_clips, val_clips = check(train_clips), check(val_clips)
    kept = [label for label in dataset.labels if any(label in c.all_labels for c in train_clips)]
    if len(kept) < 2:
        raise DatasetError(f"{dataset.spec}: no usable training audio in at least two classes after decoding "
                           f"(classes with usable clips: {', '.join(kept) or 'none'}); {s.log.brief()}")
    lost = [label for label in dataset.labels if label not in kept]
    for clip in dataset.clips:
        if not set(clip.all_labels) & set(kept) and clip.name not in s.log.skipped:
            s.log.skip(clip.name, f"its class {clip.label!r} has no usable training clip: left out")
    notes = [f"class {label!r} has no usable training clip after decoding: it is left out" for label in lost]
    if lost:
        keep = functools.partial(only_labels, kept=kept)
        dataset = dataclasses.replace(dataset, labels=kept, clips=keep(dataset.clips))
        train_clips, val_clips = keep(train_clips), keep(val_clips)
    return dataset, train_clips, val_clips, notes


def only_labels(clips: list, kept: list) -> list:
    """``clips`` restricted to the labels in ``kept``: a multi-label clip loses its other tags, a clip left with
    none of them is left out."""
    out = []
    for clip in clips:
        tags = tuple(l for l in clip.all_labels if l in kept)
        if tags:
            out.append(clip if tags == clip.all_labels else
                       dataclasses.replace(clip, label=tags[0], tags=tags if clip.tags else ()))
    return out


def _build(s: _Session, d: _Data) -> keras.Model:
    """The compiled model (under the strategy and precision policy), its optimizer built for checkpoints."""
    cfg = s.cfg
    aug = Augment.resolve(cfg.augment)
    spec_augment = dict(aug.spec_augment, seed=cfg.seed) if aug.spec_augment else None
    kwargs = dict(cfg.model_kwargs)
    if cfg.pretrained:
        kwargs.update(pretrained=cfg.pretrained, freeze_backbone=cfg.freeze_backbone)
    with s.dist.scope(), _precision_policy(cfg.mixed_precision):
        net = registry.build_model(s.spec.name, num_classes=len(d.labels), window_seconds=cfg.window_seconds,
                                   spec_augment=spec_augment, multi_label=cfg.multi_label, **kwargs)
        _compile(s, d, net, cfg.learning_rate)
    replicas = s.dist.num_replicas_in_sync
    s.say(f"training {s.spec.name} ({net.count_params():,} parameters) on {len(d.train_clips)} clips, "
          f"validating on {len(d.val_clips)} clips; run dir {s.out}")
    if replicas > 1 or cfg.strategy != "default":
        s.say(f"strategy {cfg.strategy}: {replicas} replicas, batch {cfg.batch_size} per replica, "
              f"global batch {s.global_batch}")
    return net


def _compile(s: _Session, d: _Data, net: keras.Model, learning_rate: float):
    """Compile as every genrenet network trains; the optimizer's state is built now, as it is part of a
    checkpoint."""
    transfer.compile_classifier(net, learning_rate, s.cfg.label_smoothing, multi_label=s.cfg.multi_label,
                                pos_weight=_pos_weight(s, d))
    net.optimizer.build(net.trainable_variables)


def _pos_weight(s: _Session, d: _Data):
    """The per-tag weights of positives (``pos_weight="balanced"``), from the training clips; else None."""
    if s.cfg.pos_weight != "balanced":
        return None
    return balanced_pos_weight(label_targets(d.train_clips, d.labels))


def _run_config(s: _Session, d: _Data, net: keras.Model) -> dict:
    """``config.json`` (:mod:`~genrenet.run.config`): the model with every resolved hyper-parameter,
    the resolved settings, the data, and the facts of this run."""
    cfg = s.cfg
    hyper = {**s.spec.defaults(), **cfg.model_kwargs}
    if cfg.pretrained:
        hyper.update(pretrained=cfg.pretrained, freeze_backbone=cfg.freeze_backbone)
    return {
        "format": FORMAT,
        "model": {"name": s.spec.name, "hyperparameters": hyper, "features": s.spec.features.to_dict(),
                  "window_seconds": cfg.window_seconds or s.spec.window_seconds,
                  "window_samples": int(net.input_shape[-1]), "num_classes": len(d.labels),
                  "multi_label": bool(cfg.multi_label)},
        "training": cfg.to_dict(),
        "data": {"spec": d.dataset.spec, "train_clips": len(d.train_clips), "val_clips": len(d.val_clips),
                 "notes": d.notes},
        "run": {"replicas": s.dist.num_replicas_in_sync, "global_batch_size": s.global_batch,
                "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("genrenet") else None,
                "versions": _versions()},
    }


def _training_batches(s: _Session, d: _Data, window_samples: int, initial_epoch: int, epochs: int):
    """``(dataset, steps_per_epoch)`` of epochs ``initial_epoch .. epochs-1``: local, or from the tf.data
    service; under a multi-replica strategy sharded by data, or for ``tfrecord:`` data under ``multi_worker`` by
    record file (no worker reads another's shards). Every phase of training gets its batches here."""
    cfg = s.cfg
    spec = TrainingSpec(d.labels, s.spec.features.sample_rate, window_samples, batch_size=s.global_batch,
                        seed=cfg.seed, crops_per_clip=cfg.crops_per_clip, augment=cfg.augment,
                        drop_remainder=cfg.strategy != "default", cache=cfg.cache)
    epoch_range = dict(initial_epoch=initial_epoch, epochs=epochs, log=s.log)
    with _no_usable_audio_stops_training(s):
        if cfg.strategy == "multi_worker" and not cfg.data_service and reads_record_shards(d.train_clips):
            return shard_by_file(s.dist, d.train_clips, functools.partial(
                training_epochs, spec=spec.replace(batch_size=cfg.batch_size), **epoch_range), say=s.say)
        if cfg.data_service:
            ds, steps = service_epochs(d.train_clips, spec, service=cfg.data_service, say=s.say, **epoch_range)
        else:
            ds, steps = training_epochs(d.train_clips, spec, **epoch_range)
    return (shard_by_data(ds) if cfg.strategy != "default" else ds), steps


def _validation_batches(s: _Session, d: _Data, window_samples: int):
    """Every window of the validation clips, batched (None without validation clips)."""
    if not d.val_clips:
        return None
    ds = validation_dataset(d.val_clips, d.labels, sample_rate=s.spec.features.sample_rate,
                            window_samples=window_samples, batch_size=s.global_batch, log=s.log, cache=s.cfg.cache)
    return shard_by_data(ds) if s.cfg.strategy != "default" else ds


def _save_skips(s: _Session) -> str:
    """Write ``skipped.tsv`` (the chief) when anything was skipped, ignored or padded; returns its path, or ''.
    The one writer of ``skipped.tsv``: its rows come from the run's :class:`SkipLog`."""
    rows = s.log.to_rows()
    if not rows:
        return ""
    if s.chief:
        s.writer.text("skipped.tsv", "file\treason\n" + "".join(f"{n}\t{r}\n" for n, r in rows))
    return s.writer.file("skipped.tsv")


@contextlib.contextmanager
def _no_usable_audio_stops_training(s: _Session):
    """A :class:`DatasetError` from building the training data (e.g. every training file skipped) also says what
    was skipped and where the reasons are."""
    try:
        yield
    except DatasetError as e:
        raise DatasetError(f"{e.message}{_skip_note(s)}", param=e.param) from None


def _skip_note(s: _Session) -> str:
    """Say what was skipped and write ``skipped.tsv``; returns a note for an error message, or ''."""
    for line in s.log.summary():
        s.say(line)
    path = _save_skips(s)
    return f" ({len(s.log.skipped)} skipped in total; reasons in {path})" if path else ""


def _callbacks(s: _Session, net, *, monitor: str, steps: Optional[int], epochs: int, learning_rate: float,
               state=None, schedule: Optional[str] = None):
    """Early stopping, the epoch checkpoint, the learning-rate schedule, skip reports, replica sync, and on the
    chief TensorBoard (before the checkpoint, so an epoch checkpointed always has its events)."""
    early_stopping = keras.callbacks.EarlyStopping(monitor=monitor, patience=s.cfg.patience,
                                                   restore_best_weights=True)
    checkpoint = EpochCheckpoint(s.out, early_stopping, state=state, write=s.chief, extra={"steps_per_epoch": steps})
    callbacks = [early_stopping, checkpoint]
    if s.chief:
        callbacks.insert(1, tensorboard_callback(s.out))
    if schedule == "cosine":
        callbacks.insert(0, keras.callbacks.LearningRateScheduler(cosine_learning_rate(learning_rate, epochs)))
    if isinstance(s.dist, tf.distribute.MultiWorkerMirroredStrategy):
        callbacks.insert(0, sync_non_trainable_callback(s.dist, steps))
    if s.chief:
        callbacks.append(_SkipReport(s))
    return callbacks, checkpoint


def tensorboard_callback(run_dir: str) -> keras.callbacks.TensorBoard:
    """TensorBoard events under ``RUN/logs/`` (``train/``, ``validation/``): per epoch the losses, accuracies
    and learning rate, and the model's graph. ``tensorboard --logdir runs/`` compares runs."""
    return keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, LOGS_DIR), write_graph=True,
                                       update_freq="epoch", profile_batch=0)


def _fit(s: _Session, d: _Data, net: keras.Model) -> EpochCheckpoint:
    """The main phase: the whole model, or a frozen backbone's head on cached features."""
    cfg = s.cfg
    initial_epoch = 0
    if s.state:
        initial_epoch = cfg.epochs if s.state.get("stop_training") else min(int(s.state["epoch"]), cfg.epochs)
        s.say(f"resuming {s.out} after epoch {s.state['epoch']}"
              + (" (early stopping had ended it)" if s.state.get("stop_training") else ""))
    elif s.resume:
        s.say(f"nothing to resume in {s.out} yet: starting from the first epoch")
    if not cfg.head_only:
        return _fit_phase(s, d, net, first=initial_epoch, last=cfg.epochs, learning_rate=cfg.learning_rate,
                          schedule=cfg.lr_schedule, state=s.state)
    # The head trains on features computed once from every window: no training pipeline to build.
    callbacks, checkpoint = _callbacks(s, net, monitor="val_loss" if d.val_clips else "loss", steps=None,
                                       epochs=cfg.epochs, learning_rate=cfg.learning_rate, state=s.state,
                                       schedule=cfg.lr_schedule)
    with _no_usable_audio_stops_training(s):
        s.out_of_fold = transfer.fit_head(net, d.train_clips, d.val_clips, d.labels, head=cfg.head,
                          sample_rate=s.spec.features.sample_rate, window_samples=int(net.input_shape[-1]),
                          batch_size=cfg.batch_size, epochs=cfg.epochs, learning_rate=cfg.learning_rate,
                          callbacks=callbacks, verbose=s.keras_verbose, log=s.log,
                          label_smoothing=cfg.label_smoothing, multi_label=cfg.multi_label,
                          pos_weight=_pos_weight(s, d))
    return checkpoint


def _fine_tune(s: _Session, d: _Data, net: keras.Model, checkpoint: EpochCheckpoint) -> EpochCheckpoint:
    """Second phase of transfer learning: everything but BatchNorm trains at a low learning rate, on the same
    pipeline as the first phase, continuing its epoch count and history."""
    cfg = s.cfg
    s.say(f"fine-tuning the whole model for up to {cfg.fine_tune_epochs} epochs at learning rate "
          f"{cfg.fine_tune_learning_rate}")
    done = len(checkpoint.history)
    transfer.unfreeze(net)
    with s.dist.scope():
        _compile(s, d, net, cfg.fine_tune_learning_rate)
    return _fit_phase(s, d, net, first=done, last=done + cfg.fine_tune_epochs,
                      learning_rate=cfg.fine_tune_learning_rate, history=checkpoint.history)


def _fit_phase(s: _Session, d: _Data, net: keras.Model, *, first: int, last: int, learning_rate: float,
               schedule: Optional[str] = None, state: Optional[dict] = None, history=None) -> EpochCheckpoint:
    """``fit`` the compiled model for epochs ``first .. last-1`` on the training pipeline; the returned
    checkpoint's history continues ``history`` (an earlier phase's) or the resumed ``state``'s."""
    window_samples = int(net.input_shape[-1])
    train_ds, steps = _training_batches(s, d, window_samples, first, last)
    val_ds = _validation_batches(s, d, window_samples)
    callbacks, checkpoint = _callbacks(s, net, monitor="val_loss" if val_ds is not None else "loss", steps=steps,
                                       epochs=last, learning_rate=learning_rate, state=state, schedule=schedule)
    if history is not None:
        checkpoint.history = list(history)
    with keras_workarounds(net, s.dist, zero_batch(net, len(d.labels), s.cfg.batch_size)):
        net.fit(train_ds, validation_data=val_ds, epochs=last, initial_epoch=first, steps_per_epoch=steps,
                callbacks=callbacks, verbose=s.keras_verbose)
    return checkpoint


def _finish(s: _Session, d: _Data, net: keras.Model, history: list, config: dict) -> Run:
    """Validation metrics, ``history.csv``, ``metrics.json``, the model card ``README.md``, then ``model.keras``
    (the run is finished)."""
    monitor = "val_loss" if any("val_loss" in row for row in history) else "loss"
    losses = [row[monitor] for row in history if monitor in row]
    metrics = {"best_epoch": int(np.argmin(losses)) + 1 if losses else None, "epochs_run": len(history),
               "skipped_files": len(s.log.skipped), "ignored_files": len(s.log.ignored),
               "padded_clips": len(s.log.padded)}
    if history:
        metrics.update({f"final_{k}": float(v) for k, v in history[-1].items() if k != "epoch"})
    if s.cfg.multi_label:
        metrics.update(_tag_thresholds(s, d, net))
    elif d.val_clips and s.cfg.evaluate_val:
        val = evaluate_clips(net, d.labels, d.val_clips, sample_rate=s.spec.features.sample_rate,
                             window_samples=int(net.input_shape[-1]), batch_size=s.cfg.batch_size, verbose=0)
        metrics.update({f"val_{k}": val[k] for k in ("clip_accuracy", "macro_f1", "window_accuracy", "num_clips")})
        s.say(f"validation: clip accuracy {val['clip_accuracy']:.3f}, macro-F1 {val['macro_f1']:.3f} "
              f"on {val['num_clips']} clips")
    writer = s.writer
    fitted = _calibrate(s, d, net, config)
    if fitted:
        writer.json(CALIBRATION_FILE, fitted)
        if d.val_clips:  # the validation row of the card: calibrated, as predict gives them
            metrics.update({f"val_{k}": v for k, v in fitted["after"].items()})
        s.say(f"calibration: temperature {fitted['temperature']:.3f} on {fitted['num_clips']} held-out clips, "
              f"ECE {fitted['before']['ece']:.3f} → {fitted['after']['ece']:.3f}; uncertain below "
              f"{fitted['min_confidence']:.2f}")
    writer.history(history)
    writer.json("metrics.json", metrics)
    writer.text(CARD_FILE, model_card(config, d.labels, metrics, path=s.out, description=s.spec.description,
                                      calibration=fitted))
    run = writer.finish(net)
    shutil.rmtree(os.path.join(s.out, CHECKPOINT_DIR), ignore_errors=True)
    return run


def _tag_thresholds(s: _Session, d: _Data, net: keras.Model) -> dict:
    """``thresholds.json`` (per-tag thresholds tuned for F1 on the validation clips; 0.5 each without any) and the
    validation metrics of a multi-label run (``val_*``; F1 at the thresholds tuned on those same clips)."""
    if not d.val_clips:
        if s.cfg.threshold_folds:
            s.writer.json(THRESHOLDS_FILE, _out_of_fold_thresholds(s, d, s.cfg.threshold_folds))
            return {}
        s.writer.json(THRESHOLDS_FILE, default_thresholds(d.labels, "no validation clips to tune them on"))
        s.say("note: no validation clips: every tag's threshold is 0.5 (hold out clips, e.g. val_fraction, or set "
              "threshold_folds to tune them)")
        return {}
    truth, scores = tag_scores(model_forward(net, len(d.val_clips)), d.labels, d.val_clips,
                               sample_rate=s.spec.features.sample_rate, window_samples=int(net.input_shape[-1]),
                               batch_size=s.cfg.batch_size, log=s.log)
    tuned = tune_thresholds(truth, scores, d.labels)
    s.writer.json(THRESHOLDS_FILE, tuned)
    val = tag_metrics(truth, scores, d.labels, tuned["thresholds"])
    keys = ("roc_auc_macro", "pr_auc_macro", "roc_auc_micro", "pr_auc_micro", "f1_macro", "f1_micro", "num_clips")
    s.say(f"validation: ROC-AUC {val['roc_auc_macro']}, PR-AUC {val['pr_auc_macro']} (macro over "
          f"{val['tags_ranked']} tags) on {val['num_clips']} clips; thresholds in {THRESHOLDS_FILE}")
    return {f"val_{k}": val[k] for k in keys}


def _out_of_fold_thresholds(s: _Session, d: _Data, folds: int) -> dict:
    """Per-tag thresholds tuned on out-of-fold predictions: for each of ``folds`` artist-disjoint folds of the
    training clips, the same model and settings train on the other folds (in a scratch folder of the run,
    removed after) and score that fold; the thresholds maximise F1 over every clip's out-of-fold scores."""
    parts, _ = kfold(d.train_clips, folds, s.cfg.seed)
    s.say(f"tuning the tag thresholds on out-of-fold predictions: {folds} more trainings")
    truth, scores = [], []
    for i, held in enumerate(p for p in parts if p):
        held_ids = {id(c) for c in held}
        fold = dataclasses.replace(d, train_clips=[c for c in d.train_clips if id(c) not in held_ids], val_clips=[])
        scratch = tempfile.mkdtemp(prefix=f".tmp-thresholds-{i}-", dir=s.out)
        try:
            sub = dataclasses.replace(s, out=scratch, state=None, resume=False, verbose=0)
            net = _build(sub, fold)
            _fit(sub, fold, net)
            t, p = tag_scores(model_forward(net, len(held)), d.labels, held, sample_rate=s.spec.features.sample_rate,
                              window_samples=int(net.input_shape[-1]), batch_size=s.cfg.batch_size, log=s.log)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        truth.append(t)
        scores.append(p)
    tuned = tune_thresholds(np.concatenate(truth), np.concatenate(scores), d.labels)
    return dict(tuned, method=f"max F1 per tag on out-of-fold predictions ({folds} folds of the training clips)")


def _calibrate(s: _Session, d: _Data, net: keras.Model, config: dict) -> Optional[dict]:
    """``calibration.json``: the temperature and abstention threshold fitted on the validation clips, or on a
    frozen head's out-of-fold predictions when it trained on every clip (None when there is neither, and for
    multi-label models, whose outputs are not one softmax)."""
    if s.cfg.multi_label:
        return None
    if d.val_clips and s.cfg.evaluate_val and not s.out_of_fold:
        held = calibration.held_out_windows(model_forward(net, len(d.val_clips)), d.val_clips, d.labels,
                                            sample_rate=s.spec.features.sample_rate,
                                            window_samples=int(net.input_shape[-1]), batch_size=s.cfg.batch_size)
        return held and calibration.calibration(*held, fitted_on=f"the {len(d.val_clips)} validation clips")
    if s.out_of_fold and not s.cfg.fine_tune_epochs:
        oof = s.out_of_fold
        fitted_on = (f"out-of-fold predictions of the head on its {len(d.train_clips)} training clips "
                     f"({oof['folds']} {'group-disjoint ' * (oof['by'] == 'group')}folds, {oof['repeats']} "
                     f"shuffles: each clip predicted {oof['repeats']} times)")
        fitted = calibration.calibration(oof["window_probs"], oof["owner"], oof["y_true"], fitted_on=fitted_on)
        crossed = calibration.cross_fitted(oof["window_probs"], oof["owner"], oof["y_true"], oof["clip_fold"])
        return dict(fitted, cross_fitted=calibration_metrics(crossed, oof["y_true"]))
    return None


class _SkipReport(keras.callbacks.Callback):
    """Writes ``skipped.tsv`` after every epoch, so what was skipped survives an interrupted run."""

    def __init__(self, session: _Session):
        super().__init__()
        self.session, self.batches = session, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        _save_skips(self.session)
        if not self.batches:  # every training file failed to decode (silent, NaN, corrupt...)
            raise DatasetError("no usable training audio: all training files were skipped"
                                + _skip_note(self.session))


def _versions() -> dict:
    import librosa

    return {"genrenet": package_version("genrenet"), "tensorflow": tf.__version__, "keras": keras.__version__,
            "librosa": librosa.__version__, "numpy": np.__version__, "python": platform.python_version()}


@contextlib.contextmanager
def _reproducibility(seed: int, deterministic: bool):
    """Seed Python, NumPy and TF; with ``deterministic`` also make TF ops deterministic (restored afterwards)."""
    keras.utils.set_random_seed(seed)
    with op_determinism(deterministic):
        yield


@contextlib.contextmanager
def _precision_policy(mixed_precision: str):
    """Build layers under ``mixed_precision`` (the front-end and the softmax stay float32 by construction)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32" if mixed_precision == "off" else mixed_precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
