"""MagnaTagATune top-50 (Law et al., ISMIR 2009): ``mtt:PATH``.

Layout (the dataset's files, and the split lists of sota-music-tagging-models, Won et al. 2020)::

    PATH/annotations_final.csv        tab-separated, every field in double quotes: clip_id, 188 tag columns
                                      (0/1), mp3_path (e.g. f/american_bach_soloists-...-30-59.mp3)
    PATH/0/..., PATH/f/...            the clips (or PATH/mp3/0/...)
    PATH/split/train.npy              (or ?split=DIR) the split lists: NumPy string arrays of "INDEX<TAB>mp3_path",
    PATH/split/valid.npy              INDEX being the clip's row among the annotations (0 = the first data row)
    PATH/split/test.npy
    PATH/split/tags.npy               (optional) the 50 tag names; without it, the 50 most frequent tags

The top-50 tags are the labels; a listed clip without any of them is skipped with that reason. A clip's group is
its song (the mp3 name without the ``-START-END`` segment), so further hold-outs and folds never split a song's
segments. Without split lists the dataset has no predefined split (use ``?folds=K&fold=I`` or a hold-out).
"""
from __future__ import annotations

import csv
import os
import re
from collections import Counter
from typing import Optional

import numpy as np

from ...errors import DatasetError
from .base import Clip, ClipDataset, apply_options, finish, parse_options

ANNOTATIONS = "annotations_final.csv"
SPLIT_LISTS = (("train", "train"), ("valid", "val"), ("test", "test"))
TOP = 50
SEGMENT = re.compile(r"-\d+-\d+\.mp3$")


def read_annotations(path: str) -> tuple[list, list]:
    """``(tag names, rows)`` of ``annotations_final.csv``; each row ``(clip_id, mp3_path, {tag: 0/1})``."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None) or []
        if len(header) < 3 or header[0] != "clip_id" or header[-1] != "mp3_path":
            raise DatasetError(f"{path}: not MagnaTagATune's {ANNOTATIONS} (a tab-separated header clip_id, the tag "
                               "columns, mp3_path)")
        tags, rows = header[1:-1], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header) or any(v not in ("0", "1") for v in row[1:-1]):
                raise DatasetError(f"{path}:{line}: expected clip_id, {len(tags)} values 0 or 1, mp3_path")
            rows.append((row[0], row[-1], dict(zip(tags, map(int, row[1:-1])))))
    return tags, rows


def top_tags(root_lists: Optional[str], rows: list) -> list:
    """The 50 tags: ``tags.npy`` of the split lists when present, else the 50 most frequent."""
    listed = os.path.join(root_lists, "tags.npy") if root_lists else None
    if listed and os.path.isfile(listed):
        return [str(t) for t in np.load(listed)]
    counts = Counter()
    for _, _, values in rows:
        counts.update({t: v for t, v in values.items()})
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]


def split_lists(folder: str) -> dict:
    """``{row index: split}`` from ``train.npy``, ``valid.npy`` and ``test.npy`` ("INDEX<TAB>mp3_path" strings)."""
    splits = {}
    for stem, name in SPLIT_LISTS:
        path = os.path.join(folder, f"{stem}.npy")
        if not os.path.isfile(path):
            raise DatasetError(f"{path} not found (the split lists are train.npy, valid.npy and test.npy)")
        for entry in np.load(path):
            index, sep, _ = str(entry).partition("\t")
            if not sep or not index.isdigit():
                raise DatasetError(f"{path}: entries must be 'INDEX<TAB>mp3_path', got {str(entry)!r}")
            splits[int(index)] = name
    return splits


def clip_file(root: str, mp3_path: str) -> str:
    """Where the clip is: ``ROOT/<mp3_path>`` or ``ROOT/mp3/<mp3_path>``."""
    nested = os.path.join(root, "mp3", mp3_path)
    return nested if os.path.exists(nested) and not os.path.exists(os.path.join(root, mp3_path)) else \
        os.path.join(root, mp3_path)


def mtt_dataset(path: str, spec: Optional[str] = None) -> ClipDataset:
    """The ``mtt:PATH`` source: MagnaTagATune clips with their top-50 tags and the split lists' splits."""
    path, opts = parse_options(path, known=("split", "folds", "fold", "seed"))
    spec = spec or f"mtt:{path}"
    annotations = os.path.join(path, ANNOTATIONS)
    if not os.path.isfile(annotations):
        raise DatasetError(f"{spec}: {ANNOTATIONS} not found in {path}")
    lists = opts.get("split") or next((d for d in (os.path.join(path, "split"), path)
                                       if os.path.isfile(os.path.join(d, "train.npy"))), None)
    _, rows = read_annotations(annotations)
    tags = top_tags(lists, rows)
    splits = split_lists(lists) if lists else None
    clips, skipped = [], []
    for index, (clip_id, mp3_path, values) in enumerate(rows):
        if splits is not None and index not in splits:
            continue
        on = tuple(t for t in tags if values.get(t))
        file = clip_file(path, mp3_path)
        reason = ("none of the top-50 tags" if not on else
                  "file not found (listed in annotations_final.csv)" if not os.path.isfile(file) else
                  "contains no audio (zero length)" if not os.path.getsize(file) else None)
        if reason:
            skipped.append((file, reason))
            continue
        clips.append(Clip(id=clip_id, label=on[0], tags=on, path=file, split=splits[index] if splits else None,
                          group=SEGMENT.sub("", mp3_path), seconds=None))
    notes = [f"MagnaTagATune top-{len(tags)}: " + (", ".join(f"{s} {sum(c.split == s for c in clips)}"
                                                         for _, s in SPLIT_LISTS) if splits else
                                                  "no split lists (train.npy, valid.npy, test.npy): no predefined "
                                                  "split")]
    dataset = finish("mtt_top50", spec, clips, skipped, notes)
    return apply_options(dataset, opts)
