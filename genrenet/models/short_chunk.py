"""Short-chunk CNNs (Won et al. 2020): a deep VGG-ish stack of 3×3 convolutions with 2×2 pooling over 3.7-s
chunks, plain or with residual blocks; max over what is left, then one FC block. The paper's best tagging models."""
import keras
from keras import layers

from ..nn.blocks import BN_MOMENTUM, classifier, conv_block, dense_block, spectrogram_input
from ..features import FeatureConfig
from ..registry import register_model

#: The paper's input: 16 kHz, 512-point STFT, hop 256, 128 mels up to 8 kHz, dB.
SHORT_CHUNK_FEATURES = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=128, fmax=8000.0)
SHORT_CHUNK_WINDOW = 59049 / 16000  # 3.69 s
REFERENCE = ("Won, Ferraro, Bogdanov & Serra, 'Evaluation of CNN-based automatic music tagging models', "
             "SMC 2020 (arXiv:2006.00751).")


def _widths(channels):
    """The paper's 7 layers: c, c, 2c, 2c, 2c, 2c, 4c (c = 128 in the paper)."""
    return (channels, channels, 2 * channels, 2 * channels, 2 * channels, 2 * channels, 4 * channels)


def _expand(x):
    return layers.Reshape((-1, x.shape[-1], 1), name="expand")(x)


def residual_block(x, filters, *, stride=2, name):
    """conv 3×3 /stride → BN → ReLU → conv 3×3 → BN, plus a (conv 3×3 /stride → BN) shortcut, → ReLU."""
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    # zero-initialised last BN scale: each block starts as its shortcut (Goyal et al. 2017, "ImageNet in 1 hour"),
    # which keeps early steps stable with batch statistics from very small batches
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer="zeros", name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_proj")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([x, y]))


def _short_chunk(name, block, num_classes, features, window_seconds, spec_augment, channels, dropout,
                 multi_label=False):
    """The shared body: 7 blocks of growing width → global max over time and frequency → FC → softmax."""
    waveform, x = spectrogram_input(features, window_seconds, spec_augment)
    x = _expand(x)
    for i, f in enumerate(_widths(channels), start=1):
        x = block(x, f, i)
    x = layers.GlobalMaxPooling2D(name="global_max")(x)
    x = dense_block(x, 4 * channels, dropout, name="fc1")
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name=name)


@register_model(
    "short_chunk_cnn",
    description="Short-chunk CNN: 7 × (3×3 conv-BN-ReLU-2×2 maxpool) on 3.7-s 128-mel chunks, global max → "
    "FC-BN-ReLU-dropout → softmax. Width c=32 by default (paper: 128).",
    reference=REFERENCE,
    features=SHORT_CHUNK_FEATURES,
    window_seconds=SHORT_CHUNK_WINDOW,
)
def short_chunk_cnn(num_classes=10, *, features, window_seconds, multi_label=False,
                    spec_augment=None, channels=32, dropout=0.5):
    """Won et al.'s short-chunk CNN: seven 3x3 conv blocks on 3.7-s chunks."""
    block = lambda x, f, i: conv_block(x, f, pool_size=(2, 2), name=f"conv{i}")  # noqa: E731
    return _short_chunk("short_chunk_cnn", block, num_classes, features, window_seconds,
                        spec_augment, channels, dropout, multi_label)


@register_model(
    "short_chunk_resnet",
    description="Short-chunk ResNet: 7 residual blocks (two 3×3 convs, stride 2, projected shortcut) on 3.7-s "
    "128-mel chunks, global max → FC-BN-ReLU-dropout → softmax. Width c=32 by default (paper: 128).",
    reference=REFERENCE,
    features=SHORT_CHUNK_FEATURES,
    window_seconds=SHORT_CHUNK_WINDOW,
)
def short_chunk_resnet(num_classes=10, *, features, window_seconds, multi_label=False,
                       spec_augment=None, channels=32, dropout=0.5):
    """Won et al.'s short-chunk ResNet: the same with residual blocks."""
    block = lambda x, f, i: residual_block(x, f, stride=2, name=f"res{i}")  # noqa: E731
    return _short_chunk("short_chunk_resnet", block, num_classes, features, window_seconds,
                        spec_augment, channels, dropout, multi_label)
