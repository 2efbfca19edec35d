"""Training and inference throughput of every registered model on its own default window, from raw audio.

    python -m benchmarks.zoo_models_speed [MODEL ...] [--batch 16] [--repeats 5]

Train = one ``train_on_batch`` (front-end, forward, backward, Adam update) on a batch of ``--batch`` windows;
inference = ``model(x, training=False)`` in a ``tf.function`` on the same batch, with the front-end fused as
``genrenet predict`` and ``evaluate`` trace it (``genrenet.nn.frontend.fused_frontend``; training does not fuse it:
there it changed steps by -4 % to +12 %, within noise). Both are the median of
``--repeats`` calls after two warm-up calls, reported as windows/s and as seconds of audio per second. The ratio
column compares each model's training throughput with ``cnn`` (the article's CNN) measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks import _util  # noqa: E402


def median_rate(fn, items, repeats):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return items / float(np.median(times))


def measure(name, batch, repeats):
    import keras
    import tensorflow as tf

    import genrenet
    from genrenet.infer.windows import inference_function
    from genrenet.registry import get_spec

    keras.utils.set_random_seed(0)
    model = genrenet.build_model(name, num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    n = int(model.input_shape[-1])
    x = np.random.default_rng(0).standard_normal((batch, n)).astype(np.float32) * 0.1
    y = np.eye(10, dtype=np.float32)[np.arange(batch) % 10]
    forward = inference_function(model)
    xt = tf.constant(x)
    infer = median_rate(lambda: forward(xt).numpy(), batch, repeats)
    train = median_rate(lambda: model.train_on_batch(x, y), batch, repeats)
    return model.count_params(), n / get_spec(name).features.sample_rate, train, infer


def main(argv=None):
    from genrenet import list_models

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="registered models (default: all)")
    p.add_argument("--batch", type=int, default=32, help="windows per step (default 32, as genrenet train)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    names = args.models or list_models()
    if "cnn" not in names:
        names = ["cnn"] + names
    _util.print_machine("genrenet zoo speed (CPU)")
    rows, base = [], None
    for name in names:
        params, seconds, train, infer = measure(name, args.batch, args.repeats)
        base = base or train
        rows.append([f"`{name}`", f"{params / 1e6:.2f} M", f"{seconds:.2f} s", f"{train:.1f}",
                     f"{train * seconds:.0f}", f"{train / base:.2f}", f"{infer:.1f}", f"{infer * seconds:.0f}"])
        print(f"  {name}: train {train:.1f} windows/s, inference {infer:.1f} windows/s", flush=True)
    print()
    _util.print_table(["model", "params", "window", "train windows/s", "train audio s/s", "train ÷ cnn",
                       "inference windows/s", "inference audio s/s"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
