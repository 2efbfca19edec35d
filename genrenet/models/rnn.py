"""The article's recurrent models (§3.3–3.4): stacked LSTMs over the log-mel frames, optionally with
multi-head self-attention so that the model chooses which moments of the window to listen to."""
import keras
from keras import layers

from ..nn.blocks import attention_pooling, classifier, dense_block, self_attention, spectrogram_input
from ..registry import register_model


def _lstm_stack(x, units, dropout, *, last_sequence=True):
    for i, u in enumerate(units, start=1):
        sequences = last_sequence or i < len(units)
        x = layers.LSTM(u, return_sequences=sequences, name=f"lstm{i}")(x)
        x = layers.Dropout(dropout, name=f"lstm{i}_dropout")(x)
    return x


@register_model(
    "lstm",
    description="Stacked LSTMs (with dropout) over log-mel frames; last state → FC-BN-ReLU-Dropout → softmax.",
    reference="'Research on music classification algorithms based on deep learning' §3.3; "
    "Hochreiter & Schmidhuber, 'Long short-term memory', 1997.",
)
def lstm(num_classes=10, *, features, window_seconds, multi_label=False, spec_augment=None,
         units=(128, 128), dense_units=128, dropout=0.3):
    """Stacked LSTMs over log-mel frames (the article's LSTM model)."""
    waveform, x = spectrogram_input(features, window_seconds, spec_augment)
    x = _lstm_stack(x, units, dropout, last_sequence=False)
    x = dense_block(x, dense_units, dropout, name="fc1")
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="lstm")


@register_model(
    "lstm_attention",
    description="LSTMs → multi-head self-attention → attention pooling over time → FC → softmax.",
    reference="'Research on music classification algorithms based on deep learning' §3.4; "
    "Vaswani et al., 'Attention is all you need', NeurIPS 2017.",
)
def lstm_attention(num_classes=10, *, features, window_seconds, multi_label=False, spec_augment=None,
                   units=(128, 128), heads=4, key_dim=32, dense_units=128, dropout=0.3):
    """Stacked LSTMs, multi-head self-attention and attention pooling (the article's LSTM+attention)."""
    waveform, x = spectrogram_input(features, window_seconds, spec_augment)
    x = _lstm_stack(x, units, dropout)
    x = self_attention(x, heads=heads, key_dim=key_dim, dropout=dropout, name="attention")
    x = attention_pooling(x)
    x = dense_block(x, dense_units, dropout, name="fc1")
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="lstm_attention")
