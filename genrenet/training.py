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

    def __init__(self, log: SkipLog, path: str):
        super().__init__()
        self.log, self.path = log, path

    def on_epoch_end(self, epoch, logs=None):
        rows = self.log.to_rows()
        if rows:
            write_text(self.path, "file\treason\n" + "".join(f"{n}\t{r}\n" for n, r in rows))


def train(model: str, data="synthetic", out: Optional[str] = None, *, epochs: int = 30, batch_size: int = 32,
          learning_rate: float = 1e-3, seed: int = 0, patience: int = 10, val_fraction: float = 0.2,
          window_seconds: Optional[float] = None, crops_per_clip: Optional[int] = None,
          model_kwargs: Optional[dict] = None, pretrained: Optional[str] = None,
          freeze_backbone: Optional[bool] = None, fine_tune_epochs: int = 0, fine_tune_learning_rate: float = 1e-5,
          verbose: int = 1, evaluate_val: bool = True) -> Run:
    """Train ``model`` (a registered name) on ``data`` (a spec or a :class:`ClipDataset`) into ``out``.

    Early stopping on the validation loss keeps the best epoch's weights. Returns the :class:`Run`; its
    ``metrics.json`` holds the validation clip accuracy of the kept model.

    Transfer learning: ``pretrained`` (e.g. ``"msd"`` for musicnn) loads pretrained weights; the backbone is
    then frozen unless ``freeze_backbone=False``, and the new head trains on cached backbone features (see
    :mod:`genrenet.transfer`). ``fine_tune_epochs`` then trains the whole model at ``fine_tune_learning_rate``.
    """
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
    model_kwargs = dict(model_kwargs or {})
    if pretrained:
        if pretrained not in spec.pretrained:
            raise TrainingError(f"{model} has no pretrained weights {pretrained!r}"
                                f" (available: {', '.join(spec.pretrained) or 'none'})")
        model_kwargs.update(pretrained=pretrained, freeze_backbone=freeze_backbone is not False)
    elif freeze_backbone:
        raise TrainingError("--freeze-backbone needs --pretrained")
    net = registry.build_model(model, num_classes=len(labels), window_seconds=window_seconds, **model_kwargs)
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
        "model": model, "model_kwargs": model_kwargs, "num_classes": len(labels),
        "fine_tune_epochs": fine_tune_epochs, "fine_tune_learning_rate": fine_tune_learning_rate,
        "features": features.to_dict(), "window_seconds": window_seconds, "window_samples": window_samples,
        "data": dataset.spec, "seed": seed, "epochs": epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "patience": patience, "val_fraction": val_fraction,
        "train_clips": len(train_clips), "val_clips": len(val_clips), "notes": notes, "versions": _versions(),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("genrenet") else None,
    }
    write_json(os.path.join(out, "labels.json"), labels)
    train_ds = training_dataset(train_clips, labels, sample_rate=features.sample_rate, window_samples=window_samples,
                                batch_size=batch_size, seed=seed, crops_per_clip=crops_per_clip, log=log)
    val_ds = (validation_dataset(val_clips, labels, sample_rate=features.sample_rate, window_samples=window_samples,
                                 batch_size=batch_size, log=log) if val_clips else None)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                metrics=["accuracy"])
    monitor = "val_loss" if val_ds is not None else "loss"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.CSVLogger(os.path.join(out, "history.csv")),
        _SkipReport(log, os.path.join(out, "skipped.tsv")),
    ]
    from . import transfer

    if transfer.backbone_is_frozen(net):
        history = transfer.fit_head(net, train_clips, val_clips, labels, sample_rate=features.sample_rate,
                                    window_samples=window_samples, batch_size=batch_size, epochs=epochs,
                                    learning_rate=learning_rate, callbacks=callbacks, verbose=verbose, log=log)
    else:
        history = net.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose)
    if fine_tune_epochs:
        _say(verbose, f"fine-tuning the whole model for up to {fine_tune_epochs} epochs at {fine_tune_learning_rate}")
        done = len(history.epoch)
        transfer.unfreeze(net)
        net.compile(optimizer=keras.optimizers.Adam(fine_tune_learning_rate), loss="categorical_crossentropy",
                    metrics=["accuracy"])
        callbacks[0] = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)
        callbacks[1] = keras.callbacks.CSVLogger(os.path.join(out, "history.csv"), append=True)
        tuned = net.fit(train_ds, validation_data=val_ds, initial_epoch=done, epochs=done + fine_tune_epochs,
                        callbacks=callbacks, verbose=verbose)
        for key, values in tuned.history.items():
            history.history.setdefault(key, []).extend(values)
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
