"""The predict loop: audio files of any format, length and rate → one result per file.

Every source goes through genrenet's one inference loop (:mod:`genrenet.infer.windows`): files are decoded
and resampled in a tf.data pipeline, cut into windows, and the windows of *many files* are batched together for
the model; a file's prediction is the mean of its windows' probabilities. :class:`~genrenet.infer.Classifier`
runs it; ``genrenet.predict(source, files)`` is the one-call convenience.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..data import Clip, NotMusic, SkipLog
from ..data.decoding import too_short_reason
from ..data.sources.base import probe
from ..errors import ConfigError
from .tags import Outputs, tag_fields
from .windows import Progress, clip_outputs, default_batch_size


def predict_files(classifier, files, *, top_k: int = 3, batch_size: Optional[int] = None,
                  hop_seconds: Optional[float] = None, min_confidence: Optional[float] = None,
                  verbose: int = 1, labels_map=None) -> list[dict]:
    """One dict per file (:func:`outputs_result`; ``file``, ``label: None`` and ``reason`` for a file with
    nothing to classify; or ``file`` and ``error``) from a loaded classifier. Windows of consecutive files share
    batches of ``batch_size`` (default: 64 windows of 3 s, fewer when windows are longer; see
    :func:`~genrenet.infer.windows.default_batch_size`); ``hop_seconds`` spaces the windows (default: one
    window, no overlap); a top probability below ``min_confidence`` (default: the source's) is ``uncertain``;
    ``labels_map`` (a file or a :class:`~genrenet.infer.labelmap.LabelMap`) turns the model's labels into the
    user's."""
    outputs = Outputs.of(classifier, labels_map)
    files = [str(f) for f in files]
    clips = [Clip(id=f, label="", path=f) for f in files]
    log = SkipLog(header_reasons(files))
    threshold = classifier.info.min_confidence if min_confidence is None else checked_confidence(min_confidence)
    rate, window = classifier.sample_rate, classifier.window_samples
    progress = Progress(len(clips), enabled=bool(verbose))
    out = clip_outputs(classifier.forward_for(len(clips)), clips, num_outputs=len(classifier.labels),
                       sample_rate=rate, window_samples=window,
                       hop_samples=int(round(hop_seconds * rate)) if hop_seconds else None,
                       batch_size=batch_size or default_batch_size(window, rate), log=log, progress=progress)
    progress.close()
    return [outputs_result(outputs, clip.path, probs, top_k, n, threshold) if n else
            unclassified(clip.path, log.skipped.get(clip.name, "could not be decoded"))
            for clip, probs, n in zip(clips, out.mean, out.counts)]


def outputs_result(outputs: Outputs, path, probs, top_k: int, windows: int, min_confidence: float = 0.0) -> dict:
    """:func:`file_result` over the labels the user sees (:class:`~genrenet.infer.tags.Outputs`); a multi-label
    source's row also has ``tags`` and ``uncertain`` (:func:`~genrenet.infer.tags.tag_fields`)."""
    labels, probs, passed = outputs.view(probs)
    row = file_result(path, probs, labels, top_k, windows, min_confidence)
    if outputs.multi_label:
        row.update(tag_fields(labels, probs, passed, top_k))
    return row


def checked_confidence(value) -> float:
    """``min_confidence`` as a probability; anything else is a :class:`~genrenet.errors.ConfigError`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"min_confidence must be a probability between 0 and 1, got {value!r}",
                          param="min_confidence")
    return value


def header_reasons(files) -> list:
    """``(file, reason)`` for the files whose header already says there is nothing to classify: truncated
    (less audio than the header promises) or too short; the model never sees them."""
    found = []
    for f in files:
        reason, seconds = probe(f)
        reason = reason if isinstance(reason, NotMusic) else too_short_reason(seconds) if seconds else None
        if reason:
            found.append((f, reason))
    return found


def unclassified(path, reason: str) -> dict:
    """The row of a file without a prediction: ``label: None`` and the ``reason`` when it holds nothing to
    classify (:class:`~genrenet.data.NotMusic`), else ``error``."""
    if isinstance(reason, NotMusic):
        return {"file": str(path), "label": None, "reason": str(reason)}
    return {"file": str(path), "error": reason}


def file_result(path, probs, labels, top_k: int, windows: int, min_confidence: float = 0.0) -> dict:
    """The result of one classified file: ``file``, ``label``, ``uncertain`` (top probability below
    ``min_confidence``), ``windows``, ``top`` [[label, p]] (``top_k`` best) and every label's
    ``probabilities``."""
    order = np.argsort(-probs)[:max(1, min(top_k, len(labels)))]
    return {"file": str(path), "label": labels[order[0]], "uncertain": bool(probs[order[0]] < min_confidence),
            "windows": int(windows), "top": [[labels[i], float(probs[i])] for i in order],
            "probabilities": {l: float(p) for l, p in zip(labels, probs)}}


def describe(row: dict) -> str:
    """One line for a result row: ``rock 0.912, blues 0.050``, ``unsure: rock or blues (0.48, 0.31)``, ``no
    genre: is silent (...)`` or ``error: ...``."""
    if "error" in row:
        return f"error: {row['error']}"
    if row.get("label") is None:
        return f"no genre: {row.get('reason', 'nothing to classify')}"
    top = row["top"]
    if row.get("uncertain"):
        names = " or ".join(l for l, _ in top[:2])
        return f"unsure: {names} (" + ", ".join(f"{p:.2f}" for _, p in top[:2]) + ")"
    return ", ".join(f"{l} {p:.3f}" for l, p in top)
