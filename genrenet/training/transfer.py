"""Transfer learning: train a new head on a frozen pretrained backbone, then optionally fine-tune everything.

With the backbone frozen, every epoch would run the same audio through the same backbone again. Instead the
penultimate features of every window (non-overlapping, as musicnn was trained) are computed once by genrenet's
inference loop, and the head (dropout → the ``probabilities`` Dense, the same layer objects, so the full model
is updated in place) trains on them: the same optimisation, an order of magnitude faster.
"""
from __future__ import annotations

from typing import Optional

import keras
import numpy as np

from ..data import SkipLog
from ..errors import DatasetError
from ..infer.windows import model_forward, window_outputs
from ..nn.blocks import penultimate_model
from ..data.training import label_targets
from .objective import loss_and_metrics


def unfreeze(model: keras.Model):
    """Make every layer trainable for fine-tuning, except BatchNorm, which stays in inference mode (its
    pretrained statistics are worth more than the few batches of a small dataset). This includes musicnn's
    ``input_bn``: were its two parameters trainable, every step would also compute the gradient with respect
    to the input of the wide timbral convolutions, halving fine-tuning speed (``benchmarks/fine_tune_speed.py``)."""
    for layer in model.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)


def window_features(model, clips, labels, *, sample_rate, window_samples, batch_size, log, hop_samples=None):
    """Penultimate features ``[n, D]``, targets ``[n, C]`` (one- or multi-hot) and owning clip ``[n]`` of every
    window."""
    features_model = penultimate_model(model)
    feats, owners = [], []
    for outputs, clip_index in window_outputs(model_forward(features_model, len(clips)), clips,
                                              sample_rate=sample_rate, window_samples=window_samples,
                                              hop_samples=hop_samples, batch_size=batch_size, log=log,
                                              stream=False):
        feats.append(outputs.astype(np.float32))
        owners.append(np.asarray(clip_index))
    if not feats:
        return (np.zeros((0, features_model.output_shape[-1]), np.float32), np.zeros((0, len(labels)), np.float32),
                np.zeros(0, np.int64))
    owner = np.concatenate(owners)
    return np.concatenate(feats), label_targets(clips, labels)[owner], owner


def compile_classifier(model, learning_rate: float, label_smoothing: float = 0.0, *, multi_label: bool = False,
                       pos_weight=None):
    """Adam on the cross-entropy of :func:`~genrenet.training.objective.loss_and_metrics` (categorical, or binary
    per tag for ``multi_label``): how every genrenet network and head trains."""
    loss, metrics = loss_and_metrics(multi_label, label_smoothing, pos_weight)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)


def keras_head(model, x, y, val=None, *, epochs, learning_rate, batch_size, callbacks=(), verbose=0,
               label_smoothing=0.0, multi_label=False, pos_weight=None):
    """Train ``model``'s head (``head_dropout`` → ``probabilities``, the same layer objects) on features ``x``
    and one-hot ``y`` with Adam. Returns the Keras History."""
    inputs = keras.Input((x.shape[1],), name="features")
    h = inputs
    if "head_dropout" in [l.name for l in model.layers]:
        h = model.get_layer("head_dropout")(h)
    head = keras.Model(inputs, model.get_layer("probabilities")(h), name="head")
    compile_classifier(head, learning_rate, label_smoothing, multi_label=multi_label, pos_weight=pos_weight)
    return head.fit(x, y, validation_data=val, epochs=epochs, batch_size=batch_size, shuffle=True,
                    callbacks=list(callbacks), verbose=verbose)


