"""musicnn and its VGG baseline (Pons & Serra 2019), ported layer for layer from the TF1 graphs of the
``musicnn`` package so that its pretrained MSD / MTT weights load.

musicnn reads a 96-band log-mel with musically motivated filters: *timbral* convolutions spanning 40 % and 70 % of
the frequency axis, *temporal* convolutions of 128/64/32 frames, each max-pooled over frequency; a dense-residual
1-D CNN mid-end; max and mean pooling over time; a 200-unit penultimate layer. Every block is
conv → ReLU → BN → pool, as in the original (``musicnn/models.py``). BatchNorm uses the original epsilon 1e-3.

``build_model("musicnn", num_classes=10, pretrained="msd", freeze_backbone=True)`` loads the weights shipped with
genrenet (``genrenet/models/weights/``: the ``musicnn`` 0.1.0 checkpoints converted by
``tools/convert_musicnn_weights.py``, ISC licence) and puts a new softmax head on the 200-d penultimate features; ``num_classes=None`` keeps the original 50 sigmoid tags (:data:`MSD_LABELS`,
:data:`MTT_LABELS`). :func:`genrenet.nn.penultimate_model` gives the penultimate features (the ``penultimate`` layer).
Parity with the original graph is checked by ``tests/test_musicnn_port.py``.
"""
from __future__ import annotations

import os

import keras
import numpy as np
from keras import layers

from ..errors import ConfigError
from ..nn.blocks import BN_MOMENTUM, classifier, waveform_input
from ..features import FeatureConfig
from ..nn.frontend import LogMelSpectrogram
from ..registry import register_model

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
REFERENCE = ("Pons & Serra, 'musicnn: pre-trained convolutional neural networks for music audio tagging', "
             "ISMIR 2019 late-breaking demo (arXiv:1909.06654); weights from the musicnn 0.1.0 package (ISC licence).")

#: musicnn's input: 16 kHz, 512-point STFT, hop 256, 96 slaney mels, log10(1 + 10000·mel).
MUSICNN_FEATURES = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, mel_scale="slaney",
                                 mel_norm="slaney", compression="log1p", log_c=10000.0)
#: 187 frames (musicnn's 3-s patch): a centred STFT of 186·256 samples.
MUSICNN_WINDOW_SECONDS = 186 * 256 / 16000  # 2.976 s
BN_EPSILON = 1e-3  # TF1 tf.layers.batch_normalization default, which the weights were trained with

MSD_LABELS = ['rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s',
              'alternative rock', 'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul',
              'indie rock', 'Mellow', 'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies',
              'blues', 'hard rock', 'ambient', 'acoustic', 'experimental', 'female vocalist', 'guitar', 'Hip-Hop',
              '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy', 'funk', 'electro', 'heavy metal',
              'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy']
MTT_LABELS = ['guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano',
              'ambient', 'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing',
              'vocals', 'no vocals', 'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal',
              'pop', 'soft', 'sitar', 'solo', 'man', 'classic', 'choir', 'voice', 'new age', 'dance', 'male voice',
              'female vocal', 'beats', 'harp', 'cello', 'no voice', 'weird', 'country', 'metal', 'female voice',
              'choral']
PRETRAINED_TAGS = ("msd", "mtt")


def pretrained_labels(tag: str) -> list:
    """The 50 tag names of the ``"msd"`` or ``"mtt"`` weights, in output order."""
    return list({"msd": MSD_LABELS, "mtt": MTT_LABELS}[_check_tag(tag)])


def _check_tag(tag: str) -> str:
    t = str(tag).lower()
    if t not in PRETRAINED_TAGS:
        raise ConfigError(f"unknown pretrained weights {tag!r}; available: {', '.join(PRETRAINED_TAGS)}")
    return t


def weights_path(arch: str, tag: str) -> str:
    """The shipped weight file ``<msd|mtt>_<musicnn|vgg>.npz``: the model variables of musicnn's TF1 checkpoint
    under their TF1 names (see ``genrenet/models/weights/README.md``)."""
    path = os.path.join(WEIGHTS_DIR, f"{_check_tag(tag)}_{arch}.npz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: the shipped musicnn weights are missing; reinstall genrenet")
    return path


def _bn(name):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _front(features, window_seconds):
    """waveform → log-mel [batch, frames, bins, 1] → BatchNorm over its single channel (as in the TF1 graph)."""
    waveform = waveform_input(features, window_seconds)
    x = LogMelSpectrogram(features, name="log_mel")(waveform)
    x = layers.Reshape((-1, features.num_bins, 1), name="expand")(x)
    return waveform, _bn("input_bn")(x)


def _freq_pooled_block(x, filters, kernel, padding, name):
    """conv → ReLU → BN → max over the whole frequency axis → [batch, frames, filters]."""
    x = layers.Conv2D(filters, kernel, padding=padding, activation="relu", name=f"{name}_conv")(x)
    x = _bn(f"{name}_bn")(x)
    x = layers.MaxPooling2D((1, x.shape[2]), name=f"{name}_pool")(x)
    return layers.Reshape((-1, filters), name=f"{name}_squeeze")(x)


