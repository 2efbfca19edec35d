"""Clip accuracy on the 40 real GTZAN dev clips with artist-aware k-fold cross-validation.

    python -m benchmarks.gtzan_dev                       # default: 2 folds, cnn 15 epochs, with/without augmentation
    python -m benchmarks.gtzan_dev --folds 4 --epochs 60 --models cnn,crnn_attention \\
        --augment none,gain,noise,stretch,pitch,specaugment,mixup,gain+noise+specaugment+mixup   # full protocol
    python -m benchmarks.gtzan_dev --protocol defaults --models all --pretrained musicnn:msd,vgg_musicnn:msd \\
        --probe musicnn:msd --json zoo.json              # the model comparison (docs/benchmarks.md)

``--protocol fixed`` trains every network for ``--epochs`` epochs on all training clips (below).
``--protocol defaults`` runs ``genrenet.train`` exactly as the CLI does with its defaults (60 epochs at most,
cosine-decayed learning rate, pitch shift and mixup; on the dev folds' 2 clips per class no validation
hold-out, so the whole schedule runs; frozen backbone + head on cached features for ``--pretrained`` rows), i.e.
``genrenet train MODEL --data 'PATH?folds=K&fold=I'``.
``--probe arch:tag`` is a logistic-regression probe (scikit-learn, standardised) on the pretrained model's
penultimate features averaged over each clip's windows. ``--json`` keeps every finished row; rerunning with the same
file skips rows it already holds, so an interrupted comparison loses nothing.

Protocol. Folds come from :func:`genrenet.data.kfold` (stratified, artist-disjoint; the dev set's single-artist
classes — blues, classical, reggae, rock — are split by clip, so their test clips share the artist with training
clips: the table reports accuracy on all test clips and on the clips whose artist is absent from training).
Every setting sees the same folds. Networks train for a fixed number of epochs (no early stopping: with 20
training clips a validation split would cost half the data, and stopping on the test fold would leak) and are
scored on the test fold by the mean of their 3-s window probabilities. The baseline is the classic
MFCC + chroma + spectral statistics of the whole clip, standardised, into an RBF SVM (librosa + scikit-learn).
Numbers on 40 clips are noisy (one clip = 5 points of a 20-clip fold): read differences of < 10 points as ties.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                            "gtzan_dev")


# ------------------------------------------------------------------------------------------------ baseline
def clip_features(path: str, sr: int = 22050) -> np.ndarray:
    """MFCC(20)+ΔMFCC, chroma, spectral centroid/bandwidth/rolloff/contrast/flatness, ZCR, RMS: mean and std
    over the clip, plus tempo."""
    import librosa

    y, _ = librosa.load(path, sr=sr, mono=True)
    s = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=s**2, sr=sr)), n_mfcc=20)
    frames = [mfcc, librosa.feature.delta(mfcc), librosa.feature.chroma_stft(S=s**2, sr=sr),
              librosa.feature.spectral_centroid(S=s, sr=sr), librosa.feature.spectral_bandwidth(S=s, sr=sr),
              librosa.feature.spectral_rolloff(S=s, sr=sr), librosa.feature.spectral_contrast(S=s, sr=sr),
              librosa.feature.spectral_flatness(S=s), librosa.feature.zero_crossing_rate(y),
              librosa.feature.rms(S=s)]
    stats = [np.concatenate([f.mean(1), f.std(1)]) for f in frames]
    tempo = np.atleast_1d(librosa.feature.tempo(y=y, sr=sr))[:1]
    return np.concatenate(stats + [tempo]).astype(np.float64)


def svm_predict(train_x, train_y, test_x):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = make_pipeline(StandardScaler(), SVC(C=10.0, kernel="rbf", gamma="scale"))
    model.fit(train_x, train_y)
    return model.predict(test_x)


# ------------------------------------------------------------------------------------------------ networks
def train_and_predict(model_name, train_clips, test_clips, labels, *, augment, epochs, seed, batch_size):
    import keras

    from genrenet import registry
    from genrenet.data import Augment, SkipLog, TrainingSpec, training_epochs
    from genrenet.infer.evaluate import evaluate_clips

    keras.utils.set_random_seed(seed)
    aug = Augment.resolve(augment)
    spec = registry.get_spec(model_name)
    net = registry.build_model(model_name, num_classes=len(labels),
                               spec_augment=dict(aug.spec_augment, seed=seed) if aug.spec_augment else None)
    window = int(net.input_shape[-1])
    log = SkipLog()
    batches = TrainingSpec(labels, spec.features.sample_rate, window, batch_size=batch_size, seed=seed, augment=aug)
    ds, steps = training_epochs(train_clips, batches, epochs=epochs, log=log)
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    net.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0)
    metrics, _, y_pred, _ = evaluate_clips(net, labels, test_clips, sample_rate=spec.features.sample_rate,
                                           window_samples=window, batch_size=batch_size, verbose=0,
                                           return_predictions=True)
    return np.asarray(y_pred), net.count_params()


# ------------------------------------------------------------------------------------------------ main
def score(y_true, y_pred, labels, unseen) -> dict:
    from genrenet.infer.evaluate import clip_metrics

    correct = np.asarray(y_true) == np.asarray(y_pred)
    m = clip_metrics(list(y_true), list(y_pred), labels, 0, 0)
    return {"acc": float(correct.mean()), "f1": m["macro_f1"],
            "unseen": float(correct[unseen].mean()) if unseen.any() else float("nan")}


def train_defaults(model_name, data_spec, test_clips, labels, *, seed, pretrained=None):
    """``genrenet train MODEL --data SPEC [--pretrained TAG]`` with every other setting at its default."""
    import tempfile

    from genrenet.infer.evaluate import evaluate_clips
    from genrenet.training.trainer import train

    with tempfile.TemporaryDirectory() as out:
        run = train(model_name, data=data_spec, out=os.path.join(out, "run"), seed=seed, pretrained=pretrained,
                    verbose=0)
        net = run.load_model()
        _, _, y_pred, _ = evaluate_clips(net, run.labels, test_clips, sample_rate=run.sample_rate,
                                         window_samples=run.window_samples, verbose=0, return_predictions=True)
        index = {l: i for i, l in enumerate(labels)}
        return np.array([index[run.labels[p]] if p >= 0 else -1 for p in y_pred]), net.count_params()


def probe_features(arch, tag, clips, labels):
    """Penultimate features of the pretrained ``arch`` (mean over each clip's windows), one row per clip."""
    from genrenet import registry
    from genrenet.nn import penultimate_model
    from genrenet.infer.windows import predict_clips

    model = registry.build_model(arch, num_classes=len(labels), pretrained=tag)
    net = penultimate_model(model)
    mean, _, _ = predict_clips(net, clips, sample_rate=registry.get_spec(arch).features.sample_rate,
                                    window_samples=int(model.input_shape[-1]), verbose=0)
    return mean, net.count_params()


def logistic_probe(train_x, train_y, test_x):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(train_x, train_y)
    return model.predict(test_x)


def load_rows(path):
    import json

    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)["rows"]
    return []


