"""Sample-level CNN (Lee et al. 2017): learns from the raw waveform with tiny (3-sample) filters, no mel.
A 3^10 = 59049-sample window passes a stride-3 convolution, then nine conv → BN → ReLU → max-pool(3) blocks
until one step is left."""
import keras
from keras import layers

from ..nn.blocks import BN_MOMENTUM, classifier, waveform_input
from ..features import FeatureConfig
from ..registry import register_model

# The paper's 3^9 model: strided conv 128; nine blocks 128, 128, 256 × 6, 512; 1×1 conv 512.
# These are a quarter of those widths, for CPU.
SAMPLE_CNN_FILTERS = (32, 32, 32, 64, 64, 64, 64, 64, 64, 128, 128)


def _block(x, filters, *, kernel=3, strides=1, pool=3, name):
    x = layers.Conv1D(filters, kernel, strides=strides, padding="same" if strides == 1 else "valid",
                      use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool:
        x = layers.MaxPooling1D(pool, padding="same", name=f"{name}_pool")(x)
    return x


@register_model(
    "sample_cnn",
    description="SampleCNN 3^9: raw waveform (59049 samples at 22.05 kHz) → stride-3 conv → 9 × (conv3-BN-ReLU-"
    "maxpool3) → 1×1 conv → dropout → softmax. No spectrogram. Quarter of the paper's widths.",
    reference="Lee, Park, Kim & Nam, 'Sample-level deep convolutional neural networks for music auto-tagging "
    "using raw waveforms', SMC 2017 (arXiv:1703.01789).",
    features=FeatureConfig(sample_rate=22050),  # only the sample rate matters: there is no front-end
    window_seconds=59049 / 22050,  # 3^10 samples, 2.68 s
)
def sample_cnn(num_classes=10, *, features, window_seconds, multi_label=False, filters=SAMPLE_CNN_FILTERS, dropout=0.5):
    """``filters[0]`` is the stride-3 frame-level conv, ``filters[1:-1]`` the pooled blocks, ``filters[-1]`` the 1×1
    conv; with a 3^(n+1)-sample window, n = len(filters) - 2 blocks leave a single time step."""
    waveform = waveform_input(features, window_seconds)
    x = layers.Reshape((-1, 1), name="expand")(waveform)
    x = _block(x, filters[0], strides=3, pool=None, name="strided")
    for i, f in enumerate(filters[1:-1], start=1):
        x = _block(x, f, name=f"block{i}")
    x = _block(x, filters[-1], kernel=1, pool=None, name="pointwise")
    x = layers.GlobalMaxPooling1D(name="global_max")(x)  # one step left for 3^10 samples
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="sample_cnn")
