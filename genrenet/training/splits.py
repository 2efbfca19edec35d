"""Training and validation clips: the dataset's own split, or a seeded hold-out made before windowing."""
from __future__ import annotations

from collections import Counter
from typing import Optional

from ..data import ClipDataset, holdout_split

MIN_CLIPS_PER_CLASS_FOR_VALIDATION = 10


def resolve_splits(dataset: ClipDataset, val_fraction: Optional[float], seed: int):
    """(train clips, validation clips, notes): the dataset's own split when it has one, else a seeded
    stratified hold-out by clip/group made before windowing.

    ``val_fraction=None`` (the default) holds out 20 % only when every class has at least
    :data:`MIN_CLIPS_PER_CLASS_FOR_VALIDATION` clips to spare. On fewer, a hold-out costs a large share of the
    training data and its loss is too noisy to stop on (measured on the 40 GTZAN dev clips, see
    ``benchmarks/gtzan_dev.py``), so the model trains on every clip and early stopping watches the training loss.
    """
    notes = []
    pool = dataset.clips
    if dataset.has_splits and dataset.split("train"):
        pool, val = dataset.split("train"), dataset.split("val")
        if val:
            return pool, val, notes
        notes.append("the dataset has no validation split: holding out part of its training split")
    if val_fraction is None:
        fewest = min(Counter(c.label for c in pool).values())
        if fewest < MIN_CLIPS_PER_CLASS_FOR_VALIDATION:
            return pool, [], [f"no validation split: a class has only {fewest} training clips (a hold-out needs "
                              f"{MIN_CLIPS_PER_CLASS_FOR_VALIDATION}+ per class to be worth its cost); early "
                              "stopping watches the training loss (to hold out anyway: --val-fraction F on "
                              "the command line, val_fraction=F in Python)"]
        val_fraction = 0.2
    if not val_fraction:
        return pool, [], []
    train, val, more = holdout_split(pool, val_fraction, seed)
    return train, val, notes + more
