"""Transfer learning: train a new head on a frozen pretrained backbone, then optionally fine-tune everything.

With the backbone frozen, every epoch would run the same audio through the same backbone again. Instead the
penultimate features of every window (non-overlapping, as musicnn was trained) are computed once by genrenet's
inference loop, and the head (dropout → the ``probabilities`` Dense, the same layer objects, so the full model
is updated in place) trains on them: the same optimisation, an order of magnitude faster.
"""
from __future__ import annotations

import keras
import numpy as np

from ..data import SkipLog
from ..infer.windows import model_forward, window_outputs
from ..nn.blocks import penultimate_model


def unfreeze(model: keras.Model):
    """Make every layer trainable for fine-tuning, except BatchNorm, which stays in inference mode (its
    pretrained statistics are worth more than the few batches of a small dataset)."""
    for layer in model.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)


def _window_features(model, clips, labels, *, sample_rate, window_samples, batch_size, log):
    """Penultimate features and one-hot labels of every window of ``clips``."""
    features_model = penultimate_model(model)
    index = {name: i for i, name in enumerate(labels)}
    feats, targets = [], []
    for outputs, clip_index in window_outputs(model_forward(features_model, len(clips)), clips,
                                              sample_rate=sample_rate, window_samples=window_samples,
                                              batch_size=batch_size, log=log, stream=False):
        feats.append(outputs.astype(np.float32))
        targets += [index[clips[i].label] for i in clip_index]
    if not feats:
        return np.zeros((0, features_model.output_shape[-1]), np.float32), np.zeros((0, len(labels)), np.float32)
    return np.concatenate(feats), np.eye(len(labels), dtype=np.float32)[targets]


def fit_head(model, train_clips, val_clips, labels, *, sample_rate, window_samples, batch_size, epochs,
             learning_rate, callbacks, verbose, log: SkipLog):
    """Train the head of a frozen-backbone ``model`` on cached window features. Returns the Keras History."""
    say = print if verbose else (lambda *a, **k: None)
    say(f"computing frozen-backbone features of {len(train_clips) + len(val_clips)} clips once")
    kw = dict(sample_rate=sample_rate, window_samples=window_samples, batch_size=batch_size, log=log)
    x, y = _window_features(model, train_clips, labels, **kw)
    val = _window_features(model, val_clips, labels, **kw) if val_clips else None
    inputs = keras.Input((x.shape[1],), name="features")
    h = inputs
    if "head_dropout" in [l.name for l in model.layers]:
        h = model.get_layer("head_dropout")(h)
    head = keras.Model(inputs, model.get_layer("probabilities")(h), name="head")
    head.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                 metrics=["accuracy"])
    return head.fit(x, y, validation_data=val, epochs=epochs, batch_size=batch_size, shuffle=True,
                    callbacks=callbacks, verbose=verbose)
