"""The from-scratch recipe on small data: one lever at a time, artist-aware CV on the 40 GTZAN dev clips.

    python -m benchmarks.scratch_recipe --rows pitch_mixup,mixup --partitions 3 --seeds 3   # train what is missing
    python -m benchmarks.scratch_recipe --workers 2          # two training processes of one thread each
    python -m benchmarks.scratch_recipe --report             # the table from the results kept so far

Every run is ``genrenet.train(MODEL, 'gtzan_dev?folds=K&fold=F&seed=P', seed=S, **settings)`` with a row's
settings (:data:`ROWS`; all else at its default). Protocol: artist-aware K-fold CV (``--folds``, default 2;
:func:`genrenet.data.kfold`) over ``--partitions`` fold partitions (seeds 0..P-1), each with ``--seeds`` training
seeds; a clip is the mean of its 3-s window probabilities. A run's test-fold probabilities are kept in
``--results`` (one JSON file per model, lever, folds, partition, seed and fold), so an interrupted comparison
resumes where it stopped and the seed-ensemble row (the mean of the seeds' probabilities, per partition) needs no
extra training.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.gtzan_dev import DEFAULT_DATA  # noqa: E402

ROWS = {  # every row names its augmentation, so a row means the same settings whatever the defaults are
    "pitch_mixup": {"augment": "pitch,mixup"},
    "mixup": {"augment": "mixup"},
    "patience10": {"augment": "mixup", "patience": 10},
    "epochs120": {"augment": "mixup", "epochs": 120},
    "epochs120_patience10": {"augment": "mixup", "epochs": 120, "patience": 10},
    "crops20": {"augment": "mixup", "crops_per_clip": 20},
    "specaugment_mixup": {"augment": "specaugment,mixup", "patience": 10},
    "label_smoothing": {"augment": "mixup", "label_smoothing": 0.1, "patience": 10},
    "pitch_always": {"augment": {"pitch": {"p": 1.0}, "mixup": {}}},
    "pitch_stretch_mixup": {"augment": "stretch,pitch,mixup"},
    "pitch_crops20": {"augment": "pitch,mixup", "crops_per_clip": 20},
    "pitch_dropout50": {"augment": "pitch,mixup", "model_kwargs": {"dropout": 0.5}},
    "pitch_narrow": {"augment": "pitch,mixup", "model_kwargs": {"filters": [16, 32, 48, 64]}},
    "pitch_lr3e-3": {"augment": "pitch,mixup", "learning_rate": 3e-3},
}
DESCRIPTIONS = {
    "pitch_mixup": "**defaults**: 60 epochs, cosine learning rate, pitch shift (±2 semitones, half the windows) + "
                   "mixup, the whole schedule",
    "mixup": "mixup without pitch shift",
    "patience10": "mixup; early stopping on the training loss (patience 10)",
    "epochs120": "mixup; 120 epochs",
    "epochs120_patience10": "mixup; 120 epochs, early stopping on the training loss (patience 10)",
    "crops20": "mixup; 20 random crops per clip and epoch instead of 10 (clip length / window)",
    "specaugment_mixup": "SpecAugment + mixup, early stopping on the training loss (patience 10)",
    "label_smoothing": "mixup; label smoothing 0.1, early stopping on the training loss (patience 10)",
    "pitch_always": "pitch shift on every window instead of half + mixup",
    "pitch_stretch_mixup": "pitch shift and time stretch (0.9–1.1), each on half the windows, + mixup",
    "pitch_crops20": "pitch shift + mixup, 20 crops per clip and epoch",
    "pitch_dropout50": "pitch shift + mixup; dropout 0.5 instead of 0.3",
    "pitch_narrow": "pitch shift + mixup; half the convolution filters (16, 32, 48, 64)",
    "pitch_lr3e-3": "pitch shift + mixup; learning rate 3e-3 instead of 1e-3",
}
DEFAULT_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "scratch_recipe")


def result_path(results, model, row, k, partition, seed, fold):
    folds = "" if k == 2 else f"-k{k}"
    return os.path.join(results, f"{model}-{row}{folds}-p{partition}-s{seed}-f{fold}.json")


def train_fold(data, model, row, k, partition, seed, fold, results):
    """Train one fold with the lever's settings and keep the test clips' probabilities."""
    from genrenet.data import kfold, load_dataset
    from genrenet.infer.windows import predict_clips
    from genrenet.run import write_json
    from genrenet.training.trainer import train

    dataset = load_dataset(data)
    folds, _ = kfold(dataset.clips, k, partition)
    test = folds[fold]
    t0 = time.time()
    with tempfile.TemporaryDirectory() as out:
        run = train(model, data=f"{data}?folds={k}&fold={fold}&seed={partition}", out=os.path.join(out, "run"),
                    seed=seed, verbose=0, **ROWS[row])
        net = run.load_model()
        mean, _, _ = predict_clips(net, test, sample_rate=run.sample_rate, window_samples=run.window_samples,
                                   verbose=0)
        overlapping, _, _ = predict_clips(net, test, sample_rate=run.sample_rate, window_samples=run.window_samples,
                                          hop_samples=run.window_samples // 2, verbose=0)
        epochs, labels = run.metrics["epochs_run"], run.labels
    index = {l: i for i, l in enumerate(labels)}
    trained_groups = {c.group for f, part in enumerate(folds) if f != fold for c in part}
    write_json(result_path(results, model, row, k, partition, seed, fold), {
        "model": model, "row": row, "settings": ROWS[row], "folds": k, "partition": partition, "seed": seed,
        "fold": fold, "labels": labels, "clips": [c.id for c in test], "truth": [index[c.label] for c in test],
        "groups_unseen": [c.group not in trained_groups for c in test],
        "probabilities": np.asarray(mean).tolist(), "probabilities_half_hop": np.asarray(overlapping).tolist(),
        "seconds": time.time() - t0, "epochs_run": epochs})
    print(f"{model} {row} {k}-fold partition {partition} seed {seed} fold {fold}: {time.time() - t0:.0f} s",
          flush=True)


def pending_jobs(args):
    rows = args.rows.split(",")
    jobs = []
    for seed in range(args.seeds):  # seed 0 of every row first: a short budget still covers every lever
        for row in rows:
            for p in range(args.partitions):
                for f in range(args.folds):
                    if not os.path.exists(result_path(args.results, args.model, row, args.folds, p, seed, f)):
                        jobs.append((row, p, seed, f))
    return jobs


def run_jobs(args):
    """Train every missing run, ``--workers`` processes at a time (one TF thread each when more than one)."""
    jobs = pending_jobs(args)
    print(f"{len(jobs)} runs to train", flush=True)
    env = dict(os.environ)
    if args.workers > 1:
        env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1")
    running = {}  # process -> the run it trains
    while jobs or running:
        while jobs and len(running) < args.workers:
            row, p, s, f = job = jobs.pop(0)
            if os.path.exists(result_path(args.results, args.model, row, args.folds, p, s, f)):
                continue  # finished meanwhile by another process
            cmd = [sys.executable, "-m", "benchmarks.scratch_recipe", "--one", f"{row},{p},{s},{f}",
                   "--folds", str(args.folds), "--model", args.model, "--data", args.data, "--results", args.results]
            running[subprocess.Popen(cmd, env=env)] = job
        time.sleep(2)
        for proc in [r for r in running if r.poll() is not None]:
            row, p, s, f = running.pop(proc)
            if proc.returncode:
                print(f"a run failed ({row}, {args.folds}-fold partition {p} seed {s} fold {f}): exit "
                      f"{proc.returncode}", flush=True)


def load_results(results, model):
    out = {}
    for path in glob.glob(os.path.join(results, f"{model}-*.json")):
        with open(path) as f:
            r = json.load(f)
        out.setdefault((r["row"], r.get("folds", 2)), {}).setdefault((r["partition"], r["seed"]), []).append(r)
    return out


def accuracy(folds, key="probabilities", probs=None):
    """``(clip accuracy, artist-unseen accuracy)`` over a partition's folds, from each fold's ``key``
    probabilities (or ``probs``, one array per fold)."""
    correct, unseen = [], []
    for i, r in enumerate(sorted(folds, key=lambda r: r["fold"])):
        p = np.asarray(probs[i] if probs is not None else r[key])
        correct.extend(p.argmax(1) == np.asarray(r["truth"]))
        unseen.extend(r["groups_unseen"])
    correct, unseen = np.array(correct), np.array(unseen)
    return float(correct.mean()), float(correct[unseen].mean())


def table_row(name, accs, extra=""):
    a, u = np.array(accs).T
    return (f"| {name} | {a.mean():.3f} ± {a.std():.3f} | {u.mean():.3f} | {len(a)} | {a.min():.3f} / {a.max():.3f} |"
            f" {extra} |")


def report(args):
    """The table: per lever its runs (partition × seed), the same runs scored on half-hop test windows, and
    per partition the ensemble of its seeds."""
    results = load_results(args.results, args.model)
    print(f"| `{args.model}` setting | clip acc (mean ± sd) | artist unseen | runs | min / max | epochs run |")
    print("|---|---|---|---|---|---|")
    known = [key for key in results if key[0] in ROWS]  # rows since dropped from ROWS are not reported
    for row, k in sorted(known, key=lambda key: (key[1], list(ROWS).index(key[0]))):
        runs = {key: v for key, v in results[row, k].items() if len(v) == k}
        if not runs:
            continue
        name = DESCRIPTIONS[row] + ("" if k == 2 else f"; {k}-fold CV ({k - 1}/{k} of the clips train)")
        epochs = np.mean([r["epochs_run"] for v in runs.values() for r in v])
        print(table_row(name, [accuracy(v) for v in runs.values()], f"{epochs:.0f}"))
        hop = [v for v in runs.values() if all("probabilities_half_hop" in r for r in v)]
        if hop:
            print(table_row(f"{name}; test windows at half-window hop", [accuracy(v, "probabilities_half_hop")
                                                                          for v in hop]))
        ensembles = seed_ensembles(runs, k)
        if ensembles:
            print(table_row(f"{name}; mean of {ensembles[0]} seeds' probabilities", ensembles[1]))


def seed_ensembles(runs, k):
    """``(seeds, accuracies)``: per partition with 2+ seeds, the accuracy of the mean of its seeds'
    probabilities (partitions with fewer seeds than the most any has are left out)."""
    by_partition = {}
    for (p, _), folds in sorted(runs.items()):
        by_partition.setdefault(p, []).append(sorted(folds, key=lambda r: r["fold"]))
    most = max(len(v) for v in by_partition.values())
    if most < 2:
        return None
    accs = [accuracy(seeds[0], probs=[np.mean([np.asarray(s[f]["probabilities"]) for s in seeds], axis=0)
                                      for f in range(k)])
            for seeds in by_partition.values() if len(seeds) == most]
    return most, accs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.normpath(DEFAULT_DATA))
    p.add_argument("--model", default="crnn_attention")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated levers from {', '.join(ROWS)}")
    p.add_argument("--folds", type=int, default=2, help="k of the artist-aware k-fold CV (default 2)")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--results", default=DEFAULT_RESULTS)
    p.add_argument("--report", action="store_true", help="only print the table of the kept results")
    p.add_argument("--one", help=argparse.SUPPRESS)  # ROW,PARTITION,SEED,FOLD: one run (worker process)
    args = p.parse_args(argv)
    if args.one:
        row, part, seed, fold = args.one.split(",")
        train_fold(args.data, args.model, row, args.folds, int(part), int(seed), int(fold), args.results)
        return 0
    if not args.report:
        from benchmarks._util import print_machine

        print_machine("scratch_recipe")
        run_jobs(args)
    report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
