"""Decision-level ensembles (article §3.5): several trained runs become one Keras model, so one SavedModel.

The ensemble takes the first member's ``waveform`` input; each member sees the same audio (cropped or padded to
its own window) and the ensemble averages their probabilities (``mean``, optionally weighted) or their votes
(``vote``: each member's arg-max as a one-hot, weighted). Members must share labels and sample rate.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from .runs import Run, is_run_dir, write_json


class EnsembleError(ValueError):
    """Members that cannot be combined (different labels or sample rates, bad weights)."""


@keras.saving.register_keras_serializable(package="genrenet")
class FitWindow(keras.layers.Layer):
    """Crop (centre) or zero-pad a [batch, samples] waveform to ``samples``, so members with other windows fit."""

    def __init__(self, samples: int, **kwargs):
        super().__init__(**kwargs)
        self.samples = int(samples)

    def call(self, x):
        n = tf.shape(x)[1]
        start = tf.maximum(0, (n - self.samples) // 2)
        x = x[:, start:start + self.samples]
        x = tf.pad(x, [[0, 0], [0, tf.maximum(0, self.samples - tf.shape(x)[1])]])
        return tf.ensure_shape(x, [None, self.samples])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.samples)

    def get_config(self):
        return {**super().get_config(), "samples": self.samples}


@keras.saving.register_keras_serializable(package="genrenet")
class Combine(keras.layers.Layer):
    """Weighted mean of member probabilities, or of their one-hot votes."""

    def __init__(self, method: str = "mean", weights: Optional[Sequence[float]] = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if method not in ("mean", "vote"):
            raise EnsembleError(f"method must be 'mean' or 'vote', got {method!r}")
        self.method = method
        self.member_weights = None if weights is None else [float(w) for w in weights]

    def call(self, members):
        probs = tf.stack([tf.cast(p, tf.float32) for p in members], axis=1)  # [batch, members, C]
        if self.method == "vote":
            probs = tf.one_hot(tf.argmax(probs, axis=-1), tf.shape(probs)[-1], dtype=tf.float32)
        w = self.member_weights or [1.0] * len(members)
        w = tf.constant((np.asarray(w) / np.sum(w)).astype(np.float32))[None, :, None]
        return tf.reduce_sum(probs * w, axis=1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "method": self.method, "weights": self.member_weights}


def build_ensemble(runs: Sequence, method: str = "mean", weights: Optional[Sequence[float]] = None):
    """One ``keras.Model`` (``waveform`` → ``probabilities``) over the runs' models. Returns (model, runs)."""
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    if len(runs) < 2:
        raise EnsembleError("an ensemble needs at least two runs")
    if weights is not None and (len(weights) != len(runs) or min(weights) < 0 or sum(weights) <= 0):
        raise EnsembleError(f"--weights needs {len(runs)} non-negative numbers with a positive sum")
    first = runs[0]
    for r in runs[1:]:
        if r.labels != first.labels:
            raise EnsembleError(f"{r.path} has labels {r.labels}, {first.path} has {first.labels}: members must "
                                "be trained on the same classes")
        if r.sample_rate != first.sample_rate:
            raise EnsembleError(f"{r.path} runs at {r.sample_rate} Hz and {first.path} at {first.sample_rate} Hz: "
                                "ensemble members must share one sample rate")
    waveform = keras.Input((first.window_samples,), name="waveform")
    outputs = []
    for i, r in enumerate(runs):
        member = r.load_model()
        member.name = f"member{i}_{r.config.get('model', 'model')}"
        x = waveform if r.window_samples == first.window_samples else FitWindow(
            r.window_samples, name=f"member{i}_window")(waveform)
        outputs.append(member(x))
    probs = Combine(method, weights, name="probabilities")(outputs)
    return keras.Model(waveform, probs, name="ensemble"), runs


def ensemble(runs: Sequence, out: str, *, method: str = "mean", weights: Optional[Sequence[float]] = None,
             verbose: int = 1) -> Run:
    """Write an ensemble run directory ``out`` that evaluates, predicts and exports like any other run."""
    if is_run_dir(out):
        raise EnsembleError(f"{out}: already holds a finished run; choose another --out")
    model, members = build_ensemble(runs, method, weights)
    first = members[0]
    os.makedirs(out, exist_ok=True)
    from .runs import atomic_path

    with atomic_path(os.path.join(out, "model.keras")) as tmp:
        model.save(tmp)
    write_json(os.path.join(out, "labels.json"), first.labels)
    write_json(os.path.join(out, "config.json"), {
        "model": "ensemble", "method": method, "weights": list(weights) if weights else None,
        "members": [{"path": os.path.abspath(r.path), "model": r.config.get("model")} for r in members],
        "features": first.config["features"], "window_seconds": first.config.get("window_seconds"),
        "window_samples": first.window_samples, "num_classes": len(first.labels),
    })
    if verbose:
        print(f"ensemble of {len(members)} runs ({method}) saved to {out}")
    return Run(out)
