"""Multi-label (tagging) results: exact ranking metrics, per-tag rows and per-tag thresholds.

A tagger scores every tag independently; whether a tag is *on* depends on a threshold per tag. Thresholds are
tuned on held-out clips (the validation clips of a run) to the score that maximises each tag's F1, saved as
``thresholds.json`` beside the model, and a tag passes when its probability is at least its threshold. The ranking
metrics (ROC-AUC, PR-AUC = average precision) need no threshold; they are scikit-learn's, computed exactly on the
clip-level probabilities.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Optional

import numpy as np

from ..run import atomic_path, write_json

THRESHOLDS_FILE = "thresholds.json"
PER_TAG_FILE = "per_tag.csv"
DEFAULT_THRESHOLD = 0.5
TUNED_METHOD = "max F1 per tag on the validation clips"


def tag_targets(clips, labels) -> np.ndarray:
    """[N, C] 0/1 truth of ``clips``: 1 for each of a clip's labels that is among ``labels`` (others are ignored)."""
    index = {name: i for i, name in enumerate(labels)}
    truth = np.zeros((len(clips), len(labels)), np.int64)
    for row, clip in enumerate(clips):
        truth[row, [index[l] for l in clip.all_labels if l in index]] = 1
    return truth


def rankable(truth: np.ndarray) -> np.ndarray:
    """Indices of the tags whose ROC-AUC is defined: at least one positive and one negative clip."""
    positives = truth.sum(0)
    return np.flatnonzero((positives > 0) & (positives < truth.shape[0]))


def tag_metrics(truth, scores, labels, thresholds=None) -> dict:
    """Macro and micro ROC-AUC and PR-AUC (scikit-learn, exact), and precision, recall and F1 at ``thresholds``
    (default 0.5 each), of clip-level ``scores`` [N, C] against 0/1 ``truth``. Macro averages run over the tags
    with both positive and negative clips (``tags_ranked``); the others are named in ``tags_unranked``."""
    from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support, roc_auc_score

    truth, scores = np.asarray(truth), np.nan_to_num(np.asarray(scores, dtype=np.float64))
    thresholds = np.full(len(labels), DEFAULT_THRESHOLD) if thresholds is None else np.asarray(thresholds)
    ranked = rankable(truth)
    flat_ok = 0 < truth.sum() < truth.size
    predicted = (scores >= thresholds[None, :]).astype(np.int64)
    p, r, f, support = precision_recall_fscore_support(truth, predicted, average=None, zero_division=0)
    metrics = {
        "roc_auc_macro": _score(roc_auc_score, truth[:, ranked], scores[:, ranked], "macro") if len(ranked) else None,
        "pr_auc_macro": (_score(average_precision_score, truth[:, ranked], scores[:, ranked], "macro")
                         if len(ranked) else None),
        "roc_auc_micro": _score(roc_auc_score, truth, scores, "micro") if flat_ok else None,
        "pr_auc_micro": _score(average_precision_score, truth, scores, "micro") if flat_ok else None,
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
        "num_clips": int(truth.shape[0]), "labels": list(labels),
        "tags_ranked": len(ranked), "tags_unranked": [labels[i] for i in range(len(labels)) if i not in set(ranked)],
        "per_tag": {},
    }
    for i, tag in enumerate(labels):
        row = {"support": int(support[i]), "roc_auc": None, "pr_auc": None, "threshold": float(thresholds[i]),
               "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i])}
        if i in set(ranked):
            row["roc_auc"] = float(roc_auc_score(truth[:, i], scores[:, i]))
            row["pr_auc"] = float(average_precision_score(truth[:, i], scores[:, i]))
        metrics["per_tag"][tag] = row
    return metrics


def _score(fn, truth, scores, average) -> float:
    return float(fn(truth, scores, average=average))


def write_per_tag(path: str, metrics: dict):
    """``per_tag.csv``: one row per tag with its support (positive clips), ROC-AUC, PR-AUC (empty when undefined),
    threshold, and precision, recall and F1 at that threshold."""
    columns = ["support", "roc_auc", "pr_auc", "threshold", "precision", "recall", "f1"]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["tag"] + columns)
            for tag, row in metrics["per_tag"].items():
                w.writerow([tag] + ["" if row[c] is None else row[c] for c in columns])


