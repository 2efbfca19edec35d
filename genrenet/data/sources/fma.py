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
to decode is skipped and listed by the pipeline, like any other source. Every other file below PATH is
ignored with its reason (metadata, tracks without a top-level genre, files of the subset folder that
``tracks.csv`` does not list); the folder of another subset is one ignored entry with its file count.

``?labels=genres_all`` makes it multi-label: a track's labels are every genre of ``track.genres_all`` (a list of
genre ids such as ``[21, 38]``) with all their ancestors (``genres.csv``: ``genre_id``, ``parent``, ``title``),
named by title; tracks without a top-level genre then count too when they have any genre.
"""
from __future__ import annotations

import csv
import os
import sys
from typing import Optional

from ...errors import DatasetError
from .base import Clip, ClipDataset, file_reason, finish, parse_options, walk_files

LABELINGS = ("genre_top", "genres_all")

SUBSETS = ("small", "medium", "large")
CLIP_SECONDS = 30.0  # every track of fma_small, fma_medium and fma_large is a 30-s clip
_SPLITS = {"training": "train", "validation": "val", "test": "test"}
NEEDED = {("set", "split"): "split", ("set", "subset"): "subset", ("track", "genre_top"): "genre",
          ("artist", "id"): "artist"}


def read_tracks(csv_path: str) -> list[dict]:
    """Rows of ``tracks.csv`` as ``{"track_id", "split", "subset", "genre", "artist"[, "genres_all"]}``
    (strings)."""
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
        if ("track", "genres_all") in columns:
            index["genres_all"] = columns[("track", "genres_all")]
        rows = []
        for row in reader:
            if not row or not row[0].strip().isdigit():
                continue
            rec = {"track_id": row[0].strip()}
            for name, i in index.items():
                rec[name] = row[i].strip() if i < len(row) else ""
            rows.append(rec)
    return rows


def read_genres(path: str) -> dict:
    """``{genre_id: (title, parent_id)}`` of FMA's ``genres.csv`` (``genre_id,#tracks,parent,title,top_level``;
    parent 0 is none)."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path} not found: labels=genres_all names genres from FMA's genres.csv")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        if not {"genre_id", "parent", "title"} <= set(reader.fieldnames or []):
            raise DatasetError(f"{path}: not FMA's genres.csv (need columns genre_id, parent, title)")
        return {int(r["genre_id"]): (r["title"].strip(), int(r["parent"] or 0)) for r in reader}


def with_all_genres(tracks: list, genres_csv: str, tracks_csv: str) -> list:
    """``tracks`` with ``tags``: the titles of every genre in ``genres_all`` and of all its ancestors, ordered by
    genre id (top-level genres have the smallest ids in FMA, but the order only decides ``Clip.label``)."""
    genres = read_genres(genres_csv)
    out = []
    for rec in tracks:
        if "genres_all" not in rec:
            raise DatasetError(f"{tracks_csv}: no track.genres_all column for labels=genres_all")
        ids = set()
        for token in rec["genres_all"].strip("[] ").split(","):
            gid = int(token) if token.strip().isdigit() else None
            while gid and gid in genres and gid not in ids:
                ids.add(gid)
                gid = genres[gid][1]
        out.append({**rec, "tags": tuple(genres[g][0] for g in sorted(ids))})
    return out


def audio_path(root: str, subset: str, track_id) -> str:
    """Where FMA keeps a track: ``ROOT/fma_SUBSET/NNN/NNNNNN.mp3``."""
    tid = f"{int(track_id):06d}"
    return os.path.join(root, f"fma_{subset}", tid[:3], f"{tid}.mp3")


def fma_dataset(path: str, spec: Optional[str] = None, *, subset: Optional[str] = None) -> ClipDataset:
    """The ``fma:PATH`` source: tracks of the audio subset present, top-level genre, official split, artist groups."""
    path, opts = parse_options(path, known=("subset", "labels"))
    subset = subset or opts.get("subset")
    labeling = opts.get("labels", "genre_top")
    if labeling not in LABELINGS:
        raise DatasetError(f"{spec or path}: labels must be one of {', '.join(LABELINGS)}, got {labeling!r}")
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
    tracks = read_tracks(csv_path)
    if labeling == "genres_all":
        tracks = with_all_genres(tracks, os.path.join(os.path.dirname(csv_path), "genres.csv"), csv_path)
    clips, skipped, no_genre = subset_clips(path, subset, tracks)
    counts = {s: sum(c.split == s for c in clips) for s in ("train", "val", "test")}
    notes.append(f"FMA {subset}: official split train {counts['train']}, val {counts['val']}, test {counts['test']}"
                 + (f"; {len(no_genre)} tracks without a top-level genre not used" if no_genre else ""))
    claimed = {os.path.normpath(p) for p in [csv_path] + [c.path for c in clips] + [p for p, _ in skipped]}
    return finish(f"fma_{subset}", spec, clips, skipped, notes,
                  ignored=unused_files(path, subset, claimed, no_genre))


def subset_clips(root: str, subset: str, tracks: list) -> tuple[list, list, dict]:
    """``(clips, skipped, no_genre)``: the tracks of ``subset`` with their files, those whose file is missing
    or empty, and ``{path: reason}`` of the tracks without a top-level genre."""
    level = SUBSETS.index(subset)
    clips, skipped, no_genre = [], [], {}
    for rec in tracks:
        if rec["subset"] not in SUBSETS or SUBSETS.index(rec["subset"]) > level:
            continue
        f = audio_path(root, subset, rec["track_id"])
        tags = rec.get("tags", ())
        if not (tags or rec["genre"]):
            no_genre[os.path.normpath(f)] = ("track without any genre in tracks.csv" if "tags" in rec else
                                             "track without a top-level genre in tracks.csv")
            continue
        try:
            size = os.path.getsize(f)
        except OSError:
            skipped.append((f, "file not found (listed in tracks.csv)"))
            continue
        if size == 0:
            skipped.append((f, "contains no audio (zero length)"))
            continue
        label = rec["genre"] if rec["genre"] in tags or not tags else tags[0]
        clips.append(Clip(id=f"{int(rec['track_id']):06d}", label=label, tags=tags, path=f, seconds=CLIP_SECONDS,
                          split=_SPLITS.get(rec["split"]), group=f"artist:{rec['artist'] or rec['track_id']}"))
    return clips, skipped, no_genre


def unused_files(root: str, subset: str, claimed: set, reasons: dict) -> list:
    """(path, reason) of every file below ``root`` that is neither ``claimed`` nor a file of another subset's
    folder (each such folder is one entry, with its file count)."""
    ignored = []
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        other = name.startswith("fma_") and name[4:] in SUBSETS and name[4:] != subset and os.path.isdir(full)
        if other:
            count = sum(1 for _ in walk_files(full))
            ignored.append((full, f"folder of FMA subset {name[4:]} ({count} files), not the subset {subset} in use "
                                  f"(choose it with ?subset={name[4:]})"))
            continue
        for f in walk_files(full) if os.path.isdir(full) else [full]:
            if os.path.normpath(f) in claimed:
                continue
            reason = reasons.get(os.path.normpath(f)) or file_reason(f, root)
            if name == f"fma_{subset}":
                reason = reason or f"not a track of FMA subset {subset} in tracks.csv"
            elif reason != "hidden file":
                reason = f"outside the audio folder fma_{subset}/" + (" (metadata, not audio)" if reason else "")
            ignored.append((f, reason))
    return ignored