def _midend_block(x, filters, name):
    """pad time 3+3 → 'valid' conv over the whole feature width (a Conv1D) → ReLU → BN."""
    x = layers.ZeroPadding1D(3, name=f"{name}_pad")(x)
    x = layers.Conv1D(filters, 7, padding="valid", activation="relu", name=f"{name}_conv")(x)
    return _bn(f"{name}_bn")(x)


def _head(x, num_classes, pretrained, dropout, multi_label=False):
    x = layers.Dropout(dropout, name="head_dropout")(x)
    if num_classes is None:
        if pretrained is None:
            raise ConfigError("num_classes=None (the original 50 tags) needs pretrained='msd' or 'mtt'")
        return layers.Dense(50, activation="sigmoid", dtype="float32", name="probabilities")(x)
    return classifier(x, num_classes, multi_label)


def _check_pretrained(pretrained, freeze_backbone, features, given, defaults):
    if pretrained is None:
        if freeze_backbone:
            raise ConfigError("freeze_backbone=True needs pretrained weights ('msd' or 'mtt')")
        return None
    tag = _check_tag(pretrained)
    if features != MUSICNN_FEATURES:
        raise ConfigError(f"pretrained musicnn weights need features={MUSICNN_FEATURES}, got {features}")
    changed = {k: v for k, v in given.items() if defaults[k] != v}
    if changed:
        raise ConfigError(f"pretrained weights fix the architecture; cannot change {sorted(changed)}")
    return tag


def _finish(model, pretrained, arch, num_classes, freeze_backbone, mapping):
    if pretrained is None:
        return model
    with np.load(weights_path(arch, pretrained)) as variables:
        load_musicnn_weights(model, dict(variables), mapping, skip_head=num_classes is not None,
                             source=weights_path(arch, pretrained))
    if freeze_backbone:
        for layer in model.layers:
            if layer.name not in ("probabilities", "head_dropout"):
                layer.trainable = False
    return model


# Keras layer → TF1 variable scope, in the order the original graphs create them.
_MUSICNN_MAP = {
    "input_bn": "batch_normalization",
    "timbral_74_conv": "conv2d", "timbral_74_bn": "batch_normalization_1",
    "timbral_77_conv": "conv2d_1", "timbral_77_bn": "batch_normalization_2",
    "temporal_128_conv": "conv2d_2", "temporal_128_bn": "batch_normalization_3",
    "temporal_64_conv": "conv2d_3", "temporal_64_bn": "batch_normalization_4",
    "temporal_32_conv": "conv2d_4", "temporal_32_bn": "batch_normalization_5",
    "midend1_conv": "conv2d_5", "midend1_bn": "batch_normalization_6",
    "midend2_conv": "conv2d_6", "midend2_bn": "batch_normalization_7",
    "midend3_conv": "conv2d_7", "midend3_bn": "batch_normalization_8",
    "pool_bn": "batch_normalization_9",
    "penultimate_dense": "dense", "penultimate": "batch_normalization_10",
    "probabilities": "dense_1",
}
_VGG_MAP = {"input_bn": "batch_normalization", "probabilities": "dense"}
for _i in range(1, 6):
    _VGG_MAP.update({f"conv{_i}": f"{_i}CNN", f"conv{_i}_bn": f"batch_normalization_{_i}"})


def load_musicnn_weights(model: keras.Model, variables: dict, mapping: dict, *, skip_head: bool = False,
                         source: str = "weights"):
    """Copy musicnn's variables (TF1 name → array) onto the Keras layers named in ``mapping``; shapes are
    checked, and every variable must find its layer."""
    used = set()
    for layer_name, scope in mapping.items():
        if skip_head and layer_name == "probabilities":
            used.update({f"{scope}/kernel", f"{scope}/bias"})
            continue
        layer = model.get_layer(layer_name)
        if isinstance(layer, layers.BatchNormalization):
            names = ["gamma", "beta", "moving_mean", "moving_variance"]
        else:
            names = ["kernel", "bias"]
        values = []
        for n, target in zip(names, layer.get_weights()):
            key = f"{scope}/{n}"
            if key not in variables:
                raise ConfigError(f"{source}: variable {key} is missing")
            v = variables[key]
            if isinstance(layer, layers.Conv1D) and v.ndim == 4:
                v = v[:, :, 0, :]  # [7, width, 1, filters] 'valid' Conv2D over the whole width = Conv1D
            if v.shape != target.shape:
                raise ConfigError(f"{key}: {source} shape {v.shape} != {layer_name} shape {target.shape}")
            values.append(np.asarray(v, dtype=np.float32))
            used.add(key)
        layer.set_weights(values)
    left = set(variables) - used
    if left:
        raise ConfigError(f"{source}: variables not mapped onto the model: {sorted(left)}")
    return model


