"""Files per second of ``genrenet predict --runner DirectRunner`` (Apache Beam, 2 worker processes) against plain
``genrenet predict`` on the same files, and the Beam path's overhead per file.

    python -m benchmarks.beam_predict [--files 40] [--seconds 30] [--model cnn] [--repeats 2] [--workers 2]

Writes ``--files`` synthetic WAV files, trains nothing (an untrained ``--model`` run: speed does not depend on the
weights), then times, repetitions interleaved so that load from other processes slows both alike:

* ``predict``: :func:`genrenet.predict` in this process (model loaded once, untimed);
* ``beam``: :func:`genrenet.infer.beam.predict_pipeline` on the DirectRunner with ``--workers`` processes
  (``--direct_running_mode multi_processing``), end to end: worker start-up, model loading per worker, matching,
  decoding, RunInference, grouping, writing JSON Lines;
* ``beam (1 file)``: the same pipeline on one file: its fixed cost (start-up, model loading).

The Beam cost per file is ``workers × (beam time - fixed cost) / files - predict time / files``: what one worker
process spends per file beyond the decoding and model work that ``predict`` does too. On Dataflow or Flink the fixed cost is paid once per job and
the per-file rate multiplies with the number of workers.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from ._util import print_machine


def write_files(folder: str, n: int, seconds: float, sample_rate: int = 22050) -> list:
    import soundfile as sf

    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        audio = 0.3 * np.sin(2 * np.pi * (110 + 20 * i) * t) + 0.05 * rng.standard_normal(t.size)
        path = os.path.join(folder, f"clip{i:04d}.wav")
        sf.write(path, audio.astype(np.float32), sample_rate)
        files.append(path)
    return files


def untrained_run(folder: str, model: str) -> str:
    from genrenet.training.trainer import train

    run = os.path.join(folder, "run")
    train(model, "synthetic:classes=3,clips=2,seconds=3.5", run, epochs=1, verbose=0, evaluate_val=False)
    return run


def time_beam(run: str, patterns: list, out: str, workers: int) -> float:
    from genrenet.infer.beam import predict_pipeline

    start = time.perf_counter()
    predict_pipeline(run, patterns, out, runner="DirectRunner",
                     beam_args=[f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"])
    return time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--model", default="cnn")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    import genrenet
    from genrenet import Classifier

    print_machine("beam_predict")
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(tmp, args.files, args.seconds)
        run = untrained_run(tmp, args.model)
        predictor = Classifier.from_preset(run)
        predictor.predict(files, verbose=0)  # warm-up: traced (fused from 100 files) once, as in a long job
        plain, beam, fixed = [], [], []
        for r in range(args.repeats):
            start = time.perf_counter()
            predictor.predict(files, verbose=0)
            plain.append(time.perf_counter() - start)
            beam.append(time_beam(run, [os.path.join(tmp, "clip*.wav")], os.path.join(tmp, f"out{r}"), args.workers))
            fixed.append(time_beam(run, [files[0]], os.path.join(tmp, f"one{r}"), args.workers))
    t_plain, t_beam, t_fixed = map(statistics.median, (plain, beam, fixed))
    n = args.files
    print(f"\n{n} files of {args.seconds:.0f} s, model {args.model}, median of {args.repeats}; genrenet "
          f"{genrenet.__version__}")
    print(f"{'path':<34}{'seconds':>10}{'files/s':>10}")
    print(f"{'predict (1 process, model loaded)':<34}{t_plain:>10.2f}{n / t_plain:>10.1f}")
    print(f"{f'beam DirectRunner ({args.workers} processes)':<34}{t_beam:>10.2f}{n / t_beam:>10.1f}")
    print(f"{'beam, 1 file (fixed cost)':<34}{t_fixed:>10.2f}{'':>10}")
    print(f"\nbeam / predict files/s, end to end: {t_plain / t_beam:.2f}x")
    if t_beam - t_fixed < 0.2 * t_beam:
        print("the fixed cost dominates: run with more --files to measure the per-file rate")
        return 0
    steady = n / (t_beam - t_fixed)
    print(f"beam / predict files/s, fixed cost left out: {steady / (n / t_plain):.2f}x ({steady:.1f} files/s "
          f"on {args.workers} processes, {steady / args.workers:.1f} per process)")
    cost = 1000 * (args.workers / steady - t_plain / n)
    print(f"beam cost per file beyond predict's work, per process: {cost:.1f} ms"
          + (" (below this measurement's noise)" if cost < 0 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
