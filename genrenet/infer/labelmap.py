"""Label maps: a model's labels turned into the labels a user wants (``--labels-map FILE``).

A map is a JSON or YAML object ``{model label: user label}``: many model labels may share one user label, and a
model label the map does not name is dropped. :class:`LabelMap` is the one place that applies it, to a file's
probabilities and to every window's (``predict``, timelines, the app and Beam all go through it).

How several model labels become one user label:

- *multi-label sources* (independent sigmoid probabilities): the **maximum**. A song is "hiphop" as much as its
  most "hiphop" tag says; summing independent probabilities could exceed 1 and would reward near-synonyms
  (``electronic`` + ``electronica`` + ``electro``) for being split. A user label passes its threshold when any
  of its model labels passes its own.
- *single-label sources* (softmax): the **sum**. The classes are exclusive, so the probability of "any of these
  classes" is their sum. Dropped classes take their share with them: the mapped probabilities sum to less than
  1 when the map leaves classes out (that remainder is the probability of "none of the user's labels").
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ..errors import ConfigError, MissingDependencyError

PARAM = "labels_map"


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """``mapping`` {model label: user label} read from ``path`` (for messages)."""

    mapping: dict
    path: str = "label map"

    @property
    def labels(self) -> list:
        """The user labels, in the order the map first names them."""
        return list(dict.fromkeys(self.mapping.values()))

    def check(self, model_labels) -> "LabelMap":
        """This map, after checking that every label it maps is one of ``model_labels``."""
        unknown = [k for k in self.mapping if k not in set(model_labels)]
        if unknown:
            raise ConfigError(f"{self.path}: {len(unknown)} label(s) the model does not have: "
                              f"{', '.join(map(repr, unknown[:10]))}; the model's labels are: "
                              f"{', '.join(model_labels)}", param=PARAM)
        return self

    def apply(self, model_labels, probs, *, multi_label: bool):
        """``(user labels, probabilities [..., U])`` from probabilities ``[..., C]`` over ``model_labels``:
        the maximum of a user label's model labels for a multi-label source, their sum for a softmax one."""
        probs = np.asarray(probs)
        index = {label: i for i, label in enumerate(model_labels)}
        combine = np.max if multi_label else np.sum
        columns = [combine(probs[..., [index[k] for k, v in self.mapping.items() if v == user]], axis=-1)
                   for user in self.labels]
        return self.labels, np.stack(columns, axis=-1)


def load_label_map(path) -> LabelMap:
    """The :class:`LabelMap` in ``path`` (``.json``, ``.yaml`` or ``.yml``): an object whose keys are model labels
    and whose values are user labels (strings). Any other content raises :class:`ConfigError` naming the file."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the label map ({e.strerror or e})", param=PARAM) from None
    mapping = _parse(path, text)
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError(f"{path}: a label map is a non-empty object {{model label: your label}}, got "
                          f"{type(mapping).__name__}", param=PARAM)
    bad = [k for k, v in mapping.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ConfigError(f"{path}: every label must map to a label name (text); not so for: "
                          f"{', '.join(map(repr, bad[:10]))}", param=PARAM)
    return LabelMap({str(k): v for k, v in mapping.items()}, path)


def _parse(path: str, text: str):
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise MissingDependencyError("YAML label maps need PyYAML: pip install pyyaml (or write the map as "
                                         "JSON)") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})", param=PARAM) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); a label map is a .json, .yaml or .yml file",
                          param=PARAM) from None
