"""Parameter counts and CPU time of the zoo models on a batch of 2 windows (their own default window).

    cd /work/wt-zoo && PYTHONPATH=. python benchmarks/zoo_models_speed.py [MODEL ...]

Forward = ``model(x, training=False)`` inside a ``tf.function``; forward+backward = loss, gradients and an Adam
update. Both are the median of 5 calls after one warm-up (tracing) call.
"""
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import genrenet
from genrenet.registry import get_spec

DEFAULT = ["fcn", "musicnn", "vgg_musicnn", "short_chunk_cnn", "short_chunk_resnet", "sample_cnn",
           "spectrogram_transformer"]


def median_time(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(names):
    print(f"{'model':26s} {'params':>10s} {'window':>8s} {'fwd (s)':>8s} {'fwd+bwd (s)':>12s}")
    for name in names:
        model = genrenet.build_model(name, num_classes=10)
        n = get_spec(name).window_samples()
        x = tf.constant(np.random.default_rng(0).standard_normal((2, n)).astype(np.float32) * 0.1)
        y = tf.constant([1, 2])
        opt, loss_fn = keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy()
        forward = tf.function(lambda: model(x, training=False))

        @tf.function
        def train_step():
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

        fwd = median_time(lambda: forward().numpy())
        step = median_time(lambda: train_step())
        print(f"{name:26s} {model.count_params():>10,d} {n / get_spec(name).features.sample_rate:>7.2f}s "
              f"{fwd:>8.3f} {step:>12.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
