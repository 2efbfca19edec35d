"""Blocks shared by several model families, named like the article's diagrams."""
from __future__ import annotations

from typing import Optional

import keras
from keras import layers

from .augment import SpecAugment
from ..features import FeatureConfig
from .frontend import LogMelSpectrogram

# Keras' default BatchNorm momentum (0.99) never lets the moving statistics catch up when a small dataset
# gives ~10 steps per epoch (validation then stays near chance); 0.9 works at that size and at scale.
BN_MOMENTUM = 0.9


def waveform_input(features: FeatureConfig, window_seconds: float) -> keras.KerasTensor:
    """The ``waveform`` input every genrenet model takes: float32 [batch, samples], one window long."""
    samples = int(round(window_seconds * features.sample_rate))
    return keras.Input(shape=(samples,), dtype="float32", name="waveform")


def spectrogram_input(features: FeatureConfig, window_seconds: float, spec_augment: Optional[dict] = None):
    """``waveform`` input → log-mel [batch, frames, bins], normalised per frequency bin.

    Returns ``(waveform, spectrogram)``; the normalisation is a BatchNorm over bins, so dB or log1p
    inputs of any offset reach the body centred and scaled. ``spec_augment`` (parameters of
    :class:`~genrenet.nn.SpecAugment`; a builder passes on what :func:`genrenet.build_model` gave it) adds
    time/frequency masking after the normalisation, active only in training.
    """
    waveform = waveform_input(features, window_seconds)
    x = LogMelSpectrogram(features, name="log_mel")(waveform)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="input_norm")(x)
    if spec_augment:
        x = SpecAugment(**spec_augment, name="spec_augment")(x)
    return waveform, x


def conv_block(x, filters: int, *, kernel_size=3, pool_size=(2, 2), name: str):
    """conv → BN → ReLU → max-pool (article §3.2)."""
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool_size is not None:
        x = layers.MaxPooling2D(pool_size, padding="same", name=f"{name}_pool")(x)
    return x


def conv_stack(spectrogram, filters, pool_sizes, name="conv"):
    """Stacked conv blocks over a [batch, frames, bins] spectrogram; returns [batch, frames', bins', C]."""
    x = layers.Reshape((-1, spectrogram.shape[-1], 1), name=f"{name}_expand")(spectrogram)
    for i, (f, pool) in enumerate(zip(filters, pool_sizes), start=1):
        x = conv_block(x, f, pool_size=pool, name=f"{name}{i}")
    return x


def to_sequence(x, name="to_sequence"):
    """[batch, time, freq, channels] → [batch, time, freq·channels], for the recurrent part of a CRNN."""
    return layers.Reshape((-1, x.shape[2] * x.shape[3]), name=name)(x)


def dense_block(x, units: int, dropout: float, *, name: str):
    """FC → BN → ReLU → Dropout (article §3.2–3.4)."""
    x = layers.Dense(units, use_bias=False, name=f"{name}_dense")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def self_attention(x, *, heads: int, key_dim: int, dropout: float, name: str):
    """Multi-head self-attention over time with a residual connection and layer norm."""
    a = layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{name}_mha")(x, x)
    x = layers.Add(name=f"{name}_residual")([x, a])
    return layers.LayerNormalization(name=f"{name}_norm")(x)


def attention_pooling(x, *, name: str = "attention_pool"):
    """Learned weighted mean over time: [batch, time, d] → [batch, d]. The weights say which moments matter."""
    scores = layers.Dense(1, name=f"{name}_score")(x)
    weights = layers.Softmax(axis=1, name=f"{name}_weights")(scores)
    summed = layers.Dot(axes=1, name=f"{name}_sum")([weights, x])  # [batch, 1, d]
    return layers.Flatten(name=f"{name}_flat")(summed)


def global_pool_2d(x, name="global_pool"):
    """Max and mean over time and frequency, concatenated: keeps both peaks and texture."""
    return layers.Concatenate(name=name)(
        [layers.GlobalMaxPooling2D(name=f"{name}_max")(x), layers.GlobalAveragePooling2D(name=f"{name}_mean")(x)]
    )


def global_pool_1d(x, name="global_pool"):
    """Max and mean over time of a [batch, time, d] sequence, concatenated."""
    return layers.Concatenate(name=name)(
        [layers.GlobalMaxPooling1D(name=f"{name}_max")(x), layers.GlobalAveragePooling1D(name=f"{name}_mean")(x)]
    )


def classifier(x, num_classes: int, multi_label: bool = False):
    """The output every model ends with, named ``probabilities`` and kept in float32: a softmax over classes, or
    with ``multi_label`` one independent sigmoid per tag (a track can be rock *and* indie)."""
    activation = "sigmoid" if multi_label else "softmax"
    return layers.Dense(num_classes, activation=activation, dtype="float32", name="probabilities")(x)


def penultimate_model(model: keras.Model, layer: Optional[str] = None) -> keras.Model:
    """``waveform`` → the features the classifier reads: the input of the ``probabilities`` layer, or the
    output of ``layer`` when named (e.g. musicnn's ``penultimate``). Embeddings, linear probes and the cached
    features of a frozen backbone all come from here."""
    features = model.get_layer(layer).output if layer else model.get_layer("probabilities").input
    return keras.Model(model.inputs, features, name=f"{model.name}_embedding")
