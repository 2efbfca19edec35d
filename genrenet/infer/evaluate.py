"""``evaluate``: clip-level metrics (a clip is the mean of its windows' probabilities) with their calibration
(ECE, NLL, Brier), predictions, a confusion-matrix plot and a reliability diagram, for any model source
(:class:`~genrenet.infer.Classifier`). For a run or a preset they go to ``RUN/eval-<dataset>-<split>/``, with the
same metrics and plot as TensorBoard events in ``RUN/logs/eval-<dataset>-<split>/`` and the results in the run's
model card ``RUN/README.md``; for an export or a ``.tflite`` file to ``eval-<model>-<dataset>-<split>/`` in the
current folder (or ``out``)."""
from __future__ import annotations

import csv
import os
import re
import shutil
import sys
from typing import Optional

import numpy as np

from ..data import ClipDataset, DatasetError, SkipLog, load_dataset
from ..errors import check_positive, check_whole
from ..data.sources.base import SPLIT_ALIASES
from ..run import LOGS_DIR, Run, atomic_path, staging_dir, write_json
from ..run.card import write_run_card
from ..run.split import RunSplit, read_split
from .calibration import ECE_BINS, calibration_metrics, plot_reliability
from .classifier import Classifier
from .multilabel import evaluate_tags
from .windows import Progress, clip_outputs, default_batch_size, model_forward


def clip_metrics(y_true, y_pred, labels, window_correct: int, window_total: int) -> dict:
    """The contract's metrics: clip accuracy, macro-F1 over classes, per-class P/R/F1, confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    idx = list(range(len(labels)))
    present = sorted(set(y_true))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    return {
        "clip_accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.0,
        "macro_f1": float(np.mean([f[i] for i in present])) if present else 0.0,
        "window_accuracy": window_correct / window_total if window_total else 0.0,
        "num_clips": len(y_true),
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        "per_class": {labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                  "support": int(s[i])} for i in idx},
    }


def evaluate_clips(model, labels, clips, **options):
    """Metrics of a Keras ``model`` on ``clips`` (whose labels must be among ``labels``); see
    :func:`evaluate_forward` for the options."""
    return evaluate_forward(model_forward(model, len(clips)), labels, clips, **options)


def evaluate_forward(forward, labels, clips, *, sample_rate, window_samples, batch_size=32, aggregate="mean",
                     hop_samples=None, log=None, verbose=1, return_predictions=False):
    """Metrics of a model given as ``forward`` (windows → probabilities) on ``clips``."""
    log = log or SkipLog()
    index = {name: i for i, name in enumerate(labels)}
    progress = Progress(len(clips), enabled=bool(verbose), label="inference", unit="clips")
    out = clip_outputs(forward, clips, num_outputs=len(labels), sample_rate=sample_rate,
                       window_samples=window_samples, hop_samples=hop_samples, batch_size=batch_size, log=log,
                       progress=progress)
    progress.close()
    mean, votes, counts = out.mean, out.votes, out.counts
    ok = counts > 0
    y_true = np.array([index[c.label] for c in clips])
    scores = mean if aggregate == "mean" else votes / np.maximum(counts, 1)[:, None]
    y_pred = np.where(ok, np.nan_to_num(scores).argmax(1), -1)
    window_correct = int(sum(votes[i, y_true[i]] for i in np.flatnonzero(ok)))
    metrics = clip_metrics(y_true[ok].tolist(), y_pred[ok].tolist(), labels, window_correct, int(counts.sum()))
    metrics.update(calibration_metrics(mean[ok], y_true[ok]))
    metrics["aggregate"] = aggregate
    metrics["skipped_files"] = int((~ok).sum())
    if return_predictions:
        return metrics, mean, y_pred, counts
    return metrics


def plot_confusion(matrix, labels, path, title="Confusion matrix (clips)"):
    """Row-normalised confusion matrix with counts, saved as PNG."""
    from matplotlib.figure import Figure  # not pyplot: leaves the user's (e.g. notebook) backend alone

    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(labels) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def write_predictions(path, clips, labels, y_pred, mean, counts):
    """``predictions.csv``: per clip its id, path, label, predicted label, windows and probabilities."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
            w = csv.writer(f)
            w.writerow(["clip", "path", "label", "predicted", "windows"] + [f"p_{l}" for l in labels])
            for c, pred, probs, n in zip(clips, y_pred, mean, counts):
                w.writerow([c.id, c.path or "", c.label, labels[pred] if pred >= 0 else "", int(n)]
                           + [f"{p:.6f}" for p in np.nan_to_num(probs)])


