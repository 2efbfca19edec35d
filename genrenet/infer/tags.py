"""What a source's raw probabilities mean to a user: its labels (through a label map when given) and, for a
multi-label source, its tags.

A multi-label source gives every label an independent probability. A file's ``tags`` are the labels whose
probability passes the label's threshold (the source's ``thresholds``, tuned on validation data), best first;
a source without thresholds (a tagger preset has no validation data) gives its ``top_k`` best labels instead.
``uncertain`` is true when no tag passes. :class:`Outputs` holds all this for one source so that ``predict``,
timelines, the app and Beam turn probabilities into labels the same way.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .labelmap import LabelMap, load_label_map


@dataclasses.dataclass(frozen=True)
class Outputs:
    """A source's ``labels``, whether they are independent (``multi_label``), its per-label ``thresholds``
    (or ``None``) and the user's :class:`~genrenet.infer.labelmap.LabelMap` (or ``None``)."""

    labels: list
    multi_label: bool = False
    thresholds: Optional[tuple] = None
    label_map: Optional[LabelMap] = None

    @classmethod
    def of(cls, classifier, labels_map=None) -> "Outputs":
        """The outputs of a :class:`~genrenet.infer.Classifier` (or its ModelSource), with ``labels_map`` (a
        path or a :class:`LabelMap`) checked against its labels."""
        info = getattr(classifier, "info", classifier)
        if labels_map is not None and not isinstance(labels_map, LabelMap):
            labels_map = load_label_map(labels_map)
        thresholds = getattr(info, "thresholds", None)
        return cls(list(info.labels), bool(info.multi_label), tuple(thresholds) if thresholds else None,
                   labels_map.check(info.labels) if labels_map is not None else None)

    @property
    def user_labels(self) -> list:
        """The labels a user sees: the map's labels when there is one, else the source's."""
        return self.label_map.labels if self.label_map else list(self.labels)

    def view(self, probs):
        """``(labels, probs [..., L], passed [..., L] or None)``: probabilities ``[..., C]`` as the user sees
        them; ``passed`` marks labels over their threshold (``None`` without thresholds)."""
        probs = np.asarray(probs)
        passed = probs >= np.asarray(self.thresholds) if self.thresholds else None
        if self.label_map is None:
            return list(self.labels), probs, passed
        labels, mapped = self.label_map.apply(self.labels, probs, multi_label=self.multi_label)
        if passed is not None:  # a user label passes when any of its model labels passes
            passed = self.label_map.apply(self.labels, passed.astype(np.float32), multi_label=True)[1] > 0
        return labels, mapped, passed


def tag_fields(labels, probs, passed, top_k: int) -> dict:
    """``tags`` [[label, p]] (the labels that pass, best first; the ``top_k`` best when ``passed`` is None) and
    ``uncertain`` (no tag passes) of one file."""
    order = np.argsort(-np.asarray(probs), kind="stable")
    if passed is None:
        keep = order[:max(1, min(top_k, len(labels)))]
    else:
        keep = [i for i in order if passed[i]]
    tags = [[labels[i], float(probs[i])] for i in keep]
    return {"tags": tags, "uncertain": not tags}
