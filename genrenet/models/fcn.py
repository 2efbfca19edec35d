"""Fully convolutional network (Choi, Fazekas & Sandler 2016): 5 × (3×3 conv → BN → ReLU → max-pool) over a
96-band log-mel of ~29 s, pooled down to one vector; no fully connected hidden layer."""
import keras
from keras import layers

from ..nn.blocks import classifier, conv_stack, spectrogram_input
from ..features import FeatureConfig
from ..registry import register_model

#: The paper's input: 12 kHz, 512-point STFT, hop 256, 96 mels, log amplitude.
FCN_FEATURES = FeatureConfig(sample_rate=12000, n_fft=512, hop_length=256, n_mels=96)
# The paper's FCN-5 pools (freq × time) 2×4, 2×4, 2×4, 3×5, 4×4; genrenet's layout is (time, freq).
FCN_POOLS = ((4, 2), (4, 2), (4, 2), (5, 3), (4, 4))


@register_model(
    "fcn",
    description="FCN-5: 5 conv blocks (3×3 conv-BN-ReLU-maxpool, pools 4×2, 4×2, 4×2, 5×3, 4×4) over a 96-mel "
    "log-spectrogram of 29.1 s, global max pool → dropout → softmax. Widths scaled for CPU (paper: 128–2048).",
    reference="Choi, Fazekas & Sandler, 'Automatic tagging using deep convolutional neural networks', "
    "ISMIR 2016 (arXiv:1606.00298).",
    features=FCN_FEATURES,
    window_seconds=1365 * 256 / 12000,  # 1366 frames = 29.12 s, as in the paper
)
def fcn(num_classes=10, *, features, window_seconds, multi_label=False, spec_augment=None,
        filters=(32, 64, 128, 192, 256), pool_sizes=FCN_POOLS, dropout=0.5):
    """``pool_sizes`` are (time, freq); pooling uses 'same' padding, so shorter windows still work."""
    waveform, x = spectrogram_input(features, window_seconds, spec_augment)
    x = conv_stack(x, filters, pool_sizes)
    x = layers.GlobalMaxPooling2D(name="global_max")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="fcn")
