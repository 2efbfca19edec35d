"""Calibrated probabilities: applying a run's temperature, and measuring how far probabilities are from the
frequencies they claim.

A model's window probabilities ``p`` are tempered as ``softmax(log p / T)``: the same as dividing the logits by
``T`` (``log p`` differs from the logits by a constant per row), so it applies to any softmax model, Keras,
SavedModel or TFLite, and in a graph as well as on NumPy arrays. ``T > 1`` softens over-confident
probabilities, ``T < 1`` sharpens under-confident ones; the arg-max never changes. A clip is still the mean of
its (tempered) windows. The temperature is fitted on held-out clips by :mod:`genrenet.training.calibration` and
stored in the run's ``calibration.json``.
"""
from __future__ import annotations

import numpy as np

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error and the reliability diagram
# Without a threshold chosen on held-out clips, a prediction is uncertain when its top probability is below this.
DEFAULT_MIN_CONFIDENCE = 0.5
PROBABILITY_FLOOR = 1e-12  # log(0) guard: a probability of exactly 0 stays (numerically) 0 after tempering


def temper(probs, temperature: float):
    """``softmax(log(probs) / temperature)`` along the last axis: NumPy in, NumPy out; a TF tensor in (eager or
    in a graph), a TF tensor out."""
    if isinstance(probs, np.ndarray) or np.isscalar(probs) or isinstance(probs, (list, tuple)):
        logits = np.log(np.maximum(np.asarray(probs, np.float64), PROBABILITY_FLOOR)) / float(temperature)
        logits -= logits.max(-1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(-1, keepdims=True)
    import tensorflow as tf

    logits = tf.math.log(tf.maximum(probs, PROBABILITY_FLOOR)) / tf.cast(temperature, probs.dtype)
    return tf.nn.softmax(logits, axis=-1)


def tempered_forward(forward, temperature: float):
    """``forward`` (windows → probabilities) with its probabilities tempered; ``forward`` itself at T = 1."""
    if forward is None or float(temperature) == 1.0:
        return forward
    return lambda windows: temper(np.asarray(forward(windows), np.float64), temperature)


def reliability_bins(probs, y_true, bins: int = ECE_BINS) -> dict:
    """Per equal-width bin of top probability: ``count``, mean ``confidence`` and ``accuracy`` (NaN when
    empty)."""
    probs, y_true = np.asarray(probs, np.float64), np.asarray(y_true)
    confidence, predicted = probs.max(1), probs.argmax(1)
    correct = (predicted == y_true).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        return {"count": count, "confidence": np.bincount(which, confidence, bins) / count,
                "accuracy": np.bincount(which, correct, bins) / count}


def calibration_metrics(probs, y_true, bins: int = ECE_BINS) -> dict:
    """``ece`` (expected calibration error over ``bins`` equal-width bins of the top probability: the
    clip-weighted mean gap between confidence and accuracy), ``nll`` (mean negative log-likelihood of the
    true class) and ``brier`` (mean squared error of the probability vector, summed over classes)."""
    probs, y_true = np.asarray(probs, np.float64), np.asarray(y_true, int)
    if not len(y_true):
        return {"ece": None, "nll": None, "brier": None}
    b = reliability_bins(probs, y_true, bins)
    filled = b["count"] > 0
    gaps = np.abs(b["accuracy"][filled] - b["confidence"][filled])
    onehot = np.eye(probs.shape[1])[y_true]
    return {"ece": float((b["count"][filled] * gaps).sum() / len(y_true)),
            "nll": float(-np.log(np.maximum(probs[np.arange(len(y_true)), y_true], PROBABILITY_FLOOR)).mean()),
            "brier": float(((probs - onehot) ** 2).sum(1).mean())}


def plot_reliability(probs, y_true, path, title: str = "Reliability (clips)", bins: int = ECE_BINS):
    """The reliability diagram: accuracy against confidence per bin (the diagonal is perfect calibration), with
    the clips per bin below; saved as PNG atomically."""
    from matplotlib.figure import Figure  # not pyplot: leaves the user's (e.g. notebook) backend alone

    from ..run import atomic_path

    b = reliability_bins(probs, y_true, bins)
    ece = calibration_metrics(probs, y_true, bins)["ece"]
    edges = np.linspace(0, 1, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = Figure(figsize=(5, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    filled = b["count"] > 0
    top.bar(centers[filled], b["accuracy"][filled], width=1 / bins, edgecolor="black", alpha=0.7,
            label="accuracy")
    top.plot(b["confidence"][filled], b["accuracy"][filled], "o", color="C3", label="mean confidence")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(f"{title}\nECE {ece:.3f} ({bins} bins)" if ece is not None else title)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centers, b["count"], width=1 / bins, edgecolor="black", color="C0")
    bottom.set_xlabel("top probability (confidence)")
    bottom.set_ylabel("clips")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
