"""The article's CNN (§3.2): conv → BN → ReLU → max-pool blocks, then FC → BN → ReLU → Dropout twice."""
import keras

from ..nn.blocks import classifier, conv_stack, dense_block, global_pool_2d, spectrogram_input
from ..registry import register_model


@register_model(
    "cnn",
    description="4 conv blocks (conv-BN-ReLU-maxpool) over the log-mel, global max+mean pooling, 2 FC blocks.",
    reference="'Research on music classification algorithms based on deep learning' §3.2; "
    "Choi et al., 'Convolutional recurrent neural networks for music classification', ICASSP 2017 (k2c2 baseline).",
)
def cnn(num_classes=10, *, features, window_seconds, multi_label=False, spec_augment=None, filters=(32, 64, 128, 128),
        dense_units=(256, 128), dropout=0.3):
    """The article's CNN: conv blocks on the log-mel, global max+mean pooling, two dense blocks."""
    waveform, x = spectrogram_input(features, window_seconds, spec_augment)
    x = conv_stack(x, filters, [(2, 2)] * len(filters))
    x = global_pool_2d(x)
    for i, units in enumerate(dense_units, start=1):
        x = dense_block(x, units, dropout, name=f"fc{i}")
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="cnn")
