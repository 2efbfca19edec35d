"""Peak memory of predicting one long file, as a function of its length.

    python -m benchmarks.memory [--minutes 10 60] [--modes stream whole]

Each (length, mode) runs in its own subprocess, which loads a small model, classifies one synthetic file of
that length (22 050 Hz mono 16-bit WAV) and reports its peak RSS. ``stream`` is what ``genrenet predict`` does
(decode block by block); ``whole`` decodes the whole file first (what ``evaluate`` does for dataset clips).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

SR = 22050


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_run(path):
    """A small untrained cnn run directory (predict only needs the files, not good weights)."""
    import genrenet
    from genrenet.registry import get_spec
    from genrenet.run import write_json

    os.makedirs(path, exist_ok=True)
    spec = get_spec("cnn")
    model = genrenet.build_model("cnn", num_classes=4, filters=(8, 16), dense_units=(16,))
    write_json(os.path.join(path, "labels.json"), ["a", "b", "c", "d"])
    write_json(os.path.join(path, "config.json"), {"model": "cnn", "features": spec.features.to_dict(),
                                                   "window_samples": int(model.input_shape[-1])})
    model.save(os.path.join(path, "model.keras"))


def make_file(path, minutes):
    """A noisy tone of ``minutes`` minutes, written block by block."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    block = SR * 60
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for m in range(int(minutes)):
            t = (np.arange(block) + m * block) / SR
            f.write((0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(block)).astype(np.float32))


def child(run, file, mode):
    from genrenet.data import Clip, SkipLog
    from genrenet.infer.windows import predict_clips
    from genrenet.run import Run

    r = Run(run)
    model = r.load_model()
    predict_clips(model, [Clip(id="warmup", label="", audio=np.zeros(r.window_samples, np.float32),
                               sample_rate=r.sample_rate)], sample_rate=r.sample_rate,
                  window_samples=r.window_samples, verbose=0, stream=mode == "stream")
    baseline = _rss_mb()
    t = time.time()
    _, _, counts = predict_clips(model, [Clip(id=file, label="", path=file)], sample_rate=r.sample_rate,
                                 window_samples=r.window_samples, batch_size=32, log=SkipLog(), verbose=0,
                                 stream=mode == "stream")
    print(json.dumps({"baseline_mb": baseline, "peak_mb": _rss_mb(), "seconds": time.time() - t,
                      "windows": int(counts[0])}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    p.add_argument("--modes", nargs="+", default=["stream", "whole"], choices=("stream", "whole"))
    p.add_argument("--child", nargs=3, metavar=("RUN", "FILE", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(*args.child)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                           os.environ.get("PYTHONPATH", "")]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        make_run(os.path.join(tmp, "run"))
        for minutes in args.minutes:
            file = os.path.join(tmp, f"{minutes:g}min.wav")
            make_file(file, minutes)
            for mode in args.modes:
                out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", os.path.join(tmp, "run"),
                                      file, mode], capture_output=True, text=True, env=env, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(dict(r, minutes=minutes, mode=mode, decoded_mb=minutes * 60 * SR * 4 / 2 ** 20))
                print(f"  {minutes:g} min {mode}: peak {r['peak_mb']:.0f} MB ({r['seconds']:.0f} s)", flush=True)
            os.remove(file)
    print()
    print(f"{'minutes':>7} {'mode':>6} {'decoded MB':>10} {'baseline MB':>11} {'peak MB':>8} {'peak-baseline':>13} "
          f"{'ratio vs first':>14} {'windows':>7} {'seconds':>7}")
    first = {}
    for r in rows:
        growth = r["peak_mb"] - r["baseline_mb"]
        first.setdefault(r["mode"], r["peak_mb"])
        print(f"{r['minutes']:>7g} {r['mode']:>6} {r['decoded_mb']:>10.0f} {r['baseline_mb']:>11.0f} "
              f"{r['peak_mb']:>8.0f} {growth:>13.0f} {r['peak_mb'] / first[r['mode']]:>14.2f} {r['windows']:>7} "
              f"{r['seconds']:>7.0f}")


if __name__ == "__main__":
    main()
