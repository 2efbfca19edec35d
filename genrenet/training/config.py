"""``TrainConfig``: every training setting in one dataclass, with its default, read back from ``config.json``.

``genrenet.train("cnn", data, epochs=30, seed=0)`` and ``genrenet.train("cnn", data,
config=TrainConfig(epochs=30, seed=0))`` are the same run; keyword fields override a given config. A run's
``config.json`` holds :meth:`TrainConfig.to_dict` with every default resolved, so ``genrenet train --config
RUN/config.json`` trains the same run again.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
from typing import Any, Optional, Union

from ..data.cache import CachePolicy
from ..errors import ConfigError
from ..run.config import check_known, structured_config

# Defaults measured on the 40 real GTZAN dev clips (2-fold artist-aware CV, benchmarks/gtzan_dev.py). From
# scratch, models memorise 20 training clips within 30 epochs (training accuracy 0.97+) and score at the MFCC+SVM
# baseline (crnn_attention 0.55); mixup with 60 epochs of cosine-decayed learning rate lifts crnn_attention to
# 0.675 ± 0.037 and pitch shift on top of it to 0.708 ± 0.033 (3 fold partitions × 3 seeds; 0.69 instead of 0.60
# on clips by unseen artists). More crops, 120 epochs, SpecAugment and label smoothing measured no better
# (benchmarks/scratch_recipe.py). A frozen pretrained backbone's head trains on cached features, where
# augmentation does not apply and longer training only overfits: 30 epochs at a constant rate (musicnn msd 0.81
# ± 0.03 over 15 runs, benchmarks/transfer_recipe.py; 60 cosine epochs: 5 points lower).
DEFAULT_EPOCHS = 60
DEFAULT_PATIENCE = 10
DEFAULT_AUGMENT = ("pitch", "mixup")
DEFAULT_LR_SCHEDULE = "cosine"
HEAD_EPOCHS = 30
HEAD_LR_SCHEDULE = "constant"
HEAD_TRAINER = "keras"
HEAD_TRAINERS = ("keras", "logistic")
LR_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("off", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
POS_WEIGHTS = ("none", "balanced")
CHOICES = {"lr_schedule": LR_SCHEDULES, "head": HEAD_TRAINERS, "mixed_precision": PRECISIONS,
           "strategy": STRATEGIES, "pos_weight": POS_WEIGHTS}


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# kind → (test, how the message names it)
KINDS = {"int": (_is_int, "an integer"), "number": (_is_number, "a number"),
         "bool": (lambda v: isinstance(v, bool), "true or false"), "str": (lambda v: isinstance(v, str), "a string"),
         "dict": (lambda v: isinstance(v, dict), "a dict of hyper-parameters")}
# setting → (kind, range test or None, the range in words); ``cache`` and ``memory_budget`` are checked where the
# cache is chosen.
RANGES = {
    "epochs": ("int", lambda v: v >= 1, "≥ 1"), "batch_size": ("int", lambda v: v >= 1, "≥ 1"),
    "learning_rate": ("number", lambda v: v > 0, "> 0"), "lr_schedule": ("str", None, ""),
    "label_smoothing": ("number", lambda v: 0 <= v < 1, "in [0, 1)"), "seed": ("int", lambda v: v >= 0, "≥ 0"),
    "patience": ("int", lambda v: v >= 0, "≥ 0"), "val_fraction": ("number", lambda v: 0 <= v < 1, "in [0, 1)"),
    "window_seconds": ("number", lambda v: v > 0, "> 0"), "crops_per_clip": ("int", lambda v: v >= 1, "≥ 1"),
    "model_kwargs": ("dict", None, ""), "pretrained": ("str", None, ""), "freeze_backbone": ("bool", None, ""),
    "head": ("str", None, ""), "fine_tune_epochs": ("int", lambda v: v >= 0, "≥ 0"),
    "fine_tune_learning_rate": ("number", lambda v: v > 0, "> 0"), "deterministic": ("bool", None, ""),
    "mixed_precision": ("str", None, ""), "strategy": ("str", None, ""), "data_service": ("str", None, ""),
    "evaluate_val": ("bool", None, ""), "multi_label": ("bool", None, ""), "pos_weight": ("str", None, ""),
    "threshold_folds": ("int", lambda v: v == 0 or v >= 2, "0 or ≥ 2"),
}
# Settings whose ``None`` stands for a default resolved later.
OPTIONAL = ("epochs", "lr_schedule", "patience", "val_fraction", "window_seconds", "crops_per_clip", "pretrained",
            "freeze_backbone", "head", "data_service", "multi_label")


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a training run. ``None`` means "the measured default" (resolved by :meth:`resolved`)."""

    epochs: Optional[int] = None
    """Epochs to train: 60 from scratch, 30 for the head of a frozen pretrained backbone."""
    batch_size: int = 32
    """Windows per batch and replica (the global batch is ``batch_size × replicas``)."""
    learning_rate: float = 1e-3
    """Adam's (initial) learning rate."""
    lr_schedule: Optional[str] = None
    """``cosine`` (decay to ~0 over ``epochs``; the default from scratch) or ``constant`` (frozen head)."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy (Keras' ``label_smoothing``): 0.1 spreads a tenth of each target's
    mass over all classes."""
    seed: int = 0
    """Seeds weights, splits, crops, shuffles and augmentation."""
    patience: Optional[int] = None
    """Early stopping: epochs without a better monitored loss before training stops (best weights kept).
    Default 10; without validation clips under the cosine schedule none (the whole schedule runs): stopping on
    the training loss would cut the decaying schedule short."""
    val_fraction: Optional[float] = None
    """Held-out part for datasets without a split; default 0.2 when every class has 10+ clips, else none."""
    window_seconds: Optional[float] = None
    """Window length the model sees (default: the model's own)."""
    crops_per_clip: Optional[int] = None
    """Random windows per clip and epoch (default: clip length / window length)."""
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    """Hyper-parameters that override the builder's defaults, e.g. ``{"dropout": 0.5}``."""
    pretrained: Optional[str] = None
    """Pretrained weights tag, e.g. ``msd`` for musicnn; the backbone is then frozen unless told otherwise."""
    freeze_backbone: Optional[bool] = None
    """With ``pretrained``: train only the new head (default) or everything (``False``)."""
    head: Optional[str] = None
    """How a frozen backbone's head trains on its cached features: ``keras`` (dropout → Dense with Adam for
    ``epochs``) or ``logistic`` (a logistic regression with C chosen by inner cross-validation, written into the
    same Dense layer). Default: the one measured better (:data:`HEAD_TRAINER`)."""
    fine_tune_epochs: int = 0
    """After the first phase, train the whole model (BatchNorm frozen) for up to this many epochs."""
    fine_tune_learning_rate: float = 1e-5
    """Learning rate of the fine-tuning phase."""
    augment: Any = "default"
    """Training-only augmentation: names, a comma string, a dict of parameters, ``none``, or ``default``
    (pitch shift and mixup from scratch, none for a frozen head). See :mod:`genrenet.data.augment`."""
    cache: Union[str, CachePolicy] = "auto"
    """Decoded audio: ``auto`` (in memory when it fits in ``memory_budget``, else on disk in
    ``$GENRENET_CACHE/audio``, default ``~/.cache/genrenet/audio``), ``memory``, ``none`` (decoded every epoch),
    or a directory on disk (``True``/``False`` are read as ``memory``/``none``). Resolved once per run into a
    :class:`~genrenet.data.cache.CachePolicy`; ``config.json`` records the choice made."""
    memory_budget: Optional[int] = None
    """Bytes of decoded audio ``cache="auto"`` may keep in memory (default: half the memory available to the
    process, container limits included)."""
    deterministic: bool = False
    """Deterministic TF ops: with the same seed, two runs give bit-identical weights on CPU."""
    mixed_precision: str = "off"
    """``off``, ``mixed_float16`` or ``mixed_bfloat16`` (front-end and softmax stay float32)."""
    strategy: str = "default"
    """tf.distribute strategy: ``default``, ``mirrored``, ``multi_worker`` (``TF_CONFIG``) or ``tpu``."""
    data_service: Optional[str] = None
    """``grpc://HOST:PORT`` of a tf.data service whose workers make the training batches (needs a cache dir)."""
    evaluate_val: bool = True
    """Evaluate the kept model on the validation clips at the end (``val_*`` in ``metrics.json``)."""
    multi_label: Optional[bool] = None
    """Tags instead of one class per clip: sigmoid outputs trained with binary cross-entropy, and per-tag
    thresholds tuned on the validation clips (``thresholds.json``). Default: on when a clip of the dataset carries
    more than one label; ``True`` also for data where each clip happens to carry one tag."""
    pos_weight: str = "none"
    """Multi-label only: ``balanced`` weights each tag's positive clips by its negatives / positives in the
    training clips (at most 100), so rare tags are not learnt as "always off"; ``none`` weights all alike."""
    threshold_folds: int = 3
    """Multi-label runs without validation clips: tune the per-tag thresholds on out-of-fold predictions of this
    many extra trainings (each on all training clips but one fold, scoring that fold; artist-disjoint folds).
    0: no extra training, every tag's threshold is 0.5. Runs with validation clips tune on those instead."""

    @classmethod
    def fields(cls) -> tuple:
        """The names of every setting."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes``; an unknown name raises :class:`~genrenet.errors.ConfigError` naming the
        closest setting."""
        check_known(changes, self.fields(), "training setting")
        return dataclasses.replace(self, **changes)

    def check(self) -> "TrainConfig":
        """Raise :class:`~genrenet.errors.ConfigError` (``param`` = the setting) for a value of the wrong type,
        out of its range, or in a bad combination, before any work starts."""
        for name, (kind, test, wanted) in RANGES.items():
            value = getattr(self, name)
            if value is None and name in OPTIONAL:
                continue
            if not KINDS[kind][0](value):
                raise ConfigError(f"must be {KINDS[kind][1]}, got {value!r}", param=name)
            if test is not None and not test(value):
                raise ConfigError(f"must be {wanted}, got {value!r}", param=name)
        self._check_choices()
        self._check_model_kwargs()
        self._check_combinations()
        from ..data.augment import Augment  # TensorFlow: only once settings are checked for training

        Augment.resolve(None if self.augment == "default" else self.augment)  # raises AugmentError when unknown
        CachePolicy.of(self.cache)  # raises ConfigError (param cache) for anything else
        return self

    def _check_choices(self):
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise ConfigError(f"must be one of {', '.join(choices)}, got {value!r}", param=name)

    def _check_model_kwargs(self):
        """Hyper-parameters only: what the model sees and how many classes it has are set by training itself."""
        from ..registry import BUILDER_INPUTS

        taken = sorted(set(self.model_kwargs) & set(BUILDER_INPUTS))
        if taken:
            raise ConfigError(f"{', '.join(taken)}: not a model hyper-parameter (the window is window_seconds, the "
                              "classes come from the data, features and SpecAugment from the model and augment)",
                              param="model_kwargs")

    def _check_combinations(self):
        if self.head is not None and not self.head_only:
            raise ConfigError("chooses how a frozen pretrained backbone's head trains: it needs pretrained "
                              "weights with the backbone frozen", param="head")
        if self.pos_weight != "none" and self.multi_label is False:
            raise ConfigError("weights the positives of each tag: it needs multi-label training", param="pos_weight")
        if self.multi_label and self.head == "logistic":
            raise ConfigError("the logistic head picks one class per clip; multi-label heads train with keras",
                              param="head")
        if self.label_smoothing and self.head == "logistic":
            raise ConfigError("applies to training with Adam, not to the logistic head", param="label_smoothing")
        if self.freeze_backbone and not self.pretrained:
            raise ConfigError("needs pretrained weights (a pretrained tag such as msd)", param="freeze_backbone")
        if self.head_only and (self.strategy != "default" or self.data_service):
            raise ConfigError("not supported for a frozen pretrained backbone: its head trains on cached features "
                              "in seconds", param="strategy" if self.strategy != "default" else "data_service")

    @property
    def head_only(self) -> bool:
        """Whether only the head of a frozen pretrained backbone trains (on cached backbone features)."""
        return bool(self.pretrained) and self.freeze_backbone is not False

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None``/``default`` replaced by the value it stands for."""
        head = self.head_only
        augment = self.augment
        if isinstance(augment, str) and augment == "default":
            augment = None if head else DEFAULT_AUGMENT
        from ..data.augment import Augment  # TensorFlow: reading settings does not need it

        return dataclasses.replace(
            self, epochs=self.epochs if self.epochs is not None else (HEAD_EPOCHS if head else DEFAULT_EPOCHS),
            lr_schedule=self.lr_schedule or (HEAD_LR_SCHEDULE if head else DEFAULT_LR_SCHEDULE),
            augment=Augment.resolve(augment).to_dict(), head=(self.head or HEAD_TRAINER) if head else None,
            freeze_backbone=head if self.pretrained else self.freeze_backbone,
            model_kwargs=dict(self.model_kwargs))

    def with_patience(self, has_validation: bool) -> "TrainConfig":
        """A copy with ``patience`` resolved for the data: :data:`DEFAULT_PATIENCE`, or without validation clips
        under the cosine schedule the whole run (on the 40 real dev clips, 120-epoch cosine runs that stopped on the
        training loss ended at epochs 33–69 and scored 12 points below the whole schedule on the same folds)."""
        if self.patience is not None:
            return self
        if has_validation or self.lr_schedule != "cosine":
            return dataclasses.replace(self, patience=DEFAULT_PATIENCE)
        return dataclasses.replace(self, patience=(self.epochs or DEFAULT_EPOCHS) + self.fine_tune_epochs)

    def to_dict(self) -> dict:
        """JSON-ready settings (the cache as its setting: ``auto``, ``memory``, ``none`` or a directory)."""
        out = {**dataclasses.asdict(self), "cache": str(CachePolicy.of(self.cache))}
        return json.loads(json.dumps(out, default=list))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """The settings in ``values`` (e.g. the ``training`` part of a run's ``config.json``); a key that is not
        a setting raises :class:`~genrenet.errors.ConfigError` naming the closest one, so a typo never passes
        for a default."""
        check_known(values, cls.fields(), "training setting")
        return cls(**values)


def load_run_config(path) -> tuple:
    """``(model name, data spec, TrainConfig)`` of a saved run's ``config.json`` (either layout), to train the
    same run again: ``genrenet train --config RUN/config.json``."""
    with open(path, encoding="utf-8") as f:
        try:
            raw = json.load(f)
        except ValueError as e:
            raise ConfigError(f"{path}: not JSON ({e})") from None
    try:
        config = structured_config(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e.message}", param=e.param) from None
    if "training" not in config:
        raise ConfigError(f"{path}: {config['model']['name']} was not trained (no training part): nothing to "
                          "train again")
    return config["model"]["name"], config.get("data", {}).get("spec"), TrainConfig.from_dict(config["training"])
