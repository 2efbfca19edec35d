"""``train``: data spec + model name → a run directory with the best model and everything needed to use it."""
from __future__ import annotations

import datetime
import os
import platform
import sys
import warnings
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from . import registry
from .data import ClipDataset, SkipLog, holdout_split, load_dataset, training_dataset, validation_dataset
from .data.augment import Augment
from .layers import spec_augment_scope
from .runs import Run, atomic_path, is_run_dir, write_json, write_text


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


def resolve_splits(dataset: ClipDataset, val_fraction: float, seed: int):
    """(train clips, validation clips, notes): the dataset's own split when it has one, else a seeded
    stratified hold-out by clip/group made before windowing."""
    notes = []
    if dataset.has_splits and dataset.split("train"):
        train, val = dataset.split("train"), dataset.split("val")
        if not val:
            train, val, notes = holdout_split(train, val_fraction, seed)
            notes.insert(0, "the dataset has no validation split: holding out part of its training split")
        return train, val, notes
    train, val, notes = holdout_split(dataset.clips, val_fraction, seed)
    return train, val, notes


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
            write_text(self.path, "file\treason\n" + "".join(f"{n}\t{r}\n" for n, r in rows))
        if not self.batches:  # every training file failed to decode (silent, NaN, corrupt...)
            for line in self.log.summary():
                _say(self.verbose, line)
            raise TrainingError(f"no usable training audio: all training files were skipped "
                                f"({len(self.log.skipped)} skipped in total; reasons in {self.path})")


def train(model: str, data="synthetic", out: Optional[str] = None, *, epochs: int = 30, batch_size: int = 32,
          learning_rate: float = 1e-3, seed: int = 0, patience: int = 10, val_fraction: float = 0.2,
          window_seconds: Optional[float] = None, crops_per_clip: Optional[int] = None,
          model_kwargs: Optional[dict] = None, verbose: int = 1, evaluate_val: bool = True,
          augment=None, cache=True) -> Run:
    """Train ``model`` (a registered name) on ``data`` (a spec or a :class:`ClipDataset`) into ``out``.

    Early stopping on the validation loss keeps the best epoch's weights. Returns the :class:`Run`; its
    ``metrics.json`` holds the validation clip accuracy of the kept model.

    ``augment``: training-only augmentation, e.g. ``["gain", "noise", "specaugment", "mixup"]`` or
    ``{"noise": {"snr_db": [10, 20]}}`` (see :mod:`genrenet.data.augment`). ``cache``: ``True`` keeps decoded
    audio in memory, a directory keeps it on disk (datasets larger than memory), ``False`` decodes every epoch.
    """
    aug = Augment.resolve(augment)
    spec = registry.get_spec(model)
    out = out or _default_out(model)
    if is_run_dir(out):
        raise TrainingError(f"{out}: already holds a finished run; choose another --out (nothing was overwritten)")
    keras.utils.set_random_seed(seed)
    dataset = data if isinstance(data, ClipDataset) else load_dataset(data)
    train_clips, val_clips, notes = resolve_splits(dataset, val_fraction, seed)
    notes = dataset.notes + notes
    labels = dataset.labels
    window_seconds = window_seconds or spec.window_seconds
    with spec_augment_scope(dict(aug.spec_augment, seed=seed) if aug.spec_augment else None):
        net = registry.build_model(model, num_classes=len(labels), window_seconds=window_seconds,
                                   **(model_kwargs or {}))
    if aug.spec_augment and not any(layer.name == "spec_augment" for layer in net.layers):
        raise TrainingError(f"{model} has its own front-end (no spectrogram_input): specaugment cannot be added")
    features = spec.features
    window_samples = int(net.input_shape[-1])
    os.makedirs(out, exist_ok=True)

    log = SkipLog(dataset.skipped)
    _say(verbose, dataset.summary())
    for n in notes:
        _say(verbose, f"note: {n}")
    _say(verbose, f"training {model} ({net.count_params():,} parameters) on {len(train_clips)} clips, "
                  f"validating on {len(val_clips)} clips; run dir {out}")

    config = {
        "model": model, "model_kwargs": model_kwargs or {}, "num_classes": len(labels),
        "features": features.to_dict(), "window_seconds": window_seconds, "window_samples": window_samples,
        "data": dataset.spec, "seed": seed, "epochs": epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "patience": patience, "val_fraction": val_fraction,
        "train_clips": len(train_clips), "val_clips": len(val_clips), "notes": notes, "versions": _versions(),
        "augment": aug.to_dict(), "cache": cache if isinstance(cache, bool) else str(cache),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("genrenet") else None,
    }
    write_json(os.path.join(out, "labels.json"), labels)
    train_ds = training_dataset(train_clips, labels, sample_rate=features.sample_rate, window_samples=window_samples,
                                batch_size=batch_size, seed=seed, crops_per_clip=crops_per_clip, log=log,
                                augment=aug, cache=cache)
    val_ds = (validation_dataset(val_clips, labels, sample_rate=features.sample_rate, window_samples=window_samples,
                                 batch_size=batch_size, log=log, cache=cache) if val_clips else None)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                metrics=["accuracy"])
    monitor = "val_loss" if val_ds is not None else "loss"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.CSVLogger(os.path.join(out, "history.csv")),
        _SkipReport(log, os.path.join(out, "skipped.tsv"), verbose),
    ]
    history = net.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose)
    for line in log.summary():
        _say(verbose, line)

    with atomic_path(os.path.join(out, "model.keras")) as tmp:
        net.save(tmp)
    losses = history.history.get(monitor, [])
    metrics = {"best_epoch": int(np.argmin(losses)) + 1 if losses else None, "epochs_run": len(losses),
               "skipped_files": len(log.skipped), "padded_clips": len(log.padded)}
    for key, values in history.history.items():
        if values:
            metrics[f"final_{key}"] = float(values[-1])
    write_json(os.path.join(out, "config.json"), config)
    run = Run(out)
    if val_clips and evaluate_val:
        from .evaluation import evaluate_clips

        val_metrics = evaluate_clips(net, labels, val_clips, sample_rate=features.sample_rate,
                                     window_samples=window_samples, batch_size=batch_size, verbose=0)
        metrics.update({f"val_{k}": val_metrics[k] for k in ("clip_accuracy", "macro_f1", "window_accuracy",
                                                             "num_clips")})
        _say(verbose, f"validation: clip accuracy {val_metrics['clip_accuracy']:.3f}, "
                      f"macro-F1 {val_metrics['macro_f1']:.3f} on {val_metrics['num_clips']} clips")
    write_json(os.path.join(out, "metrics.json"), metrics)
    return run


def _say(verbose, text):
    if verbose:
        print(text, flush=True)
