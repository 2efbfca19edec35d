"""The best transfer recipe on small data: one lever at a time, artist-aware CV on the 40 GTZAN dev clips.

    python -m benchmarks.transfer_recipe                     # every row below, features cached on first use
    python -m benchmarks.transfer_recipe --rows heads        # only some groups: heads, backbones, windows
    python -m benchmarks.transfer_recipe --cache DIR         # where backbone features are kept (default below)

Backbone features are computed once per pretrained backbone (``musicnn`` and ``vgg_musicnn``, ``msd`` and
``mtt``) with genrenet's inference loop: the penultimate features of every 3-s window at half-window hop, so
the non-overlapping windows (every other one) and the overlapping ones come from the same cache. Every head
variant then trains on these arrays in seconds.

Protocol. 2-fold artist-aware CV (:func:`genrenet.data.kfold`), repeated over ``--partitions`` fold partitions
(seeds 0..P-1), and for seeded heads over ``--seeds`` head seeds. A clip's prediction is what the shipped Keras
model does: the mean of its windows' softmax probabilities. Each row reports the mean clip accuracy over all
partitions × seeds and its spread (standard deviation over those runs); one clip is 2.5 points of the 40.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.gtzan_dev import DEFAULT_DATA  # noqa: E402

BACKBONES = ("musicnn:msd", "musicnn:mtt", "vgg_musicnn:msd", "vgg_musicnn:mtt")
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "genrenet", "transfer_recipe")


# ------------------------------------------------------------------------------------------------ features
def backbone_features(backbone: str, clips, cache_dir: str) -> dict:
    """``{"x" [n, D], "clip" [n], "window" [n]}``: penultimate features of every half-hop window, cached."""
    path = os.path.join(cache_dir, backbone.replace(":", "-") + ".npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    from genrenet import registry
    from genrenet.data import SkipLog
    from genrenet.infer.windows import model_forward, window_outputs
    from genrenet.nn import penultimate_model
    from genrenet.run import atomic_path

    arch, tag = backbone.split(":")
    model = registry.build_model(arch, num_classes=10, pretrained=tag, freeze_backbone=True)
    net, window = penultimate_model(model), int(model.input_shape[-1])
    t0, feats, owner = time.time(), [], []
    for out, index in window_outputs(model_forward(net, len(clips)), clips, log=SkipLog(), batch_size=32,
                                     sample_rate=registry.get_spec(arch).features.sample_rate,
                                     window_samples=window, hop_samples=window // 2):
        feats.append(out.astype(np.float32))
        owner.append(index)
    owner = np.concatenate(owner)
    position = np.concatenate([np.arange((owner == i).sum()) for i in range(len(clips))])
    result = {"x": np.concatenate(feats), "clip": owner, "window": position}
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **result)
    print(f"{backbone}: {len(owner)} windows of {result['x'].shape[1]} features in {time.time() - t0:.0f} s",
          flush=True)
    return result


# ------------------------------------------------------------------------------------------------ heads
def head_model(dim: int, num_classes: int):
    """The head every pretrained genrenet model has: ``head_dropout`` (0.5) → ``probabilities`` (softmax)."""
    import keras

    inputs = keras.Input((dim,))
    h = keras.layers.Dropout(0.5, name="head_dropout")(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(h))


def fit_predict(head: str, x, y, groups, x_test, seed: int):
    """Train ``head`` (``keras``: genrenet's default head training; ``logistic``) and return test-row
    probabilities."""
    import keras

    from genrenet.training.config import HEAD_EPOCHS
    from genrenet.training.transfer import keras_head, logistic_head

    keras.utils.set_random_seed(seed)
    model = head_model(x.shape[1], y.shape[1])
    if head == "keras":
        stop = keras.callbacks.EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)
        keras_head(model, x, y, epochs=HEAD_EPOCHS, learning_rate=1e-3, batch_size=32, callbacks=[stop])
    else:
        logistic_head(model, x, y, groups)
    return model.predict(x_test, verbose=0, batch_size=256)


def clip_mean(values, owner, n):
    """Mean of ``values`` rows per owner clip ``[n, D]``."""
    sums = np.zeros((n, values.shape[1]))
    np.add.at(sums, owner, values)
    return sums / np.maximum(np.bincount(owner, minlength=n), 1)[:, None]


class Recipe:
    """One row: backbones (concatenated features, or one head each averaged: ``ensemble``), a head, which
    windows train it (``train_hop`` 1 = non-overlapping, 0.5 = half-window hop, ``clip`` = clip means) and
    which windows are averaged at test time (``test_hop``)."""

    def __init__(self, name, backbones, head="keras", *, ensemble=False, train_hop=1, test_hop=1):
        self.name, self.backbones, self.head, self.ensemble = name, backbones, head, ensemble
        self.train_hop, self.test_hop = train_hop, test_hop

    def probs(self, feats, train_clips, test_clips, y_clip, groups, seed):
        members = [[b] for b in self.backbones] if self.ensemble else [self.backbones]
        return np.mean([self._member(feats, m, train_clips, test_clips, y_clip, groups, seed) for m in members], 0)

    def _member(self, feats, backbones, train_clips, test_clips, y_clip, groups, seed):
        first = feats[backbones[0]]
        x = np.concatenate([feats[b]["x"] for b in backbones], 1)
        clip, window = first["clip"], first["window"]
        rows = lambda clips, hop: np.isin(clip, clips) & (window % 2 == 0 if hop == 1 else True)  # noqa: E731
        test = rows(test_clips, self.test_hop)
        if self.train_hop == "clip":
            train = rows(train_clips, 1)
            xt = clip_mean(x[train], clip[train], len(y_clip))[train_clips]
            yt, gt = y_clip[train_clips], groups[train_clips]
        else:
            train = rows(train_clips, self.train_hop)
            xt, yt, gt = x[train], y_clip[clip[train]], groups[clip[train]]
        p = fit_predict(self.head, xt, yt, gt, x[test], seed)
        return clip_mean(p, clip[test], len(y_clip))[test_clips]


RECIPES = {
    "heads": [
        Recipe("`musicnn` msd, Keras head (dropout 0.5 → Dense, Adam, 30 epochs), window features", ["musicnn:msd"]),
        Recipe("`musicnn` msd, logistic regression (C by inner CV), window features", ["musicnn:msd"], "logistic"),
        Recipe("`musicnn` msd, Keras head, clip-mean features", ["musicnn:msd"], train_hop="clip"),
        Recipe("`musicnn` msd, logistic regression, clip-mean features", ["musicnn:msd"], "logistic",
               train_hop="clip"),
    ],
    "windows": [
        Recipe("`musicnn` msd, Keras head, test windows at half hop", ["musicnn:msd"], test_hop=0.5),
        Recipe("`musicnn` msd, Keras head, train and test windows at half hop", ["musicnn:msd"], train_hop=0.5,
               test_hop=0.5),
    ],
    "backbones": [Recipe(f"`{b.split(':')[0]}` {b.split(':')[1]}, Keras head", [b]) for b in BACKBONES[1:]] + [
        Recipe("concat `musicnn` msd ‖ `vgg_musicnn` msd, Keras head", ["musicnn:msd", "vgg_musicnn:msd"]),
        Recipe("concat `musicnn` msd ‖ `musicnn` mtt, Keras head", ["musicnn:msd", "musicnn:mtt"]),
        Recipe("concat all four, Keras head", list(BACKBONES)),
        Recipe("ensemble `musicnn` msd + `vgg_musicnn` msd (mean of probabilities)",
               ["musicnn:msd", "vgg_musicnn:msd"], ensemble=True),
        Recipe("ensemble `musicnn` msd + `musicnn` mtt", ["musicnn:msd", "musicnn:mtt"], ensemble=True),
        Recipe("ensemble of all four", list(BACKBONES), ensemble=True),
    ],
}


def cross_validate(recipe, feats, clips, labels, partitions, seeds):
    """Clip accuracy over all 40 clips (both folds) for every (partition, seed) pair."""
    from genrenet.data import kfold

    index = {c.id: i for i, c in enumerate(clips)}
    y_clip = np.eye(len(labels), dtype=np.float32)[[labels.index(c.label) for c in clips]]
    groups = np.array([c.group or c.id for c in clips])
    seeds = seeds if recipe.head == "keras" else [0]  # the logistic head is deterministic
    scores = []
    for partition, seed in itertools.product(partitions, seeds):
        folds, _ = kfold(clips, 2, partition)
        correct = 0
        for f, test in enumerate(folds):
            test_idx = np.array([index[c.id] for c in test])
            train_idx = np.array([index[c.id] for g, part in enumerate(folds) if g != f for c in part])
            p = recipe.probs(feats, train_idx, test_idx, y_clip, groups, seed)
            correct += int((p.argmax(1) == y_clip[test_idx].argmax(1)).sum())
        scores.append(correct / len(clips))
    return scores


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--cache", default=DEFAULT_CACHE, help=f"backbone feature cache (default {DEFAULT_CACHE})")
    p.add_argument("--rows", default=",".join(RECIPES), help=f"row groups: {', '.join(RECIPES)}")
    p.add_argument("--only", default="", help="run only rows whose name contains this text")
    p.add_argument("--partitions", type=int, default=5, help="fold partitions (kfold seeds 0..P-1)")
    p.add_argument("--seeds", type=int, default=3, help="head seeds for the Keras head")
    p.add_argument("--features-only", action="store_true")
    args = p.parse_args(argv)
    from genrenet.data import load_dataset

    dataset = load_dataset(os.path.normpath(args.data))
    feats = {b: backbone_features(b, dataset.clips, args.cache) for b in BACKBONES}
    if args.features_only:
        return 0
    print(f"{dataset.summary()}; 2-fold artist-aware CV x {args.partitions} partitions; Keras heads x "
          f"{args.seeds} seeds")
    print("| recipe | clip acc (mean ± sd) | runs | min / max |")
    print("|---|---|---|---|")
    for group in args.rows.split(","):
        for recipe in [r for r in RECIPES[group] if args.only in r.name]:
            scores = cross_validate(recipe, feats, dataset.clips, dataset.labels, range(args.partitions),
                                    list(range(args.seeds)))
            print(f"| {recipe.name} | {np.mean(scores):.3f} ± {np.std(scores):.3f} | {len(scores)} | "
                  f"{min(scores):.3f} / {max(scores):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
