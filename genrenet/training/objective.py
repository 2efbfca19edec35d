"""What a network minimises and watches: categorical cross-entropy and accuracy for one class per clip, binary
cross-entropy per tag and ROC-AUC for multi-label data, optionally weighting the positives of rare tags."""
from __future__ import annotations

from typing import Optional

import keras
import numpy as np

#: The largest weight ``pos_weight="balanced"`` gives a tag's positives (a tag on 1 clip in 10 000 would get 9 999).
POS_WEIGHT_CAP = 100.0


def balanced_pos_weight(targets: np.ndarray) -> np.ndarray:
    """Per tag, negatives / positives of the training targets [N, C] (≥ 1, at most :data:`POS_WEIGHT_CAP`): each
    tag's positives then weigh as much as its negatives in the loss, as in ``torch``'s ``pos_weight``."""
    targets = np.asarray(targets, dtype=np.float64)
    positives = targets.sum(0)
    negatives = targets.shape[0] - positives
    return np.clip(negatives / np.maximum(positives, 1.0), 1.0, POS_WEIGHT_CAP).astype(np.float32)


@keras.saving.register_keras_serializable(package="genrenet")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy per tag with the positive term of tag ``c`` weighted by ``pos_weight[c]``, averaged
    over tags; ``label_smoothing`` moves targets towards 0.5 as Keras' ``BinaryCrossentropy`` does."""

    def __init__(self, pos_weight, label_smoothing: float = 0.0, name="weighted_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in pos_weight]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_true = ops.cast(y_true, y_pred.dtype)
        y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = ops.clip(y_pred, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        w = ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        return -ops.mean(w * y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p), axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight, "label_smoothing": self.label_smoothing}


def loss_and_metrics(multi_label: bool, label_smoothing: float = 0.0, pos_weight: Optional[np.ndarray] = None):
    """``(loss, metrics)`` for ``compile``: softmax networks train on categorical cross-entropy and report accuracy;
    multi-label networks on binary cross-entropy (weighted by ``pos_weight`` when given) and report Keras'
    approximate ROC-AUC over tags (``auc``; the exact one comes from ``evaluate``)."""
    if not multi_label:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing), ["accuracy"]
    auc = keras.metrics.AUC(multi_label=True, name="auc")
    if pos_weight is None:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing), [auc]
    return WeightedBinaryCrossentropy(pos_weight, label_smoothing), [auc]
