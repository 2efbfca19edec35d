"""Seeded, stratified hold-out splits made on clips or groups (artists), before any windowing."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np


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
