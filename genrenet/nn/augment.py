"""SpecAugment: masking inside the model, after its front-end, active only in training."""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="genrenet")
class SpecAugment(keras.layers.Layer):
    """SpecAugment time and frequency masking (Park et al. 2019) on [batch, frames, bins]; identity at
    inference. Masks are set to 0, the per-bin mean after the front-end's normalisation.

    ``time_width``/``freq_width`` are the largest mask widths as fractions of the frames/bins; each of the
    ``time_masks``/``freq_masks`` masks has a uniform width in [0, max]. ``seed`` makes it repeatable.
    """

    def __init__(self, time_masks=2, time_width=0.1, freq_masks=2, freq_width=0.15, p=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = int(time_masks), float(time_width)
        self.freq_masks, self.freq_width = int(freq_masks), float(freq_width)
        self.p, self.seed = float(p), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _masks(self, batch, length, count, width):
        """[batch, length] bool: True where any of ``count`` random bands of ≤ ``width``·length is."""
        if count <= 0 or width <= 0:
            return tf.zeros([batch, length], tf.bool)
        max_w = tf.maximum(1, tf.cast(tf.floor(width * tf.cast(length, tf.float32)), tf.int32))
        u = keras.random.uniform([batch, count, 2], seed=self.seed_generator)
        widths = tf.cast(tf.floor(u[..., 0] * tf.cast(max_w + 1, tf.float32)), tf.int32)
        starts = tf.cast(tf.floor(u[..., 1] * tf.cast(length - widths + 1, tf.float32)), tf.int32)
        pos = tf.range(length)[None, None, :]
        inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])
        return tf.reduce_any(inside, axis=1)

    def call(self, x, training=None):
        if not training:
            return x
        shape = tf.shape(x)
        b, t, f = shape[0], shape[1], shape[2]
        tmask = self._masks(b, t, self.time_masks, self.time_width)
        fmask = self._masks(b, f, self.freq_masks, self.freq_width)
        mask = tmask[:, :, None] | fmask[:, None, :]
        if self.p < 1.0:
            mask &= (keras.random.uniform([b], seed=self.seed_generator) < self.p)[:, None, None]
        return tf.where(mask, tf.zeros_like(x), x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "time_masks": self.time_masks, "time_width": self.time_width,
                "freq_masks": self.freq_masks, "freq_width": self.freq_width, "p": self.p, "seed": self.seed}
