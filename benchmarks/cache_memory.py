"""Peak memory of training epochs as the dataset grows: the disk cache against the memory cache.

    python -m benchmarks.cache_memory [--clips 200 800 3200] [--seconds 5] [--caches disk memory]

Writes N synthetic clips as WAVs (22 050 Hz mono), then, in a fresh subprocess per (N, cache), runs two
epochs of the training pipeline (``training_epochs``: decode → cache → random crops → mixup → batches;
the first epoch fills the cache, the second reads it) and reports the peak RSS above the process's RSS before
the first batch. With the disk cache the peak should stay flat as N grows; the memory cache is the peer,
growing with the decoded audio (N × seconds × 22 050 × 4 bytes). Under the disk cache what remains is
bounded: the window shuffle buffer (1 024 windows: 270 MB of 3-s windows, full from ~600 clips of 5 s on) and
the decoders in flight.
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

from benchmarks._util import print_machine, print_table

SR = 22050
WINDOW = 3 * SR


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_clips(root, n, seconds):
    """``n`` noisy tones in two class folders."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        label = f"c{i % 2}"
        os.makedirs(os.path.join(root, label), exist_ok=True)
        x = 0.3 * np.sin(2 * np.pi * (200 + 3 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(os.path.join(root, label, f"{i:05d}.wav"), x.astype(np.float32), SR, subtype="PCM_16")


def child(data, cache):
    from genrenet.data import SkipLog, TrainingSpec, load_dataset, training_epochs

    ds = load_dataset(data)
    baseline = _rss_mb()
    t = time.time()
    spec = TrainingSpec(ds.labels, SR, WINDOW, batch_size=32, augment=["mixup"], cache=cache)
    batches, steps = training_epochs(ds.clips, spec, epochs=2, log=SkipLog())
    n = sum(1 for _ in batches)
    print(json.dumps({"baseline_mb": baseline, "peak_mb": _rss_mb(), "seconds": time.time() - t,
                      "batches": n, "steps": steps}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, nargs="+", default=[200, 800, 3200])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--caches", nargs="+", default=["disk", "memory"], choices=("disk", "memory"))
    p.add_argument("--child", nargs=2, metavar=("DATA", "CACHE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(*args.child)
    print_machine("training-epoch peak memory vs dataset size (disk cache vs memory cache)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                           os.environ.get("PYTHONPATH", "")]))
    rows, first = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.clips:
            data = os.path.join(tmp, f"data{n}")
            write_clips(data, n, args.seconds)
            for mode in args.caches:
                cache = os.path.join(tmp, f"cache{n}") if mode == "disk" else "memory"
                out = subprocess.run([sys.executable, "-m", "benchmarks.cache_memory", "--child", data, cache],
                                     capture_output=True, text=True, env=env, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                growth = r["peak_mb"] - r["baseline_mb"]
                first.setdefault(mode, growth)
                decoded = n * args.seconds * SR * 4 / 2 ** 20
                rows.append([n, mode, f"{decoded:.0f}", f"{r['baseline_mb']:.0f}", f"{r['peak_mb']:.0f}",
                             f"{growth:.0f}", f"{growth / max(first[mode], 1):.2f}", r["batches"],
                             f"{r['seconds']:.1f}"])
                print(f"  {n} clips, {mode}: +{growth:.0f} MB ({r['seconds']:.0f} s)", flush=True)
    print()
    print_table(["clips", "cache", "decoded MB", "baseline MB", "peak MB", "peak-baseline MB", "growth vs first",
                 "batches", "seconds"], rows)


if __name__ == "__main__":
    main()
