"""Feature-level fusion (article §3.5): a CNN path and an RNN+attention path read the same spectrogram,
their features are concatenated and a fully connected layer decides."""
import keras
from keras import layers

from ..nn.blocks import (attention_pooling, classifier, conv_stack, dense_block, global_pool_2d, self_attention,
                         spectrogram_input)
from ..registry import register_model


@register_model(
    "cnn_rnn_fusion",
    description="CNN path (conv blocks, global pooling) ‖ GRU + self-attention path, concatenated → FC → softmax.",
    reference="'Research on music classification algorithms based on deep learning' §3.5 "
    "(feature-level fusion of CNN and RNN+attention paths).",
)
def cnn_rnn_fusion(num_classes=10, *, features, window_seconds, multi_label=False, spec_augment=None,
                   filters=(32, 64, 128), gru_units=64, heads=4, key_dim=32, dense_units=128, dropout=0.3):
    """Feature-level fusion: a CNN path and a GRU+attention path on the same log-mel, concatenated."""
    waveform, spec = spectrogram_input(features, window_seconds, spec_augment)
    cnn_path = global_pool_2d(conv_stack(spec, filters, [(2, 2)] * len(filters)), name="cnn_pool")
    seq = layers.MaxPooling1D(2, name="rnn_time_pool")(spec)
    seq = layers.Bidirectional(layers.GRU(gru_units, return_sequences=True), name="rnn_bigru")(seq)
    seq = self_attention(seq, heads=heads, key_dim=key_dim, dropout=dropout, name="rnn_attention")
    rnn_path = attention_pooling(seq, name="rnn_pool")
    x = layers.Concatenate(name="fusion")([cnn_path, rnn_path])
    x = dense_block(x, dense_units, dropout, name="fc1")
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="cnn_rnn_fusion")
