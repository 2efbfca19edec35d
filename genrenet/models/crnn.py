"""Convolutional recurrent networks (article §3.4–3.5; Choi et al. 2017): conv blocks summarise local
time-frequency patterns, a bidirectional GRU follows them through time, attention picks the moments."""
import keras
from keras import layers

from ..nn.blocks import (attention_pooling, classifier, conv_stack, dense_block, global_pool_1d, self_attention,
                         spectrogram_input, to_sequence)
from ..registry import register_model

# Pool frequency hard and time gently, so that the GRU still sees ~16 steps of a 3-s window.
_POOLS = ((2, 2), (2, 4), (2, 4), (1, 4))


def _conv_gru(features, window_seconds, spec_augment, filters, gru_units, dropout):
    waveform, x = spectrogram_input(features, window_seconds, spec_augment)
    x = conv_stack(x, filters, _POOLS[: len(filters)])
    x = layers.Dropout(dropout, name="conv_dropout")(to_sequence(x))
    x = layers.Bidirectional(layers.GRU(gru_units, return_sequences=True), name="bigru")(x)
    return waveform, x


@register_model(
    "crnn",
    description="4 conv blocks → bidirectional GRU → max+mean over time → FC → softmax.",
    reference="Choi et al., 'Convolutional recurrent neural networks for music classification', ICASSP 2017; "
    "'Research on music classification algorithms based on deep learning' §3.5.",
)
def crnn(num_classes=10, *, features, window_seconds, multi_label=False, spec_augment=None,
         filters=(32, 64, 96, 128), gru_units=64, dense_units=128, dropout=0.3):
    """Conv blocks, then a bidirectional GRU over time, max+mean pooled (Choi et al. 2017)."""
    waveform, x = _conv_gru(features, window_seconds, spec_augment, filters, gru_units, dropout)
    x = dense_block(global_pool_1d(x), dense_units, dropout, name="fc1")
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="crnn")


@register_model(
    "crnn_attention",
    description="4 conv blocks → bidirectional GRU → multi-head self-attention → attention pooling → FC → softmax.",
    reference="'Research on music classification algorithms based on deep learning' §3.4–3.5; "
    "Choi et al. 2017 (CRNN); Vaswani et al. 2017 (multi-head attention).",
)
def crnn_attention(num_classes=10, *, features, window_seconds, multi_label=False, spec_augment=None,
                   filters=(32, 64, 96, 128), gru_units=64, heads=4, key_dim=32, dense_units=128, dropout=0.3):
    """The article's CRNN with multi-head self-attention and attention pooling over the GRU outputs."""
    waveform, x = _conv_gru(features, window_seconds, spec_augment, filters, gru_units, dropout)
    x = self_attention(x, heads=heads, key_dim=key_dim, dropout=dropout, name="attention")
    x = dense_block(attention_pooling(x), dense_units, dropout, name="fc1")
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="crnn_attention")
