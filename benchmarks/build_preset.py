"""Rebuild the default preset ``musicnn-msd-gtzan`` from the 40 GTZAN dev clips, reproducibly.

    python -m benchmarks.build_preset                   # ../shared/data/gtzan_dev → genrenet/presets/musicnn-msd-gtzan

Three steps, all with seed 0 and deterministic TF ops:

1. the recipe's cross-validated accuracy: ``genrenet train musicnn --pretrained msd --data
   'gtzan_dev?folds=2&fold=I' --seed 0`` for I = 0, 1, each scored on its held-out fold (the same
   2-fold artist-aware CV as ``benchmarks/gtzan_dev.py``), and the same head trained on cached backbone
   features over 5 fold partitions × 3 head seeds (``benchmarks/transfer_recipe.py``): the preset's accuracy
   is the mean of those 15 runs, as one partition of 40 clips is a coarse estimate;
2. the preset's head: the same command on all 40 clips;
3. packaging: the run's ``config.json``, ``labels.json``, ``metrics.json`` (with the CV accuracy added) and
   ``calibration.json`` (the temperature training fits on the head's out-of-fold predictions: 4 folds × 3
   shuffles of the 40 clips, with the ECE measured on each fold under the temperature of the other folds), its
   ``probabilities`` layer as ``head.npz``, ``preset.json`` and the model card ``README.md``. The packaged
   preset is then rebuilt from the shipped musicnn weights and checked against the trained run's model.

Two builds give identical files. ``--reuse-cv`` keeps step 1's figures from the preset's ``metrics.json`` (for a
rebuild that changes only steps 2 and 3).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.gtzan_dev import DEFAULT_DATA, score, train_defaults  # noqa: E402
from benchmarks.transfer_recipe import DEFAULT_CACHE, RECIPES, backbone_features, cross_validate as repeated_cv  # noqa: E402,E501

NAME = "musicnn-msd-gtzan"
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "genrenet", "presets", NAME)
SEED = 0
COMMAND = f"genrenet train musicnn --pretrained msd --data ../shared/data/gtzan_dev --seed {SEED} --deterministic"
PARTITIONS, SEEDS = 5, 3


def cross_validate(data: str, dataset) -> dict:
    """Step 1: the recipe's 2-fold artist-aware CV accuracy (seed 0)."""
    from genrenet.data import kfold

    labels = dataset.labels
    index = {l: i for i, l in enumerate(labels)}
    folds, _ = kfold(dataset.clips, 2, SEED)
    per_fold = []
    for f, test in enumerate(folds):
        train_groups = {c.group for g, part in enumerate(folds) if g != f for c in part}
        unseen = np.array([c.group not in train_groups for c in test])
        y_pred, _ = train_defaults("musicnn", f"{data}?folds=2&fold={f}&seed={SEED}", test, labels, seed=SEED,
                                   pretrained="msd")
        per_fold.append(score([index[c.label] for c in test], y_pred, labels, unseen))
        print(f"fold {f}: clip accuracy {per_fold[-1]['acc']:.3f}", flush=True)
    recipe = RECIPES["heads"][0]  # the Keras head on non-overlapping windows of musicnn msd: train's default
    feats = {"musicnn:msd": backbone_features("musicnn:msd", dataset.clips, DEFAULT_CACHE)}
    runs = repeated_cv(recipe, feats, dataset.clips, labels, range(PARTITIONS), list(range(SEEDS)))
    print(f"{len(runs)} runs: {np.mean(runs):.3f} ± {np.std(runs):.3f}", flush=True)
    return {"protocol": f"mean of {len(runs)} runs of 2-fold artist-aware cross-validation on the 40 training "
                        f"clips ({PARTITIONS} fold partitions × {SEEDS} head seeds; sd {np.std(runs):.3f})",
            "clip_accuracy": float(np.mean(runs)), "clip_accuracy_sd": float(np.std(runs)), "runs": runs,
            "seed0_protocol": "2-fold artist-aware cross-validation (genrenet.data.kfold, seed 0), full training "
                              "runs, as in the README's table",
            "seed0_clip_accuracy": float(np.mean([r["acc"] for r in per_fold])),
            "macro_f1": float(np.mean([r["f1"] for r in per_fold])),
            "artist_unseen_accuracy": float(np.nanmean([r["unseen"] for r in per_fold])),
            "per_fold": [r["acc"] for r in per_fold]}


