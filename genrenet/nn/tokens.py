"""Token layers for transformer bodies."""
from __future__ import annotations

import keras

from ..errors import ConfigError


@keras.saving.register_keras_serializable(package="genrenet")
class ClassTokenPositionEmbedding(keras.layers.Layer):
    """[batch, tokens, dim] → [batch, 1 + tokens, dim]: prepends a learned [CLS] token, adds learned positions."""

    def __init__(self, initializer_stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_stddev = initializer_stddev

    def build(self, input_shape):
        tokens, dim = input_shape[1], input_shape[2]
        if tokens is None:
            raise ConfigError("ClassTokenPositionEmbedding needs a fixed number of tokens (a fixed window length)")
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_stddev)
        self.cls_token = self.add_weight(shape=(1, 1, dim), initializer=init, name="cls_token")
        self.position = self.add_weight(shape=(1, tokens + 1, dim), initializer=init, name="position")

    def call(self, x):
        cls = keras.ops.broadcast_to(keras.ops.cast(self.cls_token, x.dtype),
                                     (keras.ops.shape(x)[0], 1, keras.ops.shape(x)[2]))
        return keras.ops.concatenate([cls, x], axis=1) + keras.ops.cast(self.position, x.dtype)

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "initializer_stddev": self.initializer_stddev}