def best_f1_threshold(truth: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """The score at which predicting ``score >= threshold`` gives the highest F1 on these clips (the highest such
    score among ties, so fewer false alarms), or None when the clips have no positive."""
    if not truth.sum():
        return None
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(truth[order])
    cut = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # last index of each distinct score
    f1 = 2 * hits[cut] / (cut + 1 + truth.sum())
    return float(ranked[cut[int(np.argmax(f1))]])


def tune_thresholds(truth, scores, labels) -> dict:
    """Per-tag thresholds maximising F1 on clip-level ``scores`` of held-out clips: the contents of
    ``thresholds.json``. A tag without a positive clip there keeps :data:`DEFAULT_THRESHOLD` and is listed under
    ``untuned``."""
    truth, scores = np.asarray(truth), np.nan_to_num(np.asarray(scores, dtype=np.float64))
    chosen = [best_f1_threshold(truth[:, i], scores[:, i]) for i in range(len(labels))]
    return {"labels": list(labels),
            "thresholds": [DEFAULT_THRESHOLD if t is None else t for t in chosen],
            "method": TUNED_METHOD, "clips": int(truth.shape[0]),
            "untuned": [labels[i] for i, t in enumerate(chosen) if t is None],
            "rule": "a tag is on when its probability >= its threshold"}


def default_thresholds(labels, reason: str) -> dict:
    """``thresholds.json`` with :data:`DEFAULT_THRESHOLD` for every tag, saying why none were tuned."""
    return {"labels": list(labels), "thresholds": [DEFAULT_THRESHOLD] * len(labels), "method": f"default: {reason}",
            "clips": 0, "untuned": list(labels), "rule": "a tag is on when its probability >= its threshold"}


def save_thresholds(folder: str, thresholds: dict) -> str:
    """Write ``thresholds.json`` into ``folder`` (atomically); returns its path."""
    path = os.path.join(folder, THRESHOLDS_FILE)
    write_json(path, thresholds)
    return path


def read_thresholds(folder: str, labels) -> Optional[list]:
    """The per-tag thresholds of ``folder/thresholds.json`` in the order of ``labels``, or None when there is no
    such file. A file for other labels raises ``ValueError`` naming it."""
    path = os.path.join(folder, THRESHOLDS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return thresholds_for(data, labels, path)


def thresholds_for(data: dict, labels, where: str) -> list:
    """``data["thresholds"]`` reordered to ``labels``; ``ValueError`` when its labels are not the model's."""
    given = dict(zip(data.get("labels", []), data.get("thresholds", [])))
    if set(given) != set(labels) or len(data.get("thresholds", [])) != len(labels):
        raise ValueError(f"{where}: its labels are not the model's ({len(given)} given for {len(labels)} tags)")
    return [float(given[l]) for l in labels]


def passing_tags(probs, labels, thresholds) -> list:
    """``[[tag, p], ...]`` of the tags whose probability is at least their threshold, highest first."""
    probs = np.asarray(probs)
    on = [i for i in np.argsort(-probs, kind="stable") if probs[i] >= thresholds[i]]
    return [[labels[i], float(probs[i])] for i in on]


def tag_scores(forward, labels, clips, *, log=None, progress=None, **window_options) -> tuple:
    """``(truth [n, C], scores [n, C])`` of the ``clips`` that decode: a clip's score is the mean of its windows'
    probabilities (:func:`~genrenet.infer.windows.clip_outputs`); clips that do not decode are left out (``log``
    says why)."""
    from .windows import clip_outputs

    out = clip_outputs(forward, clips, num_outputs=len(labels), log=log, progress=progress, **window_options)
    ok = out.counts > 0
    return tag_targets([c for c, good in zip(clips, ok) if good], labels), out.mean[ok]


def evaluate_tags(clf, clips, out: str, *, log, batch_size: int, hop_samples=None, verbose: int = 1) -> dict:
    """Evaluate a tagger (a multi-label :class:`~genrenet.infer.Classifier`) on ``clips``: :func:`tag_metrics` at
    the model's own thresholds (0.5 each when it has none), written with ``predictions.csv`` and
    ``per_tag.csv`` into ``out``. Returns the metrics (without ``metrics.json``: the caller adds its context)."""
    from .windows import Progress, clip_outputs

    progress = Progress(len(clips), enabled=bool(verbose), label="inference", unit="clips")
    result = clip_outputs(clf.forward_for(len(clips)), clips, num_outputs=len(clf.labels), log=log,
                          progress=progress, sample_rate=clf.sample_rate, window_samples=clf.window_samples,
                          hop_samples=hop_samples, batch_size=batch_size)
    progress.close()
    ok = result.counts > 0
    labels = list(clf.labels)
    thresholds = clf.thresholds or [DEFAULT_THRESHOLD] * len(labels)
    metrics = tag_metrics(tag_targets([c for c, good in zip(clips, ok) if good], labels), result.mean[ok], labels,
                          thresholds)
    metrics["thresholds"] = "the model's per-tag thresholds" if clf.thresholds else "0.5 for every tag (the model " \
                                                                                    "has no thresholds)"
    metrics["skipped_files"] = int((~ok).sum())
    write_tag_predictions(os.path.join(out, "predictions.csv"), clips, labels, result.mean, result.counts,
                          thresholds)
    write_per_tag(os.path.join(out, PER_TAG_FILE), metrics)
    return metrics


def write_tag_predictions(path: str, clips, labels, scores, counts, thresholds):
    """``predictions.csv`` of a tagger: per clip its id, path, true tags and predicted tags (``|``-separated, the
    predicted ones highest first), windows and every tag's probability (empty for a clip that did not decode)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
            w = csv.writer(f)
            w.writerow(["clip", "path", "labels", "predicted", "windows"] + [f"p_{l}" for l in labels])
            for clip, probs, n in zip(clips, scores, counts):
                tags = [t for t, _ in passing_tags(probs, labels, thresholds)] if n else []
                w.writerow([clip.id, clip.path or "", "|".join(clip.all_labels), "|".join(tags), int(n)]
                           + ([f"{p:.6f}" for p in probs] if n else [""] * len(labels)))