def calibration_text(calibration: dict) -> str:
    """The card's paragraph on how sure the preset says it is, and how that was measured."""
    crossed = calibration["cross_fitted"]
    return (f"**Calibration: ECE {crossed['ece']:.3f}** (15 bins), measured on {calibration['fitted_on']}, each "
            "fold tempered by the temperature fitted on the other folds; "
            f"a perfectly calibrated model would measure {calibration['ece_floor']:.3f} on as many predictions "
            f"(most bins hold a few clips), and the mean top probability is within "
            f"{calibration['confidence_gap']:.3f} of the accuracy. Before calibration: ECE "
            f"{calibration['before']['ece']:.3f}, NLL {calibration['before']['nll']:.3f}; after: NLL "
            f"{calibration['after']['nll']:.3f}. Probabilities are tempered with T = "
            f"{calibration['temperature']:.3f}; a prediction below {calibration['min_confidence']:.2f} is marked "
            "`uncertain` (\"unsure: rock or blues\").")


def model_card(config: dict, labels: list, cv: dict, parameters: int, calibration: dict) -> str:
    """The preset's README.md."""
    acc = cv["clip_accuracy"]
    return f"""# {NAME}

A ready-to-run 10-genre classifier: `genrenet predict song.mp3` (the default preset), `genrenet predict {NAME}
FILES`, `genrenet.load_preset("{NAME}")`.

**Labels**: {", ".join(labels)}.

**Model.** `musicnn` (Pons & Serra 2019) with its weights pretrained on the Million Song Dataset (50 Last.fm
tags), frozen (the musicnn 0.1.0 weights shipped with genrenet, ISC licence), plus a new
softmax head ({config["model"]["hyperparameters"].get("dropout", 0.5)} dropout → Dense 200 → 10) trained by genrenet
(`head = {config["training"]["head"]}`). {parameters:,} parameters; the preset adds only the head (2,010 weights); the
backbone is rebuilt from genrenet's shipped musicnn weights when the preset is first used. Input: audio at any rate and
length, resampled to 16 kHz, cut into non-overlapping 2.976-s windows; a file's genre is the mean of its
windows' probabilities.

**Training data: exactly 40 clips.** The head was trained on the 40 GTZAN clips of `gtzan_dev` (files
`<genre>.00000`–`<genre>.00003` of each of the 10 genres, 30 s each), nothing else. Artists are concentrated:
every blues clip is John Lee Hooker, every reggae clip Bob Marley, every rock clip Morphine.

**Measured accuracy: {acc:.2f} ± {cv["clip_accuracy_sd"]:.2f}** clip accuracy: {cv["protocol"]}. On the
single partition of the README's table (seed 0, full `genrenet train` runs): {cv["seed0_clip_accuracy"]:.2f}
(per fold {" / ".join(f"{a:.2f}" for a in cv["per_fold"])}; macro-F1 {cv["macro_f1"]:.2f};
{cv["artist_unseen_accuracy"]:.2f} on test clips whose artist was not in training). A fold holds 20 clips, so one
clip is 5 points: treat these as rough estimates on very little music, not benchmark results. The recipe was
chosen among frozen-backbone recipes (head, backbones, windows) by `python -m benchmarks.transfer_recipe`.

{calibration_text(calibration)}

**Limits.** GTZAN is a research dataset with known faults (Sturm 2013, "The GTZAN dataset: its contents, its
faults, their effects on evaluation, and the future use", arXiv:1306.1461): repeated clips, mislabelled clips,
distortions, and strong artist repetition. Its ten genres are a narrow, dated view of music, and 40 clips are
very little: expect lower accuracy on other music, and any song outside these ten genres is still put into one
of them. Train your own head on your own music for anything that matters:
`genrenet train musicnn --pretrained msd --data YOUR_FOLDERS`.

**Licences.** musicnn weights: ISC. GTZAN audio: distributed for research; no audio ships with genrenet, only the
trained head weights.

**Rebuild**: `python -m benchmarks.build_preset` (seed {SEED}, deterministic TF ops: two builds give identical
files). The final training run is `{COMMAND}`.
"""


