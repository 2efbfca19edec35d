"""Files per second of ``genrenet predict`` vs the classic librosa-feature pipeline, on the same files.

    python -m benchmarks.predict [--files 100] [--repeats 3] [--models cnn,lstm,... | --run RUN] [--tflite]
        [--quantize float16,dynamic,int8] [--runtimes tflite,auto] [--no-export]

Writes ``--files`` synthetic 30-s WAV files (``genrenet.data.synthetic``, 10 styles) into a temporary folder,
then times, in this one process and on the same files:

* ``genrenet predict`` through :class:`genrenet.infer.predict.Predictor`, for each of ``--models``, from the run
  directory and from its exported SavedModel (and, with ``--tflite``, from the ``.tflite`` file): decode +
  resample in tf.data, 3-s windows of many files batched through the model, mean per file. Model loading and
  one warm-up pass are not timed (steady state); the cold numbers (load + first pass) are printed too.
* with ``--runtimes``: the run directory through ``predict --runtime tflite`` / ``auto`` (its model body converted
  once to LiteRT in genrenet's cache; conversion is part of the untimed warm-up); the row says what ran.
  ``--no-export`` leaves out the exports' rows: ``--models cnn,crnn_attention,lstm --runtimes auto --no-export``
  shows Keras against predict's own choice for each model in a few minutes.
* the classic pipeline: ``librosa.load`` → 3-s windows → 20 MFCC, 12 chroma, spectral centroid / bandwidth /
  rolloff / contrast, zero-crossing rate and RMS (mean and std of each over frames) → ``StandardScaler`` +
  ``RandomForestClassifier`` (trained, untimed, on the same features of the first ``--train-files`` files) → mean per file.

The timed passes are interleaved: each of ``--repeats`` rounds runs every method once, the classic pipeline
included, so that a shared machine's busy spells fall on all of them alike. The table shows the median and marks the rows that reach the
target (``TARGET``× the classic pipeline). The ``roof`` column is the most any predictor could reach with
that model here: this machine's float32 matmul throughput (measured in the run) divided by the model's FLOPs per
file as TF's profiler counts them (convolutions and matmuls; not the RFFT, nor ops inside RNN loops, so the roof
is generous). A model whose roof is below the target cannot reach it on this CPU in float32, however fast the
pipeline around it. The models are untrained unless ``--run`` is given (speed
does not depend on the weights). Self-contained: no helpers from elsewhere.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

STYLES = ("ambient", "rock", "disco", "jazz", "techno", "reggae", "folk", "metal", "hiphop", "classical")
WINDOW_SECONDS = 3.0
TARGET = 10.0  # predict at least 10x the files/s of the classic pipeline


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", load avg %.2f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    import tensorflow as tf

    return (f"{cpu}, {os.cpu_count()} logical CPUs{load}; Python {platform.python_version()}, "
            f"TF {tf.__version__}, {platform.system()} {platform.release()}")


def write_files(folder: str, n: int, seconds: float = 30.0) -> list[str]:
    """``n`` synthetic clips of ``seconds`` (10 styles, round-robin), 22.05 kHz 16-bit WAV."""
    import soundfile as sf

    from genrenet.data.synthetic import generate_clip

    paths = []
    for i in range(n):
        style = STYLES[i % len(STYLES)]
        audio = generate_clip(style, seconds, 22050, np.random.default_rng([7, i]))
        path = os.path.join(folder, f"{style}.{i:05d}.wav")
        sf.write(path, audio, 22050, subtype="PCM_16")
        paths.append(path)
    return paths


def minimal_run(folder: str, model: str, labels) -> str:
    """An untrained run directory (model.keras, labels.json, config.json as training writes them)."""
    import json

    import genrenet
    from genrenet.registry import get_spec

    spec = get_spec(model)
    net = genrenet.build_model(model, num_classes=len(labels))
    os.makedirs(folder, exist_ok=True)
    net.save(os.path.join(folder, "model.keras"))
    with open(os.path.join(folder, "labels.json"), "w") as f:
        json.dump(list(labels), f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model": model, "model_kwargs": {}, "num_classes": len(labels),
                   "features": spec.features.to_dict(), "window_seconds": spec.window_seconds,
                   "window_samples": spec.window_samples(),
                   "data": "synthetic:clips=8,seconds=6"}, f)  # what `--runtime tflite` calibrates int8 on
    return folder


# --- the classic pipeline -------------------------------------------------------------------------------------

def window_features(y: np.ndarray, sr: int) -> np.ndarray:
    """Classic GTZAN-style features of one window: mean and std over frames of each descriptor."""
    import librosa

    parts = [
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20),
        librosa.feature.chroma_stft(y=y, sr=sr),
        librosa.feature.spectral_centroid(y=y, sr=sr),
        librosa.feature.spectral_bandwidth(y=y, sr=sr),
        librosa.feature.spectral_rolloff(y=y, sr=sr),
        librosa.feature.spectral_contrast(y=y, sr=sr),
        librosa.feature.zero_crossing_rate(y),
        librosa.feature.rms(y=y),
    ]
    m = np.concatenate(parts, axis=0)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)])


def file_features(path: str, sr: int = 22050) -> np.ndarray:
    """[windows, features] for one file (non-overlapping 3-s windows; a short file is padded)."""
    import librosa

    y, _ = librosa.load(path, sr=sr, mono=True)
    w = int(WINDOW_SECONDS * sr)
    if len(y) < w:
        y = np.pad(y, (0, w - len(y)))
    return np.stack([window_features(y[i * w:(i + 1) * w], sr) for i in range(len(y) // w)])


def classic_predict(files, classifier) -> list[str]:
    out = []
    for f in files:
        probs = classifier.predict_proba(file_features(f)).mean(axis=0)
        out.append(classifier.classes_[int(np.argmax(probs))])
    return out


def train_classic(files):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    feats, labels = [], []
    for f in files:
        x = file_features(f)
        feats.append(x)
        labels += [os.path.basename(f).split(".")[0]] * len(x)
    clf = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=100, random_state=0))
    return clf.fit(np.concatenate(feats), labels)


# --- the compute roof -----------------------------------------------------------------------------------------

def matmul_peak_gflops(repeats: int = 10) -> float:
    """This machine's float32 matmul throughput (2048 x 2048 operands, best of ``repeats``), in GFLOP/s."""
    import tensorflow as tf

    a, b = tf.random.normal([2048, 2048]), tf.random.normal([2048, 2048])
    f = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    f(a, b)
    return 2 * 2048 ** 3 / min(timed(lambda: f(a, b).numpy(), repeats)) / 1e9