def write_eval_events(run: Run, name: str, metrics: dict, confusion_png: str) -> str:
    """TensorBoard events of an evaluation in ``RUN/logs/<name>``: clip accuracy, macro-F1, window accuracy and
    per-class precision, recall and F1 as scalars, the confusion matrix as an image. Their step is the epoch
    whose weights the run kept, so they sit on the training curves. A new evaluation replaces the old events."""
    import tensorflow as tf

    step = max(0, int(run.metrics.get("best_epoch") or 1) - 1)
    target = os.path.join(run.path, LOGS_DIR, name)
    staging = staging_dir(run.path, ".tmp-events-")
    try:
        writer = tf.summary.create_file_writer(staging)
        with writer.as_default():
            for key in ("clip_accuracy", "macro_f1", "window_accuracy"):
                tf.summary.scalar(f"eval/{key}", metrics[key], step=step)
            for label, values in metrics["per_class"].items():
                for key in ("precision", "recall", "f1"):
                    tf.summary.scalar(f"per_class_{key}/{_slug(label)}", values[key], step=step)
            with open(confusion_png, "rb") as f:
                tf.summary.image("confusion_matrix", tf.image.decode_png(f.read(), channels=4)[None], step=step)
        writer.close()
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "data"


def evaluate(source, data="synthetic", split: Optional[str] = None, *, batch_size: Optional[int] = None,
             aggregate: str = "mean", hop_seconds: Optional[float] = None, out: Optional[str] = None,
             verbose: int = 1) -> dict:
    """Evaluate any model source (a run directory, a preset, an export version directory, a ``.tflite`` file, a
    :class:`~genrenet.run.Run` or a :class:`~genrenet.infer.Classifier`) on ``data``; writes ``metrics.json``
    (with the calibration of the probabilities predict gives: ``ece`` over 15 bins, ``nll``, ``brier``),
    ``predictions.csv``, ``confusion.png`` and the reliability diagram ``reliability.png``.

    ``split``: ``train`` and ``val`` of a run are the clips it trained and validated on (``split.json``); it
    defaults to the dataset's ``test`` split, else the run's validation clips when ``data`` holds them, else
    ``all``. Clips the run trained on are counted in ``training_clips`` with a warning: such figures are not a
    test, and the model card says so. Clips whose label
    the model does not know are reported and left out. ``batch_size`` (windows per model call) defaults to
    :func:`default_batch_size`. Returns the metrics dict (with ``out`` added).
    """
    check_whole(batch_size, "batch_size", at_least=1, optional=True)
    check_positive(hop_seconds, "hop_seconds", optional=True)
    clf = Classifier.from_preset(source.path if isinstance(source, Run) else source)
    dataset = data if isinstance(data, ClipDataset) else load_dataset(data)
    remembered = read_split(clf.run.path) if clf.run else None
    if remembered and not remembered.is_data_of(dataset.spec):
        if SPLIT_ALIASES.get(split, split) in ("train", "val"):
            raise DatasetError(f"{dataset.spec}: not the data this run trained on ({remembered.data}); its "
                               "train and val splits are clips of that data", param="split")
        remembered = None
    split, clips = split_clips(dataset, split, remembered, verbose)
    clips = known_clips(dataset, split, clips, clf.labels, verbose)
    trained_on = sum(c.id in remembered.train for c in clips) if remembered else 0
    if trained_on:
        print(f"warning: {trained_on} of the {len(clips)} clips evaluated trained this run: these figures are on "
              "training clips, not a test (--split val scores the clips it held out)", file=sys.stderr)
    log = SkipLog(dataset.skipped, dataset.ignored)
    hop = int(round(hop_seconds * clf.sample_rate)) if hop_seconds else None
    if clf.multi_label:
        return evaluate_tagger(clf, dataset, split, clips, log, hop=hop, batch_size=batch_size, out=out,
                               verbose=verbose, training_clips=trained_on)
    metrics, mean, y_pred, counts = evaluate_forward(
        clf.forward_for(len(clips)), clf.labels, clips, sample_rate=clf.sample_rate,
        window_samples=clf.window_samples, aggregate=aggregate, hop_samples=hop, log=log, verbose=verbose,
        batch_size=batch_size or default_batch_size(clf.window_samples, clf.sample_rate), return_predictions=True)
    run = clf.run
    name = f"eval-{_slug(dataset.name)}-{split}"
    metrics.update({"data": dataset.spec, "split": split, "run": run.path if run else clf.path,
                    "training_clips": trained_on})
    out = out or (os.path.join(run.path, name) if run else f"eval-{_slug(source_stem(clf))}-{name[5:]}")
    os.makedirs(out, exist_ok=True)
    write_predictions(os.path.join(out, "predictions.csv"), clips, clf.labels, y_pred, mean, counts)
    write_plots(out, metrics, clf.labels, clips, mean, counts,
                title=f"{clf.model_name or ''} on {dataset.name} ({split})")
    metrics["skipped"] = [f"{n}: {r}" for n, r in sorted(log.skipped.items())]
    metrics["ignored"] = [f"{n}: {r}" for n, r in sorted(log.ignored.items())]
    write_json(os.path.join(out, "metrics.json"), metrics)
    if run is not None:
        write_eval_events(run, name, metrics, os.path.join(out, "confusion.png"))
        write_run_card(run, also=(metrics,))
    metrics["out"] = out
    if verbose:
        for line in log.summary():
            print(line)
    return metrics