def package(run, out: str, cv: dict):
    """Step 3: write the preset folder from the trained run."""
    from genrenet.run import RunWriter

    model = run.load_model()
    kernel, bias = model.get_layer("probabilities").get_weights()
    config = {**run.config, "data": {**run.config["data"], "spec": "gtzan_dev (40 GTZAN clips, 4 per genre)"},
              "run": {**run.config["run"], "command": COMMAND}}
    metrics = dict(run.metrics, cross_validation=cv)
    calibration = run.calibration
    shutil.rmtree(out, ignore_errors=True)
    writer = RunWriter(out)
    writer.json("config.json", config)
    writer.json("labels.json", run.labels)
    writer.json("metrics.json", metrics)
    writer.json("preset.json", {
        "summary": "10 GTZAN genres from any audio, no training needed: pretrained musicnn (MSD) + a head "
                   "trained on 40 GTZAN clips",
        "training_data": "the 40 GTZAN clips of gtzan_dev (4 per genre, 10 genres; a research dataset with known "
                         "faults, Sturm 2013)",
        "accuracy": cv["clip_accuracy"], "accuracy_protocol": cv["protocol"],
        "ece": calibration["cross_fitted"]["ece"],
        "ece_protocol": f"15-bin ECE of the {calibration['fitted_on']}, each fold tempered by the temperature "
                        "fitted on the other folds; a perfectly calibrated model would measure "
                        f"{calibration['ece_floor']:.3f} on as many predictions",
        "parameters": int(model.count_params()), "weights": "shipped with genrenet (genrenet/models/weights/msd_musicnn.npz, ISC licence)",
        "rebuild": "python -m benchmarks.build_preset"})
    writer.text("README.md", model_card(config, run.labels, cv, int(model.count_params()), calibration))
    writer.json("calibration.json", calibration)
    with open(writer.file("head.npz"), "wb") as f:
        np.savez(f, kernel=kernel, bias=bias)
    return model


def check(model, name: str, clips, run):
    """The preset rebuilt from the package data predicts what the trained run's model predicts."""
    from genrenet.infer.windows import predict_clips
    from genrenet.presets import load_preset

    kw = dict(sample_rate=run.sample_rate, window_samples=run.window_samples, verbose=0)
    want = predict_clips(model, clips, **kw)[0]
    got = predict_clips(load_preset(name), clips, **kw)[0]
    print(f"preset rebuilt from package data: max |Δp| = {np.abs(want - got).max():.2e} on {len(clips)} clips")
    assert np.allclose(want, got, atol=1e-5)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--out", default=OUT, help=f"preset folder (default {OUT})")
    p.add_argument("--reuse-cv", action="store_true",
                   help="keep the cross-validation figures of the preset's metrics.json instead of running step 1")
    args = p.parse_args(argv)
    from genrenet.data import load_dataset
    from genrenet.training.trainer import train

    data = os.path.normpath(args.data)
    dataset = load_dataset(data)
    if args.reuse_cv:
        with open(os.path.join(args.out, "metrics.json"), encoding="utf-8") as f:
            cv = json.load(f)["cross_validation"]
    else:
        cv = cross_validate(data, dataset)
    with tempfile.TemporaryDirectory() as tmp:
        run = train("musicnn", data=data, out=os.path.join(tmp, "run"), pretrained="msd", seed=SEED,
                    deterministic=True, verbose=0)
        model = package(run, args.out, cv)
        check(model, os.path.basename(args.out), dataset.clips[::8], run)
    print(f"wrote {args.out}: CV clip accuracy {cv['clip_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