def gflop_per_file(run: str, seconds: float) -> float:
    """FLOPs of a ``seconds`` file (its non-overlapping windows) through the run's model, as TF's profiler counts
    them (a lower bound, see above)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    from genrenet.run import Run

    r = Run(run)
    model = r.load_model()
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, r.window_samples], tf.float32)).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    windows = 1 + max(0, int(seconds * r.sample_rate) - r.window_samples) // r.window_samples
    return model_analyzer.profile(graph, options=options).total_float_ops * windows / 1e9


# --- timing ---------------------------------------------------------------------------------------------------

def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def runtime_note(clf) -> str:
    """What ``--runtime`` chose for a run: `` (keras)``, or `` (LiteRT int8 body, 99% windows agree)`` for a run
    converted to LiteRT (its body alone, or the whole model); '' for an export."""
    from genrenet.infer.litert import cached_litert, resolved_runtime

    if clf.kind not in ("run", "preset") or clf.runtime in (None, "keras"):
        return ""
    if resolved_runtime(clf.info, clf.runtime) != "tflite":
        return " (keras)"
    facts = cached_litert(clf.info, verbose=0)[1]
    part = "body" if facts.get("input") == "log-mel" else "whole model"
    agreement = f", {100 * facts['label_agreement']:.0f}% windows agree" if "label_agreement" in facts else ""
    return f" (LiteRT {facts['precision']} {part}{agreement})"


def interleaved(fns, repeats: int) -> list[list[float]]:
    """Times of each of ``fns``, called in turn ``repeats`` times (one round = every fn once), so that a busy
    spell of a shared machine slows every method alike rather than the one that happened to run then."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            out += timed(fn, 1)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=100, help="number of 30-s files (default 100)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each file (default 30)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per method; the median is reported")
    p.add_argument("--models", "--model", default="cnn,lstm", help="comma-separated registered models for untrained "
                   "runs, or 'all' (default cnn,lstm: the article's two first models)")
    p.add_argument("--run", default=None, help="benchmark this run directory instead of untrained models")
    p.add_argument("--train-files", type=int, default=20, help="files whose window features train the classic "
                   "classifier (default 20; not timed)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per model call (default: genrenet's, "
                   "64 windows of 3 s)")
    p.add_argument("--tflite", action="store_true", help="also time the .tflite file (export --tflite)")
    p.add_argument("--quantize", default="", help="also time these quantised .tflite files (export --quantize, "
                   "comma-separated: float16,dynamic,int8; calibrated on the synthetic set)")
    p.add_argument("--runtimes", default="", help="also time the run directory with these `predict --runtime` "
                   "values (comma-separated: tflite,auto; tflite converts once into genrenet's cache, not timed)")
    p.add_argument("--no-export", action="store_true", help="time the run directory only (no SavedModel or .tflite "
                   "rows): with --runtimes auto, the quickest check of predict's own choice")
    p.add_argument("--keep", default=None, help="write the files/run/export here and keep them")
    args = p.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message="Trying to estimate tuning")  # chroma on near-silent windows
    from genrenet.serve.export import export
    from genrenet import Classifier

    work = args.keep or tempfile.mkdtemp(prefix="genrenet-bench-")
    os.makedirs(os.path.join(work, "audio"), exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    t = time.perf_counter()
    files = write_files(os.path.join(work, "audio"), args.files, args.seconds)
    print(f"wrote {len(files)} × {args.seconds:g}-s files to {work}/audio in {time.perf_counter() - t:.1f} s",
          flush=True)

    if args.run:
        runs = [(os.path.basename(os.path.normpath(args.run)), args.run)]
    else:
        from genrenet import list_models

        names = list_models() if args.models == "all" else [m for m in args.models.split(",") if m]
        runs = [(m, minimal_run(os.path.join(work, "runs", m), m, STYLES)) for m in names]
    sources, roof = [], {}
    peak = matmul_peak_gflops()
    print(f"float32 matmul throughput: {peak:.0f} GFLOP/s (the compute roof)", flush=True)
    modes = [m for m in args.quantize.split(",") if m]
    runtimes = [r for r in args.runtimes.split(",") if r and r != "keras"]  # keras: the run dir row
    if runtimes:  # the converted files of these throw-away runs go into the work folder, not the user's cache
        os.environ["GENRENET_CACHE"] = os.path.join(work, "cache")
    for name, run in runs:
        added = [(f"`{name}` run dir", run, "keras")]
        added += [(f"`{name}` run dir --runtime {r}", run, r) for r in runtimes]
        if not args.no_export:
            version = export(run, os.path.join(work, "export", name), force=True, tflite=args.tflite,
                             quantize=modes, calibration_data="synthetic" if modes else None, verbose=0)
            added.append((f"`{name}` SavedModel", version, "auto"))
            if args.tflite or modes:
                added.append((f"`{name}` .tflite", os.path.join(version, "model.tflite"), "auto"))
            added += [(f"`{name}` .tflite {m}", os.path.join(version, f"model-{m}.tflite"), "auto") for m in modes]
        sources += added
        gflop = gflop_per_file(run, args.seconds)
        for label, _, _ in added:
            roof[f"genrenet predict, {label}"] = (gflop, peak / gflop if gflop else float("inf"))

    clfs = []
    for name, source, runtime in sources:
        start = time.perf_counter()
        clf = Classifier.from_preset(source, runtime=runtime, verbose=0)
        clf.predict(files, batch_size=args.batch_size, verbose=0)  # warm-up (traces, caches, conversion)
        clfs.append((f"genrenet predict, {name}{runtime_note(clf)}", clf, time.perf_counter() - start))

    t = time.perf_counter()
    classifier = train_classic(files[:max(len(STYLES), args.train_files)])
    print(f"  classic: trained StandardScaler + RandomForest on the files' window features in "
          f"{time.perf_counter() - t:.1f} s (not timed below)", flush=True)
    methods = [(name, lambda clf=clf: clf.predict(files, batch_size=args.batch_size, verbose=0), cold)
               for name, clf, cold in clfs]
    methods.append(("librosa features + scikit-learn", lambda: classic_predict(files, classifier), None))
    times = interleaved([m[1] for m in methods], args.repeats)
    rows = [(name, statistics.median(t), t, cold) for (name, _, cold), t in zip(methods, times)]
    for name, _, t, cold in rows:
        print(f"  {name}: {[round(x, 2) for x in t]} s" + (f" (cold: load + first pass {cold:.1f} s)"
                                                           if cold is not None else ""), flush=True)

    classic = rows[-1][1]
    print()
    print(f"{len(files)} files × {args.seconds:g} s, median of {args.repeats} interleaved passes; {'run ' + args.run if args.run else 'untrained models'}; "
          f"{os.environ.get('TF_CPU_ALLOCATOR_USE_BFC') and 'BFC allocator' or 'system malloc'}")
    print(f"{'method':<72} {'files/s':>9} {'s/file':>8} {'× classic':>10} {'GFLOP/file':>11} "
          f"{'roof × classic':>15}  target {TARGET:g}×")
    for name, median, _, _ in rows:
        ratio = classic / median
        gflop, bound = roof.get(name.split(" (")[0], (None, None))
        verdict = "" if name.startswith("librosa") else ("met" if ratio >= TARGET else "not met")
        if bound is not None and bound * classic / len(files) < TARGET and ratio < TARGET:
            verdict += " (out of reach in float32 here: roof below target)"
        print(f"{name:<72} {len(files) / median:>9.2f} {median / len(files):>8.4f} {ratio:>10.1f} "
              f"{'' if gflop is None else f'{gflop:.2f}':>11} "
              f"{'' if bound is None else f'{bound * classic / len(files):.1f}':>15}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