@register_model(
    "musicnn",
    description="musicnn: timbral (7×38, 7×67) + temporal (128/64/32×1) front-end, dense-residual 1-D CNN "
    "mid-end, max‖mean pooling, 200-d penultimate. Pretrained MSD/MTT weights (shipped, ISC licence).",
    reference=REFERENCE,
    features=MUSICNN_FEATURES,
    window_seconds=MUSICNN_WINDOW_SECONDS,
    pretrained=PRETRAINED_TAGS,
)
def musicnn(num_classes=10, *, features, window_seconds, multi_label=False, pretrained=None, freeze_backbone=False,
            timbral_filters=204, temporal_filters=51, midend_filters=64, backend_units=200, dropout=0.5):
    """musicnn (Pons & Serra 2019), optionally with its MSD/MTT weights and a new head."""
    tag = _check_pretrained(pretrained, freeze_backbone, features,
                            dict(timbral_filters=timbral_filters, temporal_filters=temporal_filters,
                                 midend_filters=midend_filters, backend_units=backend_units),
                            dict(timbral_filters=204, temporal_filters=51, midend_filters=64, backend_units=200))
    waveform, x = _front(features, window_seconds)
    bins = features.num_bins
    timbral_in = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    front = [
        _freq_pooled_block(timbral_in, timbral_filters, (7, int(0.4 * bins)), "valid", "timbral_74"),
        _freq_pooled_block(timbral_in, timbral_filters, (7, int(0.7 * bins)), "valid", "timbral_77"),
        _freq_pooled_block(x, temporal_filters, (128, 1), "same", "temporal_128"),
        _freq_pooled_block(x, temporal_filters, (64, 1), "same", "temporal_64"),
        _freq_pooled_block(x, temporal_filters, (32, 1), "same", "temporal_32"),
    ]
    front = layers.Concatenate(name="frontend")(front)  # [batch, frames, 2·204 + 3·51 = 561]
    cnn1 = _midend_block(front, midend_filters, "midend1")
    cnn2 = layers.Add(name="midend2_residual")([_midend_block(cnn1, midend_filters, "midend2"), cnn1])
    cnn3 = layers.Add(name="midend3_residual")([_midend_block(cnn2, midend_filters, "midend3"), cnn2])
    feats = layers.Concatenate(name="midend")([front, cnn1, cnn2, cnn3])  # [batch, frames, 753]
    width = feats.shape[-1]
    # Back-end: max and mean over time stacked as (753, 2) and flattened → max0, mean0, max1, mean1, ...
    pooled_max = layers.Reshape((width, 1), name="max_pool")(layers.GlobalMaxPooling1D(name="time_max")(feats))
    pooled_mean = layers.Reshape((width, 1), name="mean_pool")(layers.GlobalAveragePooling1D(name="time_mean")(feats))
    x = layers.Flatten(name="pool_flat")(layers.Concatenate(name="max_mean_pool")([pooled_max, pooled_mean]))
    x = _bn("pool_bn")(x)
    x = layers.Dropout(dropout, name="pool_dropout")(x)
    x = layers.Dense(backend_units, activation="relu", name="penultimate_dense")(x)
    x = _bn("penultimate")(x)
    model = keras.Model(waveform, _head(x, num_classes, tag, dropout, multi_label), name="musicnn")
    return _finish(model, tag, "musicnn", num_classes, freeze_backbone, _MUSICNN_MAP)


_VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))


@register_model(
    "vgg_musicnn",
    description="musicnn's VGG baseline: 5 × (3×3 conv 128 → ReLU → BN → max-pool), flatten → tags. "
    "Pretrained MSD/MTT weights need exactly 187 frames (2.976 s).",
    reference=REFERENCE,
    features=MUSICNN_FEATURES,
    window_seconds=MUSICNN_WINDOW_SECONDS,
    pretrained=PRETRAINED_TAGS,
)
def vgg_musicnn(num_classes=10, *, features, window_seconds, multi_label=False,
                pretrained=None, freeze_backbone=False, filters=128,
                dropout=0.5):
    """Dropout: ``dropout`` before the output (0.5 in the original), ``dropout / 2`` after each pool (0.25)."""
    tag = _check_pretrained(pretrained, freeze_backbone, features, dict(filters=filters), dict(filters=128))
    if tag is not None and abs(window_seconds - MUSICNN_WINDOW_SECONDS) > 1e-9:
        raise ConfigError(f"pretrained vgg_musicnn needs window_seconds={MUSICNN_WINDOW_SECONDS} (187 frames)")
    waveform, x = _front(features, window_seconds)
    for i, (pool, strides) in enumerate(_VGG_POOLS, start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = _bn(f"conv{i}_bn")(x)
        x = layers.MaxPooling2D(pool, strides, padding="valid", name=f"pool{i}")(x)
        if i < len(_VGG_POOLS):
            x = layers.Dropout(dropout / 2, name=f"pool{i}_dropout")(x)
    x = layers.Flatten(name="penultimate")(x)
    model = keras.Model(waveform, _head(x, num_classes, tag, dropout, multi_label), name="vgg_musicnn")
    return _finish(model, tag, "vgg", num_classes, freeze_backbone, _VGG_MAP)
