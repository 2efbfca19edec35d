"""Clip accuracy on the 40 real GTZAN dev clips with artist-aware k-fold cross-validation.

    python -m benchmarks.gtzan_dev                       # default: 2 folds, cnn 15 epochs, with/without augmentation
    python -m benchmarks.gtzan_dev --folds 4 --epochs 60 --models cnn,crnn_attention \\
        --augment none,gain,noise,stretch,pitch,specaugment,mixup,gain+noise+specaugment+mixup   # full protocol

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
    from genrenet.data import Augment, SkipLog, training_dataset
    from genrenet.evaluation import evaluate_clips
    from genrenet.layers import spec_augment_scope

    keras.utils.set_random_seed(seed)
    aug = Augment.resolve(augment)
    spec = registry.get_spec(model_name)
    with spec_augment_scope(dict(aug.spec_augment, seed=seed) if aug.spec_augment else None):
        net = registry.build_model(model_name, num_classes=len(labels))
    window = int(net.input_shape[-1])
    log = SkipLog()
    ds = training_dataset(train_clips, labels, sample_rate=spec.features.sample_rate, window_samples=window,
                          batch_size=batch_size, seed=seed, augment=aug, log=log)
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    hist = net.fit(ds, epochs=epochs, verbose=0)
    metrics, _, y_pred, _ = evaluate_clips(net, labels, test_clips, sample_rate=spec.features.sample_rate,
                                           window_samples=window, batch_size=batch_size, verbose=0,
                                           return_predictions=True)
    return np.asarray(y_pred), float(hist.history["accuracy"][-1])


# ------------------------------------------------------------------------------------------------ main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="GTZAN-layout folder (default ../shared/data/gtzan_dev)")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--run-folds", type=int, default=None, help="run only the first N folds (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default="cnn", help="comma-separated registered models ('' = baseline only)")
    p.add_argument("--augment", default="none,gain+noise+specaugment+mixup",
                   help="comma-separated settings; techniques within a setting joined by '+'")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)

    from genrenet.data import kfold, load_dataset

    dataset = load_dataset(os.path.normpath(args.data))
    labels = dataset.labels
    folds, notes = kfold(dataset.clips, args.folds, args.seed)
    print(f"{dataset.summary()}; {args.folds}-fold artist-aware CV (seed {args.seed})")
    for n in notes:
        print(f"note: {n}")
    run_folds = range(args.run_folds or args.folds)
    index = {l: i for i, l in enumerate(labels)}

    def split(f):
        test = folds[f]
        train = [c for g, part in enumerate(folds) if g != f for c in part]
        unseen = np.array([c.group not in {t.group for t in train} for c in test])
        return train, test, unseen

    rows = []  # (name, acc all, acc artist-unseen, seconds, train acc)

    t0 = time.time()
    feats = {c.id: clip_features(c.path) for c in dataset.clips}
    feat_time = time.time() - t0
    res = []
    for f in run_folds:
        train, test, unseen = split(f)
        pred = svm_predict(np.stack([feats[c.id] for c in train]), [c.label for c in train],
                           np.stack([feats[c.id] for c in test]))
        correct = np.array([a == c.label for a, c in zip(pred, test)])
        res.append((correct.mean(), correct[unseen].mean() if unseen.any() else np.nan, unseen.sum()))
    rows.append(("mfcc+chroma+spectral SVM", res, time.time() - t0, None))
    print(f"baseline done ({feat_time:.0f} s of feature extraction)", flush=True)

    for model_name in filter(None, args.models.split(",")):
        for setting in args.augment.split(","):
            augment = [] if setting == "none" else setting.split("+")
            res, t1, train_accs = [], time.time(), []
            for f in run_folds:
                train, test, unseen = split(f)
                y_pred, train_acc = train_and_predict(model_name, train, test, labels, augment=augment,
                                                      epochs=args.epochs, seed=args.seed,
                                                      batch_size=args.batch_size)
                truth = np.array([index[c.label] for c in test])
                correct = y_pred == truth
                res.append((correct.mean(), correct[unseen].mean() if unseen.any() else np.nan, unseen.sum()))
                train_accs.append(train_acc)
            name = f"{model_name} {args.epochs} ep, augment={setting}"
            rows.append((name, res, time.time() - t1, float(np.mean(train_accs))))
            print(f"{name}: {np.mean([r[0] for r in res]):.3f} ({time.time() - t1:.0f} s)", flush=True)

    print()
    print(f"| setting | clip acc (all test clips) | clip acc (artist unseen in training, n={int(res[0][2])}/fold) "
          "| per fold | train window acc (last epoch) | time |")
    print("|---|---|---|---|---|---|")
    for name, res, seconds, train_acc in rows:
        accs = [r[0] for r in res]
        unseen = [r[1] for r in res]
        print(f"| {name} | {np.mean(accs):.3f} | {np.nanmean(unseen):.3f} | "
              f"{' / '.join(f'{a:.2f}' for a in accs)} | {'' if train_acc is None else f'{train_acc:.2f}'} | "
              f"{seconds:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
