"""Fine-tuning speed of pretrained musicnn: what a trainable ``input_bn`` costs.

    python -m benchmarks.fine_tune_speed [--batch 16] [--steps 4] [--reps 3]

``input_bn`` (a BatchNorm on the log-mel's single channel) sits before the 7×38 and 7×67 timbral convolutions:
while any of its two parameters train, every step must compute the gradient with respect to those
convolutions' *input*, the most expensive part of musicnn's backward pass. ``genrenet.training.transfer.unfreeze``
keeps every BatchNorm in inference mode, ``input_bn`` included, so fine-tuning never pays for it. Rows: training
windows/s of one step (Adam, batches of ``--batch`` 3-s windows) with ``unfreeze`` as shipped, and with
``input_bn`` trainable as well; timing is interleaved (each repetition runs every variant in turn), median over
``--reps``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_step(input_bn_trainable: bool, batch: int):
    """A compiled musicnn (pretrained msd) after ``unfreeze``, and a batch to train on."""
    import keras

    from genrenet import build_model
    from genrenet.training.transfer import unfreeze

    keras.utils.set_random_seed(0)
    model = build_model("musicnn", num_classes=10, pretrained="msd", freeze_backbone=True)
    unfreeze(model)
    model.get_layer("input_bn").trainable = input_bn_trainable
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((batch, int(model.input_shape[-1])))).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    model.train_on_batch(x, y)  # trace and warm up
    return lambda: model.train_on_batch(x, y)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=4, help="steps per timed repetition")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    from benchmarks._util import machine_info

    for k, v in machine_info().items():
        print(f"{k}: {v}")
    variants = {"unfreeze (input_bn frozen, as shipped)": make_step(False, args.batch),
                "unfreeze + trainable input_bn": make_step(True, args.batch)}
    rates = {name: [] for name in variants}
    for _ in range(args.reps):
        for name, step in variants.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(args.steps * args.batch / (time.perf_counter() - t0))
    base = np.median(rates["unfreeze + trainable input_bn"])
    print("| variant | training windows/s (median) | × trainable input_bn |")
    print("|---|---|---|")
    for name, r in rates.items():
        print(f"| {name} | {np.median(r):.1f} | {np.median(r) / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
