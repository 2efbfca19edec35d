"""Fitting a run's calibration on held-out clips: the temperature that makes its probabilities mean what they say,
and the confidence below which a prediction is marked uncertain. Both go to the run's ``calibration.json``;
:mod:`genrenet.infer.calibration` applies them.

The held-out clips are the validation split, or out-of-fold predictions when a frozen backbone's head trains on
every clip. The temperature minimises the negative log-likelihood of the clips (each the mean of its tempered
windows, as predict computes it); it never changes which genre wins, only how sure the model says it is.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..infer.calibration import calibration_metrics, temper
from ..infer.windows import window_outputs

TEMPERATURE_RANGE = (0.05, 20.0)
# The threshold is the lowest top probability at and above which held-out predictions were right this often.
TARGET_ACCURACY = 0.9
MIN_CONFIDENCE_RANGE = (0.3, 0.8)


def clip_probabilities(window_probs, owner, num_clips: int, temperature: float = 1.0) -> np.ndarray:
    """Per clip the mean of its windows' probabilities tempered by ``temperature`` (as predict computes it)."""
    tempered = temper(np.asarray(window_probs, np.float64), temperature)
    sums = np.zeros((num_clips, tempered.shape[1]))
    np.add.at(sums, owner, tempered)
    counts = np.bincount(owner, minlength=num_clips)[:, None]
    return sums / np.maximum(counts, 1)


def fit_temperature(window_probs, owner, y_true) -> float:
    """The temperature minimising the clips' negative log-likelihood: a grid over log T, then a golden-section
    refinement around the best grid point."""
    y_true = np.asarray(y_true, int)

    def nll(log_t):
        probs = clip_probabilities(window_probs, owner, len(y_true), float(np.exp(log_t)))
        return calibration_metrics(probs, y_true)["nll"]

    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    grid = np.linspace(lo, hi, 41)
    best = int(np.argmin([nll(g) for g in grid]))
    a, b = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        a, b = (a, d) if nll(c) < nll(d) else (c, b)
    return float(np.exp((a + b) / 2))


def choose_min_confidence(clip_probs, y_true, target: float = TARGET_ACCURACY) -> float:
    """The lowest top probability ``t`` such that held-out clips predicted with at least ``t`` were right at least
    ``target`` of the time, within :data:`MIN_CONFIDENCE_RANGE` (its upper end when no ``t`` reaches it)."""
    clip_probs, y_true = np.asarray(clip_probs), np.asarray(y_true)
    top, right = clip_probs.max(1), clip_probs.argmax(1) == y_true
    lo, hi = MIN_CONFIDENCE_RANGE
    for t in np.sort(np.unique(np.clip(top, lo, hi))):
        kept = top >= t
        if kept.any() and right[kept].mean() >= target:
            return round(float(t), 4)
    return hi


def calibration(window_probs, owner, y_true, *, fitted_on: str) -> dict:
    """What ``calibration.json`` holds: the method, the temperature, the abstention threshold, the held-out
    clips' ECE, NLL and Brier score before and after (``fitted_on`` says which clips), the ECE a perfectly
    calibrated model would show on as many clips (:func:`ece_floor`), and the gap between mean top probability
    and accuracy after."""
    y_true = np.asarray(y_true, int)
    temperature = fit_temperature(window_probs, owner, y_true)
    before = clip_probabilities(window_probs, owner, len(y_true))
    after = clip_probabilities(window_probs, owner, len(y_true), temperature)
    return {"method": "temperature", "temperature": round(temperature, 6),
            "min_confidence": choose_min_confidence(after, y_true), "target_accuracy": TARGET_ACCURACY,
            "fitted_on": fitted_on, "num_clips": int(len(y_true)),
            "before": calibration_metrics(before, y_true), "after": calibration_metrics(after, y_true),
            "ece_floor": round(ece_floor(after), 4),
            "confidence_gap": round(float(abs(after.max(1).mean() - (after.argmax(1) == y_true).mean())), 4)}


def ece_floor(clip_probs, draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model would still show on this many clips with these probabilities: the
    mean ECE when each clip's genre is drawn from its own probabilities (``draws`` times, seeded). On tens of
    clips most bins hold one or two, so even perfect probabilities measure an ECE of about 0.1: compare with
    this, not with 0."""
    clip_probs = np.asarray(clip_probs, np.float64)
    clip_probs = clip_probs / clip_probs.sum(1, keepdims=True)
    rng = np.random.default_rng(seed)
    cumulative = clip_probs.cumsum(1)
    eces = []
    for _ in range(draws):
        drawn = (rng.random((len(clip_probs), 1)) > cumulative).sum(1).clip(0, clip_probs.shape[1] - 1)
        eces.append(calibration_metrics(clip_probs, drawn)["ece"])
    return float(np.mean(eces))


def cross_fitted(window_probs, owner, y_true, clip_fold) -> np.ndarray:
    """Per clip its probabilities tempered by the temperature fitted on the *other* folds' clips (``clip_fold``
    [N]): calibration measured on clips its own fit never saw."""
    window_probs, owner = np.asarray(window_probs), np.asarray(owner)
    y_true, clip_fold = np.asarray(y_true, int), np.asarray(clip_fold)
    out = np.zeros((len(y_true), window_probs.shape[1]))
    for f in np.unique(clip_fold):
        rest = np.flatnonzero(clip_fold != f)
        remap = np.full(len(y_true), -1)
        remap[rest] = np.arange(len(rest))
        rows = remap[owner] >= 0
        t = fit_temperature(window_probs[rows], remap[owner[rows]], y_true[rest])
        out[clip_fold == f] = clip_probabilities(window_probs, owner, len(y_true), t)[clip_fold == f]
    return out


def held_out_windows(forward, clips, labels, *, sample_rate: int, window_samples: int, batch_size: int,
                     log=None) -> Optional[tuple]:
    """``(window_probs [n, C], owner [n], y_true [N])`` of ``clips`` under ``forward`` (owner indexes the clips
    that gave windows), or None when none did."""
    index = {name: i for i, name in enumerate(labels)}
    probs, owners = [], []
    for out, clip_index in window_outputs(forward, clips, sample_rate=sample_rate, window_samples=window_samples,
                                          batch_size=batch_size, log=log, stream=False):
        probs.append(out)
        owners.append(np.asarray(clip_index))
    if not probs:
        return None
    owner = np.concatenate(owners)
    kept, owner = np.unique(owner, return_inverse=True)
    return np.concatenate(probs), owner, np.array([index[clips[i].label] for i in kept])
