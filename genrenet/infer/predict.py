"""The predict loop: audio files of any format, length and rate → one result per file.

Every source goes through genrenet's one inference loop (:mod:`genrenet.infer.windows`): files are decoded
and resampled in a tf.data pipeline, cut into windows, and the windows of *many files* are batched together for
the model; a file's prediction is the mean of its windows' probabilities. :class:`~genrenet.infer.Classifier`
runs it; ``genrenet.predict(source, files)`` is the one-call convenience.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..data import Clip, SkipLog
from .tags import Outputs, tag_fields
from .windows import Progress, clip_outputs, default_batch_size


def predict_files(classifier, files, *, top_k: int = 3, batch_size: Optional[int] = None,
                  hop_seconds: Optional[float] = None, verbose: int = 1, labels_map=None) -> list[dict]:
    """One dict per file (:func:`outputs_result`, or ``file`` and ``error``) from a loaded classifier. Windows
    of consecutive files share batches of ``batch_size`` (default: 64 windows of 3 s, fewer when windows are
    longer; see :func:`~genrenet.infer.windows.default_batch_size`); ``hop_seconds`` spaces the windows
    (default: one window, no overlap); ``labels_map`` (a file or a
    :class:`~genrenet.infer.labelmap.LabelMap`) turns the model's labels into the user's."""
    outputs = Outputs.of(classifier, labels_map)
    files = [str(f) for f in files]
    clips = [Clip(id=f, label="", path=f) for f in files]
    log = SkipLog()
    rate, window = classifier.sample_rate, classifier.window_samples
    progress = Progress(len(clips), enabled=bool(verbose))
    out = clip_outputs(classifier.forward_for(len(clips)), clips, num_outputs=len(classifier.labels),
                       sample_rate=rate, window_samples=window,
                       hop_samples=int(round(hop_seconds * rate)) if hop_seconds else None,
                       batch_size=batch_size or default_batch_size(window, rate), log=log, progress=progress)
    progress.close()
    return [outputs_result(outputs, clip.path, probs, top_k, n) if n else
            {"file": clip.path, "error": log.skipped.get(clip.name, "could not be decoded")}
            for clip, probs, n in zip(clips, out.mean, out.counts)]


def outputs_result(outputs: Outputs, path, probs, top_k: int, windows: int) -> dict:
    """:func:`file_result` over the labels the user sees (:class:`~genrenet.infer.tags.Outputs`); a multi-label
    source's row also has ``tags`` and ``uncertain`` (:func:`~genrenet.infer.tags.tag_fields`)."""
    labels, probs, passed = outputs.view(probs)
    row = file_result(path, probs, labels, top_k, windows)
    if outputs.multi_label:
        row.update(tag_fields(labels, probs, passed, top_k))
    return row


def file_result(path, probs, labels, top_k: int, windows: int) -> dict:
    """The result of one classified file: ``file``, ``label``, ``windows``, ``top`` [[label, p]] (``top_k``
    best) and every label's ``probabilities``."""
    order = np.argsort(-probs)[:max(1, min(top_k, len(labels)))]
    return {"file": str(path), "label": labels[order[0]], "windows": int(windows),
            "top": [[labels[i], float(probs[i])] for i in order],
            "probabilities": {l: float(p) for l, p in zip(labels, probs)}}
