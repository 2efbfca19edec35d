"""Does the tf.data pipeline keep up with training? Windows/s of the pipeline alone vs a training step's
consumption, and the wall-clock cost it adds to ``fit`` compared with in-memory tensors.

    python -m benchmarks.input_pipeline                       # gtzan_dev clips, crnn_attention, batch 32
    python -m benchmarks.input_pipeline --model cnn --steps 30 --augment none,gain+noise,all

Rows:
- *pipeline alone*: iterate ``training_epochs`` with nothing consuming it (decode + resample + crops + augment +
  batch); ``cold`` decodes every file (first epoch, or ``cache="none"``), ``warm`` reads the in-memory cache.
- *training step*: ``fit`` on one fixed in-memory batch repeated (no input work at all).
- *fit over the pipeline*: ``fit`` on ``training_epochs`` (cache warm), same number of steps, interleaved with
  in-memory fits (``--repeats``, medians: the CPU is shared); the overhead is its extra time per step over the
  in-memory run. Target: ≤ 5 %. On a loaded machine the numbers swing by tens of percent: repeat them.
- *pipeline CPU per step*: training windows/s ÷ the pipeline's own windows/s, the share of a step's time the
  pipeline needs to make its batch; a bound on what it adds when it shares the cores, free of timing noise.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                            "gtzan_dev")


def pipeline_rate(clips, labels, *, sample_rate, window, batch, augment, cache, batches):
    from genrenet.data import TrainingSpec, training_epochs

    spec = TrainingSpec(labels, sample_rate, window, batch_size=batch, seed=0, augment=augment, cache=cache)
    ds = training_epochs(clips, spec, epochs=1)[0].repeat()
    it = iter(ds)
    next(it)  # build and trace
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        x, _ = next(it)
        n += int(x.shape[0])
    return n / (time.perf_counter() - t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--model", default="crnn_attention")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="training steps per timed fit")
    p.add_argument("--repeats", type=int, default=3, help="interleaved pipeline/in-memory timings (medians)")
    p.add_argument("--augment", default="none,gain+noise,gain+noise+stretch+pitch+mixup",
                   help="comma-separated settings, techniques joined by '+'; 'all' = every waveform technique")
    p.add_argument("--resample-to", type=int, default=16000,
                   help="also time decoding with resampling to this rate (0: skip)")
    args = p.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from genrenet import registry
    from genrenet.data import TrainingSpec, load_dataset, training_epochs

    dataset = load_dataset(os.path.normpath(args.data) if os.path.isdir(args.data) else args.data)
    clips, labels = dataset.clips, dataset.labels
    spec = registry.get_spec(args.model)
    sr, b = spec.features.sample_rate, args.batch_size
    window = spec.window_samples()
    settings = [[] if s == "none" else (["shift", "gain", "noise", "stretch", "pitch", "mixup"] if s == "all"
                                        else s.split("+")) for s in args.augment.split(",")]
    print(f"{dataset.summary()}; model {args.model}, batch {b}, window {window} samples; "
          f"{os.cpu_count()} CPUs (TF intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'})")
    rows = []
    epoch_batches = max(2, len(clips) * 10 // b)
    rows.append(("pipeline alone, cold (decode every file, no augment)",
                 pipeline_rate(clips, labels, sample_rate=sr, window=window, batch=b, augment=None, cache="none",
                               batches=epoch_batches)))
    if args.resample_to:
        rows.append((f"pipeline alone, cold, resampled to {args.resample_to} Hz",
                     pipeline_rate(clips, labels, sample_rate=args.resample_to,
                                   window=spec.window_samples() * args.resample_to // sr, batch=b, augment=None,
                                   cache="none", batches=epoch_batches)))
    warm = {}
    for s in settings:
        name = "+".join(s) or "none"
        warm[name] = pipeline_rate(clips, labels, sample_rate=sr, window=window, batch=b, augment=s, cache="memory",
                                   batches=2 * epoch_batches)
        rows.append((f"pipeline alone, warm, augment={name}", warm[name]))

    keras.utils.set_random_seed(0)
    net = registry.build_model(args.model, num_classes=len(labels))
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    x = tf.random.stateless_normal([b, window], seed=[0, 0]) * 0.1
    y = tf.one_hot(tf.range(b) % len(labels), len(labels))
    memory = tf.data.Dataset.from_tensors((x, y)).repeat()
    net.fit(memory, steps_per_epoch=2, epochs=1, verbose=0)  # compile the step

    def timed_fit(ds):
        t = time.perf_counter()
        net.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
        return (time.perf_counter() - t) / args.steps

    mem_times = [timed_fit(memory)]
    overheads = []
    for s in settings:
        ds = training_epochs(clips, TrainingSpec(labels, sr, window, batch_size=b, seed=0, augment=s,
                                                 cache="memory"), epochs=1)[0].repeat()
        net.fit(ds, steps_per_epoch=epoch_batches + 1, epochs=1, verbose=0)  # fills the cache, traces
        pipe, mem = [], []
        for _ in range(args.repeats):  # interleaved, medians: other users share the CPU
            pipe.append(timed_fit(ds))
            mem.append(timed_fit(memory))
        mem_times += mem
        overheads.append(("+".join(s) or "none", float(np.median(pipe)), float(np.median(mem)),
                          float(np.median(pipe) / np.median(mem) - 1)))
    step_rate = b / float(np.median(mem_times))
    rows.append((f"training step ({args.model}), in-memory batch", step_rate))
    print()
    print("| measurement | windows/s |")
    print("|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    print()
    print("| fit over the pipeline (cache warm), augment | s/step pipeline | s/step in-memory | overhead | "
          "pipeline CPU per step |")
    print("|---|---|---|---|---|")
    for name, sp, sm, ov in overheads:
        print(f"| {name} | {sp:.3f} | {sm:.3f} | {ov:+.1%} | {step_rate / warm[name]:.1%} |")
    print("\n*pipeline CPU per step*: the time the pipeline alone needs to make one step's windows, as a share of "
          "the step (training windows/s ÷ pipeline windows/s): what it can add at most when it competes with the "
          "step for the same cores, without the timing noise of the fit comparison.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
