"""Seeded, stratified hold-out splits made on clips or groups (artists), before any windowing."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from ..errors import DatasetError


def holdout_split(clips, fraction: float = 0.2, seed: int = 0):
    """Split ``clips`` into (train, held_out, notes), stratified by label and disjoint by ``clip.group``.

    Whole groups are held out (in seeded random order) while their classes still need held-out clips and
    keep at least one training clip. A class that cannot be served that way (e.g. all its clips are by one
    artist) is held out by clip instead, and a note says so: the caller should tell the user.
    """
    rng = np.random.default_rng(seed)
    groups = defaultdict(list)
    for c in clips:
        groups[c.group or c.id].append(c)
    total = Counter(c.label for c in clips)
    target = {l: max(1, int(round(fraction * n))) for l, n in total.items() if n >= 2}
    held_count, train_left = Counter(), Counter(total)
    held_keys = set()
    keys = sorted(groups)
    for i in rng.permutation(len(keys)):
        counts = Counter(c.label for c in groups[keys[i]])
        if all(l in target and held_count[l] < target[l] and train_left[l] - n >= 1 for l, n in counts.items()):
            held_keys.add(keys[i])
            held_count.update(counts)
            train_left.subtract(counts)
    train = [c for k in keys if k not in held_keys for c in groups[k]]
    held = [c for k in keys if k in held_keys for c in groups[k]]
    notes = [f"class {l!r} has 1 clip: it is used for training only" for l, n in sorted(total.items()) if n < 2]
    for label in sorted(l for l in target if held_count[l] == 0):
        members = [c for c in train if c.label == label]
        order = rng.permutation(len(members))[: target[label]]
        moved = {id(members[j]) for j in order}
        held += [c for c in members if id(c) in moved]
        train = [c for c in train if id(c) not in moved]
        notes.append(f"class {label!r}: its clips share too few groups (artists) for a group-disjoint hold-out; "
                     "held out by clip instead")
    return train, held, notes


def kfold(clips, k: int = 5, seed: int = 0):
    """Assign ``clips`` to ``k`` folds, stratified by label and disjoint by ``clip.group`` (artist).

    Returns ``(folds, notes)``: ``folds`` is a list of ``k`` clip lists. Groups are placed largest first (seeded
    order among equals) in the fold that holds the smallest share of their classes so far. A class with clips
    from fewer than ``k`` groups cannot be spread over ``k`` folds by group: its groups are split by clip instead
    and a note says so (its test clips then share artists with training clips — report such numbers apart).
    """
    if k < 2:
        raise DatasetError("k-fold needs k >= 2")
    rng = np.random.default_rng(seed)
    groups = defaultdict(list)
    for c in clips:
        groups[c.group or c.id].append(c)
    total = Counter(c.label for c in clips)
    n_groups = Counter(l for members in groups.values() for l in {c.label for c in members})
    thin = {l for l, n in n_groups.items() if n < k}
    units = []  # lists of clips that must stay together
    for key in sorted(groups):
        members = groups[key]
        if {c.label for c in members} <= thin:
            units += [[c] for c in members]
        else:
            units.append(members)
    order = rng.permutation(len(units))
    order = sorted(order, key=lambda i: -len(units[i]))  # stable: seeded order among equal sizes
    share = np.zeros((k, len(total)))
    label_index = {l: i for i, l in enumerate(sorted(total))}
    folds = [[] for _ in range(k)]
    for i in order:
        unit = units[i]
        counts = Counter(label_index[c.label] for c in unit)
        cost = [sum(share[f, j] + n / total[l] for l, j in label_index.items() for n in [counts.get(j, 0)] if n)
                for f in range(k)]
        best = min(range(k), key=lambda f: (round(cost[f], 9), len(folds[f]), f))
        for j, n in counts.items():
            share[best, j] += n / total[sorted(total)[j]]
        folds[best].extend(unit)
    notes = [f"class {l!r} has clips from only {n_groups[l]} group(s) (artists) for {k} folds: split by clip, so "
             "its test clips share artists with training clips" for l in sorted(thin)]
    notes += [f"class {l!r} has {n} clips for {k} folds: some folds have none" for l, n in sorted(total.items())
              if n < k]
    return folds, notes
