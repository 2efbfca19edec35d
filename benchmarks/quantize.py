"""Size, latency and fidelity of quantised TFLite exports against float32, on the real GTZAN dev clips.

    python -m benchmarks.quantize [--models cnn,lstm,crnn_attention] [--run NAME=RUN ...] [--preset]
                                  [--data ../shared/data/gtzan_dev] [--repeats 30]

For every source (an untrained article model per ``--models``, each ``--run``, and with ``--preset`` the default
preset) it exports ``float16``, ``dynamic`` and ``int8`` files next to the float32 ``model.tflite``
(``genrenet export --quantize``, calibrated on windows of ``--data``) and prints, per file:

* size, and the ratio to the float32 file;
* per-window latency: one window per ``invoke`` of a LiteRT interpreter (XNNPACK) with 1 and 2 threads,
  median of ``--repeats`` calls after a warm-up;
* against the float32 Keras model on every dev clip (``genrenet predict``, windows averaged per clip): the share
  of clips with the same label, and the largest probability difference;
* clip accuracy on the dev clips (their folder is the genre).

The dev clips are the preset's training data and, for ``--run`` trained on them, partly training data: accuracy
there says how much quantisation costs, not how good the model is. Untrained models (``--models``) measure
numerical fidelity only (their probabilities are near-uniform, so label agreement is a harsh test).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks.predict import machine, minimal_run

MODES = ("float16", "dynamic", "int8")
DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "gtzan_dev")


def latency_ms(path: str, threads: int, repeats: int) -> float:
    """Median milliseconds of one ``invoke`` on one window."""
    from genrenet.infer.source import tflite_interpreter

    it = tflite_interpreter(path, num_threads=threads)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    window = (0.1 * np.random.default_rng(0).standard_normal(inp["shape"])).astype(np.float32)
    it.set_tensor(inp["index"], window)
    it.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def clip_rows(source, files) -> dict:
    """``{file: (label, probabilities)}`` of ``genrenet predict`` on ``files``."""
    import genrenet

    clf = genrenet.Classifier.from_preset(source, verbose=0)
    out = {}
    for row in clf.predict(files, verbose=0):
        if "error" not in row:
            out[row["file"]] = (row["label"], np.array([row["probabilities"][l] for l in clf.labels]))
    return out


def compare(reference: dict, got: dict) -> tuple:
    """(share of clips with the reference's label, largest probability difference, accuracy)."""
    files = sorted(reference)
    same = np.mean([got[f][0] == reference[f][0] for f in files])
    diff = max(float(np.abs(got[f][1] - reference[f][1]).max()) for f in files)
    truth = [os.path.basename(os.path.dirname(f)) for f in files]
    accuracy = np.mean([got[f][0] == t for f, t in zip(files, truth)])
    return float(same), diff, float(accuracy)


def bench_source(name: str, source: str, work: str, data: str, files: list, repeats: int) -> list:
    """Table rows (name, file, size, ratio, ms@1, ms@2, agreement, max diff, accuracy) for one source."""
    from genrenet.serve.export import export

    t = time.perf_counter()
    version = export(source, os.path.join(work, "export", name), force=True, quantize=",".join(MODES),
                     calibration_data=data, verbose=0)
    print(f"  {name}: exported float32 + {', '.join(MODES)} in {time.perf_counter() - t:.0f} s", flush=True)
    reference = clip_rows(source, files)
    rows = []
    full = os.path.getsize(os.path.join(version, "model.tflite"))
    for mode in ("float32",) + MODES:
        path = os.path.join(version, "model.tflite" if mode == "float32" else f"model-{mode}.tflite")
        size = os.path.getsize(path)
        ms = [latency_ms(path, threads, repeats) for threads in (1, 2)]
        same, diff, accuracy = compare(reference, clip_rows(path, files))
        rows.append((name, mode, size, size / full, ms[0], ms[1], same, diff, accuracy))
        print(f"    {mode}: {size / 1e6:.2f} MB, {ms[0]:.1f} / {ms[1]:.1f} ms, agreement {same:.3f}, "
              f"max diff {diff:.4f}, accuracy {accuracy:.3f}", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quantize", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="cnn,lstm,crnn_attention",
                   help="untrained registered models, comma-separated ('' for none)")
    p.add_argument("--run", action="append", default=[], metavar="NAME=RUN", help="a trained run directory")
    p.add_argument("--preset", action="store_true", help="also the default preset")
    p.add_argument("--data", default=DEFAULT_DATA, help="GTZAN-style folder of real clips (default: the dev clips)")
    p.add_argument("--repeats", type=int, default=30, help="timed invokes per latency (median)")
    p.add_argument("--keep", default=None, help="write the runs and exports here and keep them")
    args = p.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from genrenet.data.files import expand_audio_paths
    from genrenet.data.sources import GTZAN_GENRES
    from genrenet.presets import DEFAULT_PRESET

    data = os.path.abspath(args.data)
    files = sorted(expand_audio_paths([data]).files)
    work = args.keep or tempfile.mkdtemp(prefix="genrenet-quant-")
    print(f"machine: {machine()}\ndata: {len(files)} clips of {data}", flush=True)
    sources = [(m, minimal_run(os.path.join(work, "runs", m), m, list(GTZAN_GENRES)))
               for m in args.models.split(",") if m]
    sources += [tuple(r.split("=", 1)) for r in args.run]
    if args.preset:
        sources.append((DEFAULT_PRESET, DEFAULT_PRESET))
    rows = []
    for name, source in sources:
        rows += bench_source(name, source, work, data, files, args.repeats)

    print(f"\n{len(files)} clips; latency: one window per invoke, median of {args.repeats}; agreement and "
          "max |Δp| against the float32 Keras model, per clip")
    print(f"{'source':<22} {'precision':<9} {'MB':>6} {'× f32':>6} {'ms 1 thr':>9} {'ms 2 thr':>9} "
          f"{'same label':>10} {'max |Δp|':>9} {'accuracy':>9}")
    for name, mode, size, ratio, ms1, ms2, same, diff, accuracy in rows:
        print(f"{name:<22} {mode:<9} {size / 1e6:>6.2f} {ratio:>6.2f} {ms1:>9.1f} {ms2:>9.1f} {same:>10.3f} "
              f"{diff:>9.4f} {accuracy:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