def split_clips(dataset: ClipDataset, split: Optional[str], remembered: Optional[RunSplit], verbose: int) -> tuple:
    """``(split, clips)`` to evaluate. ``train`` and ``val`` of a run that recorded its split are the clips it
    trained and validated on. By default: the dataset's ``test`` split; else the run's validation clips when the
    data holds them (the run's own data); else ``all``."""
    split = SPLIT_ALIASES.get(split, split)
    if split is None:
        held_out = remembered and any(c.id in remembered.val for c in dataset.clips)
        split = "test" if dataset.has_splits and dataset.split("test") else "val" if held_out else "all"
        if split == "val" and verbose:
            print(f"note: evaluating the {len(remembered.val)} clips this run held out for validation "
                  "(--split all for every clip)")
    if remembered is None or split not in ("train", "val"):
        return split, dataset.split(split)
    clips = [c for c in dataset.clips if c.id in remembered.ids(split)]
    if not remembered.ids(split):
        raise DatasetError("the run held out no validation clips (it trained on every clip): evaluate it on "
                           "other data", param="split")
    if not clips:
        what = "training" if split == "train" else "validation"
        raise DatasetError(f"{dataset.spec}: holds none of the run's {len(remembered.ids(split))} {what} clips "
                           "(was the run trained on other data?)", param="split")
    return split, clips


def evaluate_tagger(clf: Classifier, dataset: ClipDataset, split: str, clips: list, log: SkipLog, *, hop, batch_size,
                    out, verbose, training_clips: int = 0) -> dict:
    """:func:`evaluate` for a multi-label source: exact ROC-AUC and PR-AUC (macro and micro), F1 at the model's
    thresholds, ``per_tag.csv`` (:func:`~genrenet.infer.multilabel.evaluate_tags`)."""
    run = clf.run
    name = f"eval-{_slug(dataset.name)}-{split}"
    out = out or (os.path.join(run.path, name) if run else f"eval-{_slug(source_stem(clf))}-{name[5:]}")
    os.makedirs(out, exist_ok=True)
    metrics = evaluate_tags(clf, clips, out, log=log, hop_samples=hop, verbose=verbose,
                            batch_size=batch_size or default_batch_size(clf.window_samples, clf.sample_rate))
    metrics.update({"data": dataset.spec, "split": split, "run": run.path if run else clf.path,
                    "training_clips": training_clips, "skipped": [f"{n}: {r}" for n, r in sorted(log.skipped.items())],
                    "ignored": [f"{n}: {r}" for n, r in sorted(log.ignored.items())]})
    write_json(os.path.join(out, "metrics.json"), metrics)
    if run is not None:
        write_run_card(run, also=(metrics,))
    metrics["out"] = out
    return metrics


def write_plots(out: str, metrics: dict, labels, clips, mean, counts, title: str):
    """``confusion.png`` and the reliability diagram ``reliability.png`` of the clips that were classified."""
    plot_confusion(metrics["confusion_matrix"], labels, os.path.join(out, "confusion.png"),
                   title=f"{title}: clip accuracy {metrics['clip_accuracy']:.2f}")
    ok = counts > 0
    plot_reliability(mean[ok], [labels.index(c.label) for c, k in zip(clips, ok) if k],
                     os.path.join(out, "reliability.png"), title=title)
    metrics["ece_bins"] = ECE_BINS


def known_clips(dataset: ClipDataset, split: str, clips: list, labels, verbose: int) -> list:
    """The ``clips`` (of ``split``) whose label the model knows; the others are left out with a note."""
    if not clips:
        raise DatasetError(f"{dataset.spec}: split {split!r} has no clips")
    unknown = sorted({l for c in clips for l in c.all_labels} - set(labels))
    if unknown:
        if verbose:
            print(f"note: labels the model does not know: {unknown}; clips with none of its labels are left out")
        clips = [c for c in clips if set(c.all_labels) & set(labels)]
        if not clips:
            raise DatasetError(f"{dataset.spec}: none of its classes {unknown} are known to the model ({labels})")
    return clips


def source_stem(clf: Classifier) -> str:
    """A short name for an export or a ``.tflite`` file in folder names: ``model`` of ``model.tflite``,
    ``genrenet-1`` of ``export/genrenet/1``."""
    path = os.path.normpath(clf.path)
    if clf.kind == "tflite":
        return os.path.splitext(os.path.basename(path))[0]
    return f"{os.path.basename(os.path.dirname(path))}-{os.path.basename(path)}"