def save_rows(path, rows, meta):
    from genrenet.run import write_json  # atomic: an interrupted run keeps the rows it had

    if path:
        write_json(path, {"meta": meta, "rows": rows})


def print_table(rows):
    print()
    print("| setting | clip acc | macro-F1 | artist unseen | per fold | params | train time / fold |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        res = r["folds"]
        params = f"{r['params'] / 1e6:.2f} M" if r.get("params") else ""
        print(f"| {r['name']} | {np.mean([x['acc'] for x in res]):.3f} | {np.mean([x['f1'] for x in res]):.3f} | "
              f"{np.nanmean([x['unseen'] for x in res]):.3f} | {' / '.join(format(x['acc'], '.2f') for x in res)} | "
              f"{params} | {r['seconds'] / len(res):.0f} s |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="GTZAN-layout folder (default ../shared/data/gtzan_dev)")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--run-folds", type=int, default=None, help="run only the first N folds (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocol", choices=("fixed", "defaults"), default="fixed",
                   help="fixed: --epochs on all training clips; defaults: genrenet.train's defaults")
    p.add_argument("--models", default="cnn", help="comma-separated registered models, 'all', or '' (baseline only)")
    p.add_argument("--augment", default="none,gain+noise+specaugment+mixup",
                   help="fixed protocol: comma-separated settings; techniques within a setting joined by '+'")
    p.add_argument("--pretrained", default="", help="defaults protocol: comma-separated arch:tag rows, "
                                                     "e.g. musicnn:msd")
    p.add_argument("--probe", default="", help="comma-separated arch:tag logistic-regression probes")
    p.add_argument("--epochs", type=int, default=15, help="fixed protocol: epochs per network")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", default=None, help="keep finished rows here; rows already in it are skipped")
    args = p.parse_args(argv)

    from genrenet import list_models
    from genrenet.data import kfold, load_dataset

    data = os.path.normpath(args.data)
    dataset = load_dataset(data)
    labels = dataset.labels
    folds, notes = kfold(dataset.clips, args.folds, args.seed)
    print(f"{dataset.summary()}; {args.folds}-fold artist-aware CV (seed {args.seed}), protocol {args.protocol}")
    for n in notes:
        print(f"note: {n}")
    run_folds = list(range(args.run_folds or args.folds))
    index = {l: i for i, l in enumerate(labels)}
    meta = {"data": data, "folds": args.folds, "run_folds": run_folds, "seed": args.seed}
    rows = load_rows(args.json)
    done = {r["name"] for r in rows}

    def split(f):
        test = folds[f]
        train = [c for g, part in enumerate(folds) if g != f for c in part]
        unseen = np.array([c.group not in {t.group for t in train} for c in test])
        return train, test, unseen

    def run_row(name, fold_fn):
        """fold_fn(f, train, test) -> (predicted label ids, params); the row is saved as soon as it is done."""
        if name in done:
            print(f"{name}: already in {args.json}")
            return
        res, t1 = [], time.time()
        for f in run_folds:
            train, test, unseen = split(f)
            y_pred, params = fold_fn(f, train, test)
            res.append(score([index[c.label] for c in test], y_pred, labels, unseen))
        rows.append({"name": name, "folds": res, "seconds": time.time() - t1, "params": params})
        save_rows(args.json, rows, meta)
        print(f"{name}: clip acc {np.mean([r['acc'] for r in res]):.3f} ({time.time() - t1:.0f} s)", flush=True)

    cache = {}

    def svm_fold(f, train, test):
        if not cache:
            cache.update({c.id: clip_features(c.path) for c in dataset.clips})
        pred = svm_predict(np.stack([cache[c.id] for c in train]), [c.label for c in train],
                           np.stack([cache[c.id] for c in test]))
        return [index[x] for x in pred], None

    run_row("MFCC + chroma + spectral statistics → SVM", svm_fold)

    for item in filter(None, args.probe.split(",")):
        arch, tag = item.split(":")
        probe = {}  # features of every clip, computed once for all folds

        def probe_fold(f, train, test, arch=arch, tag=tag, probe=probe):
            if not probe:
                x, probe["params"] = probe_features(arch, tag, dataset.clips, labels)
                probe["x"] = {c.id: v for c, v in zip(dataset.clips, x)}
            pred = logistic_probe(np.stack([probe["x"][c.id] for c in train]), [c.label for c in train],
                                  np.stack([probe["x"][c.id] for c in test]))
            return [index[x] for x in pred], probe["params"]

        run_row(f"`{arch}` {tag} penultimate features → logistic regression", probe_fold)

    models = list_models() if args.models == "all" else list(filter(None, args.models.split(",")))
    spec = lambda f: f"{data}?folds={args.folds}&fold={f}&seed={args.seed}"  # noqa: E731
    if args.protocol == "defaults":
        for item in filter(None, args.pretrained.split(",")):
            arch, tag = item.split(":")
            run_row(f"`{arch}` pretrained {tag}, defaults", lambda f, train, test, arch=arch, tag=tag:
                    train_defaults(arch, spec(f), test, labels, seed=args.seed, pretrained=tag))
        for model_name in models:
            run_row(f"`{model_name}`, defaults", lambda f, train, test, m=model_name:
                    train_defaults(m, spec(f), test, labels, seed=args.seed))
    else:
        for model_name in models:
            for setting in args.augment.split(","):
                augment = [] if setting == "none" else setting.split("+")

                run_row(f"`{model_name}` {args.epochs} ep, augment={setting}", lambda f, train, test, m=model_name,
                        augment=augment: train_and_predict(m, train, test, labels, augment=augment,
                                                           epochs=args.epochs, seed=args.seed,
                                                           batch_size=args.batch_size))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
