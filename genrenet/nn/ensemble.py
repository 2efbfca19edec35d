"""The layers that make several trained models one: fit each member's window, combine their probabilities."""
from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from ..errors import EnsembleError


@keras.saving.register_keras_serializable(package="genrenet")
class FitWindow(keras.layers.Layer):
    """Crop (centre) or zero-pad a [batch, samples] waveform to ``samples``, so members with other windows fit."""

    def __init__(self, samples: int, **kwargs):
        super().__init__(**kwargs)
        self.samples = int(samples)

    def call(self, x):
        n = tf.shape(x)[1]
        start = tf.maximum(0, (n - self.samples) // 2)
        x = x[:, start:start + self.samples]
        x = tf.pad(x, [[0, 0], [0, tf.maximum(0, self.samples - tf.shape(x)[1])]])
        return tf.ensure_shape(x, [None, self.samples])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.samples)

    def get_config(self):
        return {**super().get_config(), "samples": self.samples}


@keras.saving.register_keras_serializable(package="genrenet")
class Combine(keras.layers.Layer):
    """Weighted mean of member probabilities, or of their one-hot votes."""

    def __init__(self, method: str = "mean", weights: Optional[Sequence[float]] = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if method not in ("mean", "vote"):
            raise EnsembleError(f"method must be 'mean' or 'vote', got {method!r}")
        self.method = method
        self.member_weights = None if weights is None else [float(w) for w in weights]

    def call(self, members):
        probs = tf.stack([tf.cast(p, tf.float32) for p in members], axis=1)  # [batch, members, C]
        if self.method == "vote":
            probs = tf.one_hot(tf.argmax(probs, axis=-1), tf.shape(probs)[-1], dtype=tf.float32)
        w = self.member_weights or [1.0] * len(members)
        w = tf.constant((np.asarray(w) / np.sum(w)).astype(np.float32))[None, :, None]
        return tf.reduce_sum(probs * w, axis=1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "method": self.method, "weights": self.member_weights}
