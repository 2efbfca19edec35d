"""Audio Spectrogram Transformer, small (Gong, Chung & Glass 2021): the log-mel cut into 16×16 patches by a
strided convolution, a learned [CLS] token and position embedding, pre-norm transformer encoder layers, and the
[CLS] output (or the mean token) → softmax. No ImageNet/AudioSet weights: sized for training from scratch on CPU."""
import keras
from keras import layers

from ..errors import ConfigError
from ..nn.blocks import classifier, spectrogram_input
from ..features import FeatureConfig
from ..nn.tokens import ClassTokenPositionEmbedding
from ..registry import register_model

#: AST's input: 16 kHz, 25-ms windows, 10-ms hop, 128 mels.
AST_FEATURES = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=128)  # power of two: TFLite RFFT2D


def encoder_layer(x, *, heads, mlp_ratio, dropout, name):
    """Pre-norm transformer encoder layer: x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""
    dim = x.shape[-1]
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x)
    y = layers.MultiHeadAttention(heads, dim // heads, dropout=dropout, name=f"{name}_mha")(y, y)
    x = layers.Add(name=f"{name}_add1")([x, layers.Dropout(dropout, name=f"{name}_drop1")(y)])
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
    y = layers.Dense(int(dim * mlp_ratio), activation="gelu", name=f"{name}_mlp1")(y)
    y = layers.Dense(dim, name=f"{name}_mlp2")(layers.Dropout(dropout, name=f"{name}_drop2")(y))
    return layers.Add(name=f"{name}_add2")([x, layers.Dropout(dropout, name=f"{name}_drop3")(y)])


@register_model(
    "spectrogram_transformer",
    description="AST-style transformer: 16×16 log-mel patches (strided conv) + [CLS] + learned positions → "
    "3 pre-norm encoder layers (dim 96, 4 heads) → [CLS] → softmax. Small, from scratch.",
    reference="Gong, Chung & Glass, 'AST: Audio Spectrogram Transformer', Interspeech 2021 (arXiv:2104.01778).",
    features=AST_FEATURES,
    window_seconds=3.0,
)
def spectrogram_transformer(num_classes=10, *, features, window_seconds, multi_label=False,
                            spec_augment=None, patch_size=(16, 16),
                            patch_stride=(16, 16), dim=96, depth=3, heads=4, mlp_ratio=4.0, pooling="cls", dropout=0.1):
    """``patch_stride`` < ``patch_size`` gives overlapping patches (the paper uses stride 10; 16 is 4× cheaper).
    ``pooling`` is ``"cls"`` or ``"mean"`` (mean of the patch tokens)."""
    if pooling not in ("cls", "mean"):
        raise ConfigError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
    waveform, x = spectrogram_input(features, window_seconds, spec_augment)
    x = layers.Reshape((-1, features.num_bins, 1), name="expand")(x)
    x = layers.Conv2D(dim, patch_size, strides=patch_stride, padding="valid", name="patch_embed")(x)
    x = layers.Reshape((-1, dim), name="patch_tokens")(x)  # [batch, time patches · freq patches, dim]
    num_patches = x.shape[1]
    x = ClassTokenPositionEmbedding(name="cls_position")(x)
    x = layers.Dropout(dropout, name="embed_dropout")(x)
    for i in range(1, depth + 1):
        x = encoder_layer(x, heads=heads, mlp_ratio=mlp_ratio, dropout=dropout, name=f"encoder{i}")
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    if pooling == "cls":
        x = layers.Flatten(name="cls")(layers.Cropping1D((0, num_patches), name="cls_token")(x))
    else:
        x = layers.GlobalAveragePooling1D(name="token_mean")(layers.Cropping1D((1, 0), name="patch_outputs")(x))
    return keras.Model(waveform, classifier(x, num_classes, multi_label), name="spectrogram_transformer")
