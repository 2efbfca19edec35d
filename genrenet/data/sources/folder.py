"""Folder per class: ``PATH/<label>/**/<file>`` in any format libsndfile reads.

Every file below ``PATH`` is accounted for: an audio file in a class folder is a candidate clip (or a skip,
with the decoder's reason, when its header does not read); anything else is *ignored*, with its reason (not
audio, hidden, or outside the class folders), and reported like the skips.
"""
from __future__ import annotations

import os
from typing import Optional

from ...errors import DatasetError
from ..audio import unsupported_format
from .base import (Clip, ClipDataset, check_dir, empty_class_notes, file_reason, finish, scan, walk_files,
                   walked_link)

OUTSIDE_CLASSES = "outside the class folders (PATH/<label>/<file>)"


def class_folder_files(path: str) -> tuple[list, list, list, list]:
    """``(candidates, skipped, ignored, notes)`` for every file below ``path``: candidate clips (label = class
    folder, id = path relative to ``path``), files skipped now (unreadable folders, unsupported formats) and
    ignored files, each as (path, reason)."""
    candidates, skipped, ignored, notes = [], [], [], []
    seen = set()  # real folders and files read: each is read once, under one label
    for label in sorted(os.listdir(path)):
        sub = os.path.join(path, label)
        if not os.path.isdir(sub):
            ignored.append((sub, file_reason(sub, path) or f"audio file {OUTSIDE_CLASSES}"))
            continue
        if not walked_link(sub, os.path.realpath(path), seen, skipped):
            continue
        found = 0
        for f in walk_files(sub, skipped, dataset=path, seen=seen):
            reason = file_reason(f, path)
            if reason:
                ignored.append((f, reason))
            elif unsupported_format(f):
                skipped.append((f, unsupported_format(f)))
            else:
                rel = os.path.relpath(f, path)
                candidates.append(Clip(id=rel, label=label, path=f, group=rel))
                found += 1
        if not found and not label.startswith("."):
            notes.append(f"folder {label!r} has no audio files: it is not used as a class")
    return candidates, skipped, ignored, notes


def folder_dataset(path: str, spec: Optional[str] = None) -> ClipDataset:
    """Folder-per-class: ``PATH/<label>/**/<file>`` in any format libsndfile reads."""
    spec = spec or path
    check_dir(path, spec)
    candidates, skipped, ignored, notes = class_folder_files(path)
    if not candidates:
        found = skipped + ignored
        detail = f" ({len(found)} other files, e.g. {found[0][0]}: {found[0][1]})" if found else ""
        raise DatasetError(f"{spec}: no audio files in class sub-folders (expected PATH/<label>/<file>.wav){detail}")
    clips, unreadable = scan(candidates)
    notes += empty_class_notes(candidates, clips)
    return finish(os.path.basename(os.path.normpath(path)), spec, clips, unreadable + skipped, notes,
                  ignored=ignored)
