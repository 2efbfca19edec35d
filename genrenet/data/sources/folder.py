"""Folder per class: ``PATH/<label>/**/<file>`` in any format libsndfile reads."""
from __future__ import annotations

import os
from typing import Optional

from ...errors import DatasetError
from .base import Clip, ClipDataset, check_dir, empty_class_notes, finish, scan, walk_audio


def folder_dataset(path: str, spec: Optional[str] = None) -> ClipDataset:
    """Folder-per-class: ``PATH/<label>/**/<file>`` in any format libsndfile reads."""
    spec = spec or path
    check_dir(path, spec)
    candidates, unsupported, notes = [], [], []
    for label in sorted(os.listdir(path)):
        sub = os.path.join(path, label)
        if os.path.isdir(sub) and not label.startswith("."):
            found = 0
            for f in walk_audio(sub, unsupported):
                rel = os.path.relpath(f, path)
                candidates.append(Clip(id=rel, label=label, path=f, group=rel))
                found += 1
            if not found:
                notes.append(f"folder {label!r} has no audio files: it is not used as a class")
    if not candidates:
        detail = f" ({len(unsupported)} in unsupported formats, e.g. {unsupported[0][0]})" if unsupported else ""
        raise DatasetError(f"{spec}: no audio files in class sub-folders (expected PATH/<label>/<file>.wav){detail}")
    clips, skipped = scan(candidates)
    notes += empty_class_notes(candidates, clips)
    return finish(os.path.basename(os.path.normpath(path)), spec, clips, skipped + unsupported, notes)


