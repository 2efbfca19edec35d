"""MTG-Jamendo (Bogdanov et al., ICML 2019 ML4MD workshop): ``jamendo:PATH?subset=genre&split=0``.

Layout (a checkout of github.com/MTG/mtg-jamendo-dataset with the audio beside it)::

    PATH/data/splits/split-0/autotagging_genre-train.tsv   (or PATH/splits/split-0/...)
    PATH/data/splits/split-0/autotagging_genre-validation.tsv
    PATH/data/splits/split-0/autotagging_genre-test.tsv
    PATH/audio/14/214.mp3                                  (or ?audio=DIR; 14/214.low.mp3 also found)

Each split file is tab-separated with the header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS``; a row holds
``track_0000214  artist_000014  album_000031  14/214.mp3  124.6`` followed by one field per tag
(``genre---rock``, ``mood/theme---calm``, ...). ``subset`` is ``genre`` (default), ``instrument``, ``moodtheme``,
``top50tags`` or ``all`` (``autotagging-*.tsv``); ``split`` is one of the five official splits 0-4, artist-disjoint,
kept as train/val/test with the artist as each clip's group. A single-category subset names its tags without the
category (``rock``); ``top50tags`` and ``all`` keep it (``genre---rock``), since categories share words. Files are
checked for existence and size only (probing every full-length MP3 is slow); a file that fails to decode is
skipped by the pipeline like any other.
"""
from __future__ import annotations

import csv
import os
from typing import Optional

from ...errors import DatasetError
from .base import Clip, ClipDataset, finish, parse_options, walk_files

SUBSETS = {"genre": "autotagging_genre", "instrument": "autotagging_instrument",
           "moodtheme": "autotagging_moodtheme", "top50tags": "autotagging_top50tags", "all": "autotagging"}
SPLIT_FILES = (("train", "train"), ("validation", "val"), ("test", "test"))
HEADER = ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]
CATEGORY_SEPARATOR = "---"


def splits_dir(root: str, split: str, spec: str) -> str:
    """``ROOT/data/splits/split-N`` (a checkout of the dataset's repository) or ``ROOT/splits/split-N``."""
    for candidate in (os.path.join(root, "data", "splits", f"split-{split}"),
                      os.path.join(root, "splits", f"split-{split}")):
        if os.path.isdir(candidate):
            return candidate
    raise DatasetError(f"{spec}: no split-{split} folder (expected {root}/data/splits/split-{split}/ with the "
                       "autotagging_*.tsv files of github.com/MTG/mtg-jamendo-dataset)")


def read_split(path: str, keep_category: bool) -> list[dict]:
    """Rows of one split file as ``{"track", "artist", "path", "duration", "tags"}``; a file that is not in the
    dataset's format raises :class:`DatasetError` naming it and the line."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:6]] != HEADER:
            raise DatasetError(f"{path}: not an MTG-Jamendo split file (its header must be {' '.join(HEADER)}, "
                               "tab-separated)")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 6 or not row[0].startswith("track_") or CATEGORY_SEPARATOR not in row[5]:
                raise DatasetError(f"{path}:{line}: expected TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION and at "
                                   f"least one category---tag, tab-separated; got {row[:6]}")
            tags = [t.strip() if keep_category else t.strip().split(CATEGORY_SEPARATOR, 1)[1] for t in row[5:]
                    if t.strip()]
            rows.append({"track": row[0], "artist": row[1], "path": row[3], "duration": _seconds(row[4]),
                         "tags": tuple(dict.fromkeys(tags))})
    return rows


def _seconds(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def audio_file(audio_root: str, relative: str) -> str:
    """The track's file: ``14/214.mp3`` as listed, else the low-quality ``14/214.low.mp3`` when that is there."""
    full = os.path.join(audio_root, relative)
    low = os.path.splitext(full)[0] + ".low.mp3"
    return low if not os.path.exists(full) and os.path.exists(low) else full


def jamendo_dataset(path: str, spec: Optional[str] = None) -> ClipDataset:
    """The ``jamendo:PATH`` source: one official split of a tag subset, each track a multi-label clip."""
    path, opts = parse_options(path, known=("subset", "split", "audio"))
    spec = spec or f"jamendo:{path}"
    subset, split = opts.get("subset", "genre"), opts.get("split", "0")
    if subset not in SUBSETS:
        raise DatasetError(f"{spec}: unknown subset {subset!r}; use one of {', '.join(SUBSETS)}")
    if split not in {"0", "1", "2", "3", "4"}:
        raise DatasetError(f"{spec}: split must be one of the official splits 0-4, got {split!r}")
    if not os.path.isdir(path):
        raise DatasetError(f"{spec}: path not found" if not os.path.exists(path) else f"{spec}: not a directory")
    folder = splits_dir(path, split, spec)
    audio_root = opts.get("audio") or (os.path.join(path, "audio") if os.path.isdir(os.path.join(path, "audio"))
                                       else path)
    clips, skipped, seen = [], [], {}
    for part, name in SPLIT_FILES:
        tsv = os.path.join(folder, f"{SUBSETS[subset]}-{part}.tsv")
        if not os.path.isfile(tsv):
            raise DatasetError(f"{spec}: {tsv} not found")
        for row in read_split(tsv, keep_category=subset in ("top50tags", "all")):
            if row["track"] in seen:
                skipped.append((f"{tsv}: {row['track']}", f"listed again (already in {seen[row['track']]})"))
                continue
            seen[row["track"]] = name
            file = audio_file(audio_root, row["path"])
            reason = _missing(file, tsv)
            if reason:
                skipped.append((file, reason))
                continue
            clips.append(Clip(id=row["track"], label=row["tags"][0], tags=row["tags"], path=file, split=name,
                              group=row["artist"], seconds=row["duration"]))
    counts = {s: sum(c.split == s for c in clips) for _, s in SPLIT_FILES}
    notes = [f"MTG-Jamendo {subset} split-{split} (artist-disjoint): train {counts['train']}, val {counts['val']}, "
             f"test {counts['test']}"]
    claimed = {os.path.normpath(c.path) for c in clips} | {os.path.normpath(p) for p, _ in skipped}
    ignored = [(f, f"not a track of MTG-Jamendo {subset} split-{split}") for f in
               (walk_files(audio_root) if audio_root != path else []) if os.path.normpath(f) not in claimed]
    return finish(f"jamendo_{subset}_split{split}", spec, clips, skipped, notes, ignored=ignored)


def _missing(file: str, tsv: str) -> Optional[str]:
    try:
        size = os.path.getsize(file)
    except OSError:
        return f"file not found (listed in {os.path.basename(tsv)})"
    return "contains no audio (zero length)" if size == 0 else None