#: Inverse regularisation strengths the logistic-regression head chooses from by inner cross-validation.
LOGISTIC_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def logistic_head(model, x, y, groups, *, c_grid=LOGISTIC_C_GRID) -> dict:
    """Fit a multinomial logistic regression on standardised features ``x`` (one-hot ``y``), with C chosen by
    grouped inner cross-validation (``groups``: the clip or artist of each row, so a clip's windows never
    straddle a split), and write it into ``model``'s ``probabilities`` layer: the standardisation folds into the
    kernel and bias, so the result is the same softmax Dense layer. Returns ``{"C", "inner_log_loss"}``."""
    from sklearn.linear_model import LogisticRegression

    labels = y.argmax(1)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    scores = {c: _inner_log_loss(z, labels, groups, c, y.shape[1]) for c in c_grid}
    best = min(c_grid, key=lambda c: (scores[c], c))
    clf = LogisticRegression(C=best, max_iter=2000).fit(z, labels)
    coef = np.zeros((y.shape[1], x.shape[1]))
    intercept = np.zeros(y.shape[1])
    if len(clf.classes_) > 2:
        coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    intercept[np.setdiff1d(np.arange(y.shape[1]), clf.classes_)] = -1e9  # a class without training rows
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes: the softmax equivalent is (0, w)
        coef[clf.classes_[0]], intercept[clf.classes_[0]] = 0.0, 0.0
        coef[clf.classes_[1]], intercept[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    kernel = (coef / std).T
    bias = intercept - (coef * (mean / std)).sum(1)
    model.get_layer("probabilities").set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return {"C": best, "inner_log_loss": scores[best]}


def _inner_log_loss(z, labels, groups, c: float, num_classes: int) -> float:
    """Mean held-out log-loss of a logistic regression with inverse regularisation ``c`` over group-disjoint,
    label-stratified inner splits (0 when there are too few groups to split)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedGroupKFold

    splits = min(3, len(set(groups)), int(np.bincount(labels).max()))
    if splits < 2:
        return 0.0
    losses = []
    for train, test in StratifiedGroupKFold(splits).split(z, labels, groups):
        clf = LogisticRegression(C=c, max_iter=2000).fit(z[train], labels[train])
        probs = np.full((len(test), num_classes), 1e-6)
        probs[:, clf.classes_] = clf.predict_proba(z[test])
        losses.append(log_loss(labels[test], probs / probs.sum(1, keepdims=True), labels=range(num_classes)))
    return float(np.mean(losses))


def fit_head(model, train_clips, val_clips, labels, *, head, sample_rate, window_samples, batch_size, epochs,
             learning_rate, callbacks, verbose, log: SkipLog, label_smoothing: float = 0.0, multi_label=False,
             pos_weight=None) -> Optional[dict]:
    """Train the head of a frozen-backbone ``model`` on cached window features: ``head="keras"`` (dropout →
    Dense with Adam) or ``"logistic"`` (a logistic regression written into the same Dense layer). Without
    validation clips, returns a single-label head's out-of-fold predictions on the training clips (see
    :func:`out_of_fold`), which calibration is fitted on; else None."""
    say = print if verbose else (lambda *a, **k: None)
    say(f"computing frozen-backbone features of {len(train_clips) + len(val_clips)} clips once")
    kw = dict(sample_rate=sample_rate, window_samples=window_samples, batch_size=batch_size, log=log)
    x, y, owner = window_features(model, train_clips, labels, **kw)
    if not len(x):
        raise DatasetError("no usable training audio: all training files were skipped")
    val = window_features(model, val_clips, labels, **kw)[:2] if val_clips else None
    groups = np.array([train_clips[i].group or train_clips[i].id for i in owner])
    initial = model.get_layer("probabilities").get_weights()

    def fit(rows, callbacks=(), verbose=0, val=None):
        if head == "keras":
            return keras_head(model, x[rows], y[rows], val, epochs=epochs, learning_rate=learning_rate,
                              batch_size=batch_size, callbacks=callbacks, verbose=verbose,
                              label_smoothing=label_smoothing, multi_label=multi_label, pos_weight=pos_weight)
        return logistic_head(model, x[rows], y[rows], groups[rows])

    fitted = fit(np.arange(len(x)), callbacks, verbose, val)
    if head != "keras":
        say(f"logistic-regression head: C = {fitted['C']} (inner cross-validation log-loss "
            f"{fitted['inner_log_loss']:.3f})")
    if val_clips or multi_label:  # a tagger's sigmoid outputs get per-tag thresholds instead
        return None
    return out_of_fold(model, fit, initial, x, y, owner, groups)


#: Folds and repetitions (fold shuffles) of the out-of-fold predictions a head without validation clips is
#: calibrated on: with few clips, one partition's predictions are a noisy sample of how sure the head should be.
CALIBRATION_FOLDS, CALIBRATION_REPEATS = 5, 3


def fold_splits(clip_label, clip_group, folds: int, seed: int, num_classes: int) -> tuple:
    """``(by, [(train, test)...])``: label-stratified folds of clips, group-disjoint (artists) when every fold's
    training part still holds every class, else by clip (a class of one artist would be missing from a fold's
    training, and its predictions would say nothing about the head trained on every clip)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    clips = np.arange(len(clip_label))
    if len(set(clip_group)) >= folds:
        splits = list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(clips, clip_label,
                                                                                         clip_group))
        if all(len(set(clip_label[train])) == num_classes for train, _ in splits):
            return "group", splits
    return "clip", list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(clips, clip_label))


def out_of_fold(model, fit, initial, x, y, owner, groups, repeats: int = CALIBRATION_REPEATS) -> Optional[dict]:
    """The head's out-of-fold window probabilities: ``fit(rows)`` trains the head again from its ``initial``
    weights on all but one fold of clips (:func:`fold_splits`), which it then predicts; ``repeats`` fold
    shuffles give each clip that many predictions. ``model`` keeps the head trained on every clip. Returns
    ``{"window_probs", "owner", "y_true", "clip_fold", "folds", "by", "repeats"}`` (``owner`` indexes
    (repeat, clip) pairs; ``clip_fold`` is each clip's fold in the first shuffle), or None with too few clips
    per class to fold."""
    clips, clip_of_row = np.unique(owner, return_inverse=True)
    n = len(clips)
    clip_label = np.zeros(n, int)
    clip_label[clip_of_row] = y.argmax(1)
    clip_group = np.empty(n, object)
    clip_group[clip_of_row] = groups
    folds = min(CALIBRATION_FOLDS, int(np.bincount(clip_label).min()))
    if folds < 2:
        return None
    layer = model.get_layer("probabilities")
    final = layer.get_weights()
    probs, first_fold = [], np.zeros(n, int)
    for r in range(repeats):
        by, splits = fold_splits(clip_label, clip_group, folds, r, y.shape[1])
        rep = np.zeros_like(y, dtype=np.float64)
        for f, (_, test) in enumerate(splits):
            held = np.isin(clip_of_row, test)
            layer.set_weights(initial)
            fit(np.flatnonzero(~held))
            rep[held] = np.asarray(layer(x[held]), np.float64)
            if r == 0:
                first_fold[test] = f
        probs.append(rep)
    layer.set_weights(final)
    return {"window_probs": np.concatenate(probs), "owner": np.concatenate([clip_of_row + r * n
                                                                           for r in range(repeats)]),
            "y_true": np.tile(clip_label, repeats), "clip_fold": np.tile(first_fold, repeats), "folds": folds,
            "by": by, "repeats": repeats}
