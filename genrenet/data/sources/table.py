"""``csv:FILE``: a list of ``path,label[,split][,group]`` rows, or ``path,labels[,split][,group]`` for multi-label
data (``labels`` holds every tag of the clip, ``|``-separated: ``rock|indie|90s``)."""
from __future__ import annotations

import csv
import os
from typing import Optional

from ...errors import DatasetError
from .base import SPLIT_ALIASES, Clip, ClipDataset, empty_class_notes, finish, scan


def csv_dataset(path: str, spec: Optional[str] = None) -> ClipDataset:
    """``path,label[,split][,group]`` (or ``labels`` instead of ``label``: ``|``-separated tags) with a header;
    relative paths are relative to the CSV file."""
    spec = spec or f"csv:{path}"
    if not os.path.isfile(path):
        raise DatasetError(f"{spec}: file not found")
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        column = "labels" if "labels" in columns and "label" not in columns else "label"
        missing = [c for c in ("path", column) if c not in columns]
        if missing:
            raise DatasetError(f"{spec}: missing column(s) {missing}; the header must have path,label[,split][,group] "
                               "or path,labels[,split][,group]")
        candidates, skipped = [], []
        for row_no, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            tags = split_tags(row["labels"]) if column == "labels" else tuple(filter(None, [row.get("label")]))
            if not row.get("path") or not tags:
                skipped.append((f"{path}:{row_no}", f"empty path or {column}"))
                continue
            split = row.get("split") or None
            if split is not None and split.lower() not in SPLIT_ALIASES:
                skipped.append((f"{path}:{row_no}", f"unknown split {split!r} (use train/val/test)"))
                continue
            audio_path = row["path"] if os.path.isabs(row["path"]) else os.path.join(base, row["path"])
            candidates.append(Clip(id=row["path"], label=tags[0], tags=tags if column == "labels" else (),
                                   path=audio_path, split=SPLIT_ALIASES[split.lower()] if split else None,
                                   group=row.get("group") or row["path"]))
    clips, unreadable = scan(candidates)
    return finish(os.path.splitext(os.path.basename(path))[0], spec, clips, skipped + unreadable,
                   empty_class_notes(candidates, clips))


TAG_SEPARATOR = "|"


def split_tags(text: str) -> tuple:
    """``"rock| indie|rock"`` → ``("rock", "indie")``: a ``labels`` cell's tags, stripped, each once, in order."""
    return tuple(dict.fromkeys(t.strip() for t in text.split(TAG_SEPARATOR) if t.strip()))
