"""Audio Spectrogram Transformer, small (Gong, Chung & Glass 2021): the log-mel cut into 16×16 patches by a
strided convolution, a learned [CLS] token and position embedding, pre-norm transformer encoder layers, and the
[CLS] output (or the mean token) → softmax. No ImageNet/AudioSet weights: sized for training from scratch on CPU."""
import keras
from keras import layers

from ..features import FeatureConfig
from ..layers import classifier, spectrogram_input
from ..registry import register_model

#: AST's input: 16 kHz, 25-ms windows, 10-ms hop, 128 mels.
AST_FEATURES = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=128)  # power of two: TFLite RFFT2D


@keras.saving.register_keras_serializable(package="genrenet")
class ClassTokenPositionEmbedding(keras.layers.Layer):
    """[batch, tokens, dim] → [batch, 1 + tokens, dim]: prepends a learned [CLS] token, adds learned positions."""

    def __init__(self, initializer_stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_stddev = initializer_stddev

    def build(self, input_shape):
        tokens, dim = input_shape[1], input_shape[2]
        if tokens is None:
            raise ValueError("ClassTokenPositionEmbedding needs a fixed number of tokens (a fixed window length)")
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
def spectrogram_transformer(num_classes=10, *, features, window_seconds, patch_size=(16, 16),
                            patch_stride=(16, 16), dim=96, depth=3, heads=4, mlp_ratio=4.0, pooling="cls",
                            dropout=0.1):
    """``patch_stride`` < ``patch_size`` gives overlapping patches (the paper uses stride 10; 16 is 4× cheaper).
    ``pooling`` is ``"cls"`` or ``"mean"`` (mean of the patch tokens)."""
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
    waveform, x = spectrogram_input(features, window_seconds)
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
    return keras.Model(waveform, classifier(x, num_classes), name="spectrogram_transformer")
