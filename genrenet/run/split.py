"""``split.json``: which clips a run trained and validated on, by clip id (a clip's path relative to its
dataset, or the dataset's own id), so that ``evaluate`` can score the run's held-out clips again and can tell
when it is asked to score clips the run learned from."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from ..errors import RunError

SPLIT_FILE = "split.json"


@dataclasses.dataclass(frozen=True)
class RunSplit:
    """The ids of a run's training and validation clips, and which data they are clips of."""

    data: str
    train: frozenset
    val: frozenset

    def is_data_of(self, spec: str) -> bool:
        """Whether the data spec ``spec`` reads the data this run trained on (clip ids name clips only there)."""
        return data_key(spec) == data_key(self.data)

    def ids(self, name: str) -> frozenset:
        """The ids of split ``train`` or ``val``."""
        return self.train if name == "train" else self.val


def split_record(data_spec: str, train_clips, val_clips) -> dict:
    """What ``split.json`` holds: the data spec and the sorted ids of the training and validation clips."""
    return {"data": data_spec, "train": sorted(c.id for c in train_clips), "val": sorted(c.id for c in val_clips)}


def read_split(run_path) -> Optional[RunSplit]:
    """The run's :class:`RunSplit`, or None for a run that does not record one (an ensemble, a preset, a run
    written before runs recorded their split)."""
    path = os.path.join(os.fspath(run_path), SPLIT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        return RunSplit(str(record["data"]), frozenset(record["train"]), frozenset(record["val"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunError(f"{path}: cannot read the run's split ({e})") from None


def data_key(spec: str) -> str:
    """What identifies the clips of a data spec: the real path of its file or folder (however it is written,
    whatever its ``kind:`` prefix or ``?folds=`` options), else the spec itself (``synthetic:...``)."""
    spec = str(spec)
    kind, sep, rest = spec.partition(":")
    path = rest if sep and not os.path.exists(spec) else spec
    path = os.path.expanduser(path if os.path.exists(path) else path.rsplit("?", 1)[0])
    return os.path.realpath(path) if os.path.exists(path) else spec
