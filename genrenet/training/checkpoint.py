"""Resumable training: an epoch-boundary checkpoint in ``RUN/checkpoint/`` and an atomically written history.

At the end of every epoch :class:`EpochCheckpoint` saves the model's variables (weights, BatchNorm statistics and
the dropout RNG states), the optimizer's variables, the early-stopping state with its best weights, and the
history so far; then it rewrites ``history.csv``. Every file is written under a temporary name and renamed, and
``state.json`` (which names the arrays of the epoch) is renamed last, so a process killed at any moment leaves
the previous epoch's complete checkpoint. ``train(..., resume=True)`` restores all of it before the next epoch;
with the per-epoch data seeds of :func:`genrenet.data.training.training_epochs` the resumed run computes what
the uninterrupted run would have.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import keras
import numpy as np

from ..errors import CheckpointError, ConfigError, TrainingError
from ..run import (CHECKPOINT_DIR, RunWriter, atomic_path, claim_run_dir, is_run_dir, is_started_run, json_default,
                   write_json)
from ..run.config import structured_config

STATE_FILE = "state.json"
# config.json entries (part.key) that may differ when a run is resumed (everything else must match the started
# run; where decoded audio is cached does not change what is computed).
RESUMABLE_CHANGES = ("training.epochs", "run.command", "run.versions", "data.notes", "training.data_service",
                     "training.cache", "training.memory_budget")


def run_dir_and_resume(out, resume, default: str) -> tuple:
    """``(run directory, whether to resume)``: ``resume=True`` continues ``out``, ``resume=RUN`` names the
    run directory itself (``out`` may repeat it); a new run without ``out`` goes to ``default``."""
    if isinstance(resume, (str, os.PathLike)):
        if out and os.path.normpath(out) != os.path.normpath(resume):
            raise ConfigError(f"{os.fspath(resume)} and out {os.fspath(out)} name different run directories",
                              param="resume")
        return os.fspath(resume), True
    if not isinstance(resume, bool):
        raise ConfigError(f"must be True, False or a run directory, got {resume!r}", param="resume")
    if resume and not out:
        raise ConfigError("needs the run directory it continues (name it, or give out)", param="resume")
    return os.fspath(out or default), resume


def load_state(run_dir: str) -> Optional[dict]:
    """The last epoch-boundary state of an unfinished run, or None when it has none."""
    path = os.path.join(run_dir, CHECKPOINT_DIR, STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({e})") from None
    state["dir"] = os.path.dirname(path)
    return state


def _arrays(path: str) -> list:
    with np.load(path) as z:
        return [z[f"a{i}"] for i in range(len(z.files))]


def _save_arrays(path: str, arrays):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{f"a{i}": a for i, a in enumerate(arrays)})


def _assign(variables, arrays, what: str):
    if len(variables) != len(arrays) or any(tuple(v.shape) != a.shape for v, a in zip(variables, arrays)):
        raise CheckpointError(f"the checkpoint's {what} do not match this model (was the run started with other "
                              "hyper-parameters?)")
    for v, a in zip(variables, arrays):
        v.assign(a)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves (``write=True``: this process is the chief) and restores the whole training state at epoch ends.

    Put it after ``early_stopping`` in the callback list: Keras' EarlyStopping resets itself in
    ``on_train_begin``, and this callback restores its state right after.
    """

    def __init__(self, run_dir: str, early_stopping: keras.callbacks.EarlyStopping, *, state: Optional[dict] = None,
                 write: bool = True, extra: Optional[dict] = None):
        super().__init__()
        self.run_dir, self.dir = run_dir, os.path.join(run_dir, CHECKPOINT_DIR)
        self.early_stopping, self.state, self.write, self.extra = early_stopping, state, write, extra or {}
        self.history = list(state["history"]) if state else []
        self._best_file = state.get("best_weights") if state else None
        self._best_saved = None  # the best-weights list object last written

    # ----------------------------------------------------------------------------------------- restore
    def on_train_begin(self, logs=None):
        if not self.state:
            return
        s = self.state
        arrays = _arrays(os.path.join(s["dir"], s["variables"]))
        n_model = s["num_model_variables"]
        _assign(self.model.variables, arrays[:n_model], "model variables")
        _assign(self.model.optimizer.variables, arrays[n_model:], "optimizer variables")
        es, saved = self.early_stopping, s["early_stopping"]
        es.wait, es.best, es.best_epoch, es.stopped_epoch = (saved["wait"], saved["best"], saved["best_epoch"],
                                                            saved["stopped_epoch"])
        if s.get("best_weights"):
            es.best_weights = _arrays(os.path.join(s["dir"], s["best_weights"]))
            self._best_saved = es.best_weights

    # ----------------------------------------------------------------------------------------- save
    def on_epoch_end(self, epoch, logs=None):
        self.history.append({"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()}})
        # Every worker reads the variables (reads may synchronise replicas); only the chief writes.
        arrays = [np.asarray(v.numpy()) for v in self.model.variables]
        n_model = len(arrays)
        arrays += [np.asarray(v.numpy()) for v in self.model.optimizer.variables]
        es = self.early_stopping
        if not self.write:
            return
        os.makedirs(self.dir, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}.npz"
        _save_arrays(os.path.join(self.dir, name), arrays)
        if es.best_weights is not None and es.best_weights is not self._best_saved:
            self._best_file = f"best-{es.best_epoch + 1:04d}.npz"
            _save_arrays(os.path.join(self.dir, self._best_file), es.best_weights)
            self._best_saved = es.best_weights
        state = {
            "epoch": int(epoch) + 1, "variables": name, "num_model_variables": n_model,
            "best_weights": self._best_file,
            "early_stopping": {"wait": int(es.wait), "best": None if es.best is None else float(es.best),
                               "best_epoch": int(es.best_epoch), "stopped_epoch": int(es.stopped_epoch)},
            "stop_training": bool(self.model.stop_training), "history": self.history, **self.extra,
        }
        RunWriter(self.run_dir).history(self.history)  # before the commit point: never behind the checkpoint
        write_json(os.path.join(self.dir, STATE_FILE), state)  # the commit point of this epoch
        for f in os.listdir(self.dir):  # older epochs' arrays are no longer referenced
            if f.endswith(".npz") and f not in (name, self._best_file):
                os.remove(os.path.join(self.dir, f))


def check_run_dir(out: str, resume: bool) -> Optional[dict]:
    """Refuse to overwrite a finished run, or to restart an unfinished one without ``resume``; returns the
    unfinished run's checkpoint state when resuming (None: nothing to resume yet)."""
    if is_run_dir(out):
        if resume:
            raise TrainingError(f"{out}: the run is already finished, nothing to resume; choose another run directory "
                                "for a new run (nothing was overwritten)", param="resume")
        raise TrainingError(f"{out}: already holds a finished run; choose another run directory (nothing was "
                            "overwritten)", param="out")
    claim_run_dir(out, param="resume" if resume else "out")
    started = is_started_run(out)
    if started and not resume:
        raise TrainingError(f"{out} holds an unfinished run: set it to continue from the last completed epoch, or "
                            "choose another run directory (nothing was overwritten)", param="resume")
    return load_state(out) if resume else None


def check_same_config(out: str, config: dict):
    """A resumed run must be the same run: same model, data, seed, batch size, ... (``epochs`` may grow)."""
    path = os.path.join(out, "config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        started = _entries(structured_config(json.load(f)))
    now = _entries(json.loads(json.dumps(config, default=json_default)))
    diff = sorted(k for k in set(started) | set(now) if k not in RESUMABLE_CHANGES and started.get(k) != now.get(k))
    if diff:
        detail = ", ".join(f"{k}: {started.get(k)!r} -> {now.get(k)!r}" for k in diff[:4])
        raise TrainingError(f"{out}: cannot resume with different settings ({detail}); resume with the settings "
                            "the run started with")


def _entries(config: dict) -> dict:
    """``{"part.key": value}`` of a sectioned ``config.json`` (``format`` as itself)."""
    out = {}
    for part, values in config.items():
        if isinstance(values, dict):
            out.update({f"{part}.{k}": v for k, v in values.items()})
        else:
            out[part] = values
    return out
