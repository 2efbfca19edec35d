"""Model sources: what kind a source is (a preset, a run directory, an exported SavedModel version directory or a
``.tflite`` file) and the facts every consumer needs from it, read from its metadata without loading the model."""
from __future__ import annotations

import json
import os

EXPORT_META_FILE = "genrenet.json"  # assets/genrenet.json of an exported SavedModel


def load_export_meta(path: str) -> dict:
    """The ``genrenet.json`` recorded beside an exported SavedModel."""
    with open(os.path.join(path, "assets", EXPORT_META_FILE), encoding="utf-8") as f:
        return json.load(f)
