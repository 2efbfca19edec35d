"""FMA (Defferrard et al., ISMIR 2017): ``fma:PATH`` or ``fma:PATH?subset=small|medium|large``.

Layout (as the official zips extract)::

    PATH/fma_metadata/tracks.csv          (or PATH/tracks.csv)
    PATH/fma_small/000/000002.mp3         (and/or fma_medium/, fma_large/)

``tracks.csv`` has a three-row header (column groups like ``set``/``track``/``artist``, then column names, then
``track_id``). A clip's label is its top-level genre (``track.genre_top``), its split the official one
(``set.split``: training/validation/test → train/val/test), its group the artist (``artist.id``), so
held-out parts and folds stay artist-disjoint. The subset follows the audio folder that exists (the smallest
when several do; say ``?subset=medium`` to choose); ``medium`` includes the ``small`` tracks, as FMA defines.
Files are checked for existence and non-zero size only (probing 25 000 MP3 headers is slow); a file that fails
to decode is skipped and listed by the pipeline, like any other source.
"""
from __future__ import annotations

import csv
import os
import sys
from typing import Optional

from ...errors import DatasetError
from .base import Clip, ClipDataset, finish, parse_options

SUBSETS = ("small", "medium", "large")
_SPLITS = {"training": "train", "validation": "val", "test": "test"}
NEEDED = {("set", "split"): "split", ("set", "subset"): "subset", ("track", "genre_top"): "genre",
          ("artist", "id"): "artist"}


def read_tracks(csv_path: str) -> list[dict]:
    """Rows of ``tracks.csv`` as ``{"track_id", "split", "subset", "genre", "artist"}`` (strings)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # biographies and comments are long
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        try:
            top, names, third = next(reader), next(reader), next(reader)
        except StopIteration:
            raise DatasetError(f"{csv_path}: not FMA's tracks.csv (it has fewer than its 3 header rows)") from None
        columns = {}
        group = ""
        for i, (t, n) in enumerate(zip(top, names)):
            group = t.strip() or group
            columns[(t.strip(), n.strip())] = i
        missing = [k for k in NEEDED if k not in columns]
        if missing or not third or third[0].strip() != "track_id":
            raise DatasetError(f"{csv_path}: not FMA's tracks.csv (need a 3-row header with track_id and columns "
                               f"{', '.join('.'.join(k) for k in NEEDED)}; missing {missing or 'track_id'})")
        index = {name: columns[key] for key, name in NEEDED.items()}
        rows = []
        for row in reader:
            if not row or not row[0].strip().isdigit():
                continue
            rec = {"track_id": row[0].strip()}
            for name, i in index.items():
                rec[name] = row[i].strip() if i < len(row) else ""
            rows.append(rec)
    return rows


def audio_path(root: str, subset: str, track_id) -> str:
    """Where FMA keeps a track: ``ROOT/fma_SUBSET/NNN/NNNNNN.mp3``."""
    tid = f"{int(track_id):06d}"
    return os.path.join(root, f"fma_{subset}", tid[:3], f"{tid}.mp3")


def fma_dataset(path: str, spec: Optional[str] = None, *, subset: Optional[str] = None) -> ClipDataset:
    """The ``fma:PATH`` source: tracks of the audio subset present, top-level genre, official split, artist groups."""
    path, opts = parse_options(path, known=("subset",))
    subset = subset or opts.get("subset")
    spec = spec or f"fma:{path}"
    if not os.path.isdir(path):
        raise DatasetError(f"{spec}: path not found" if not os.path.exists(path) else f"{spec}: not a directory")
    csv_path = next((p for p in (os.path.join(path, "fma_metadata", "tracks.csv"), os.path.join(path, "tracks.csv"))
                     if os.path.isfile(p)), None)
    if csv_path is None:
        raise DatasetError(f"{spec}: fma_metadata/tracks.csv not found (genrenet download fma_metadata --dir {path})")
    present = [s for s in SUBSETS if os.path.isdir(os.path.join(path, f"fma_{s}"))]
    notes = []
    if subset is None:
        if not present:
            raise DatasetError(f"{spec}: no audio folder (fma_small/, fma_medium/ or fma_large/) found")
        subset = present[0]
        if len(present) > 1:
            notes.append(f"FMA: found {', '.join('fma_' + s for s in present)}; using {subset} "
                         f"(choose with fma:{path}?subset=NAME)")
    if subset not in SUBSETS:
        raise DatasetError(f"{spec}: unknown subset {subset!r}; use one of {', '.join(SUBSETS)}")
    if subset not in present:
        raise DatasetError(f"{spec}: subset {subset} asked for but {os.path.join(path, 'fma_' + subset)} is missing")
    level = SUBSETS.index(subset)
    clips, skipped, no_genre = [], [], 0
    for rec in read_tracks(csv_path):
        if rec["subset"] not in SUBSETS or SUBSETS.index(rec["subset"]) > level:
            continue
        if not rec["genre"]:
            no_genre += 1
            continue
        f = audio_path(path, subset, rec["track_id"])
        try:
            size = os.path.getsize(f)
        except OSError:
            skipped.append((f, "file not found (listed in tracks.csv)"))
            continue
        if size == 0:
            skipped.append((f, "contains no audio (zero length)"))
            continue
        clips.append(Clip(id=f"{int(rec['track_id']):06d}", label=rec["genre"], path=f,
                          split=_SPLITS.get(rec["split"]), group=f"artist:{rec['artist'] or rec['track_id']}"))
    counts = {s: sum(c.split == s for c in clips) for s in ("train", "val", "test")}
    notes.append(f"FMA {subset}: official split train {counts['train']}, val {counts['val']}, test {counts['test']}"
                 + (f"; {no_genre} tracks without a top-level genre not used" if no_genre else ""))
    return finish(f"fma_{subset}", spec, clips, skipped, notes)

