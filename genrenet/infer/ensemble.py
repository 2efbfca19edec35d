"""Decision-level ensembles (article §3.5): several trained runs become one Keras model, so one SavedModel.

The ensemble takes the first member's ``waveform`` input; each member sees the same audio (cropped or padded to
its own window) and the ensemble averages their probabilities (``mean``, optionally weighted) or their votes
(``vote``: each member's arg-max as a one-hot, weighted). Members must share labels and sample rate.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import keras

from ..errors import EnsembleError
from ..nn.ensemble import Combine, FitWindow
from ..run import Run, is_run_dir, write_run
from ..run.config import FORMAT


def build_ensemble(runs: Sequence, method: str = "mean", weights: Optional[Sequence[float]] = None):
    """One ``keras.Model`` (``waveform`` → ``probabilities``) over the runs' models. Returns (model, runs)."""
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    if len(runs) < 2:
        raise EnsembleError("an ensemble needs at least two runs")
    if weights is not None and (len(weights) != len(runs) or min(weights) < 0 or sum(weights) <= 0):
        raise EnsembleError(f"weights: {len(runs)} non-negative numbers with a positive sum are needed")
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
        member.name = f"member{i}_{r.model_name}"
        x = waveform if r.window_samples == first.window_samples else FitWindow(
            r.window_samples, name=f"member{i}_window")(waveform)
        outputs.append(member(x))
    probs = Combine(method, weights, name="probabilities")(outputs)
    return keras.Model(waveform, probs, name="ensemble"), runs


def ensemble(runs: Sequence, out: str, *, method: str = "mean", weights: Optional[Sequence[float]] = None,
             verbose: int = 1) -> Run:
    """Write an ensemble run directory ``out`` that evaluates, predicts and exports like any other run."""
    if is_run_dir(out):
        raise EnsembleError(f"{out}: already holds a finished run; choose another run directory")
    model, members = build_ensemble(runs, method, weights)
    first = members[0]
    run = write_run(out, model, labels=first.labels, config={"format": FORMAT, "model": {
        "name": "ensemble", "method": method, "weights": list(weights) if weights else None,
        "members": [{"path": os.path.abspath(r.path), "model": r.model_name} for r in members],
        "features": first.features.to_dict(), "window_seconds": first.config["model"].get("window_seconds"),
        "window_samples": first.window_samples, "num_classes": len(first.labels),
    }})
    if verbose:
        print(f"ensemble of {len(members)} runs ({method}) saved to {out}")
    return run
