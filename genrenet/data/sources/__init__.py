"""Dataset specs → clip records: ``synthetic[:k=v,...]``, ``PATH``, ``gtzan:PATH``, ``fma:PATH``, ``csv:FILE``,
``tfrecord:PREFIX`` (written by ``genrenet prepare``), and the multi-label ``jamendo:PATH`` (MTG-Jamendo) and
``mtt:PATH`` (MagnaTagATune top-50).

One module per kind of source; each returns a :class:`ClipDataset` of :class:`Clip` records.
"""
from __future__ import annotations

import os
from typing import Callable

from ...errors import DatasetError
from .base import SPLITS, Clip, ClipDataset, apply_options, parse_options, with_folds
from .fma import fma_dataset
from .folder import folder_dataset
from .gtzan import GTZAN_GENRES, gtzan_artists, gtzan_dataset, gtzan_source, gtzan_split, looks_like_gtzan
from .jamendo import jamendo_dataset
from .mtt import mtt_dataset
from .synthetic import synthetic_dataset
from .table import csv_dataset
from .tfrecord import tfrecord_dataset

__all__ = ["GTZAN_GENRES", "SPLITS", "Clip", "ClipDataset", "DatasetError", "csv_dataset", "fma_dataset",
           "folder_dataset", "gtzan_artists", "gtzan_dataset", "gtzan_split", "jamendo_dataset", "load_dataset",
           "mtt_dataset", "parse_options",
           "synthetic_dataset", "tfrecord_dataset", "with_folds"]


def _with_options(loader):
    def load(path: str, spec: str) -> ClipDataset:
        path, opts = parse_options(path, known=("folds", "fold", "seed"))
        return apply_options(loader(path, spec), opts)

    return load


SOURCES: dict[str, Callable[[str, str], ClipDataset]] = {
    "gtzan": gtzan_source,
    "csv": _with_options(csv_dataset),
    "folder": _with_options(folder_dataset),
    "fma": lambda path, spec: fma_dataset(path, spec),
    "tfrecord": _with_options(tfrecord_dataset),
    "jamendo": lambda path, spec: jamendo_dataset(path, spec),
    "mtt": lambda path, spec: mtt_dataset(path, spec),
}


def load_dataset(spec: str) -> ClipDataset:
    """Resolve a data spec (see module docstring) to a :class:`ClipDataset`.

    A plain ``PATH`` is read folder-per-class (no predefined split; GTZAN-named files get artist groups);
    ``gtzan:PATH`` adds the fault-filtered split. Any folder, GTZAN or CSV spec takes ``?folds=K&fold=I``
    (``&seed=S``): fold I of a stratified, artist-disjoint K-fold partition is the test split.
    """
    spec = str(spec)
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return synthetic_dataset(spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind in SOURCES and not os.path.exists(spec):
        return SOURCES[kind](os.path.expanduser(rest), spec)
    path, opts = parse_options(os.path.expanduser(spec), known=("folds", "fold", "seed"))
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return apply_options(csv_dataset(path, spec), opts)
    if os.path.isdir(path) and looks_like_gtzan(path):
        return apply_options(gtzan_dataset(path, spec, split="none"), opts)
    return apply_options(folder_dataset(path, spec), opts)
