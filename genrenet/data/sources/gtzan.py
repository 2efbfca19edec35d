"""GTZAN (Tzanetakis & Cook 2002): ``gtzan:PATH``, with Kereliuk et al.'s fault-filtered split and Sturm's
artist index, so that held-out parts can be artist-disjoint."""
from __future__ import annotations

import dataclasses
import os
import re
from importlib import resources
from typing import Optional

from ...errors import DatasetError
from .base import (SPLITS, ClipDataset, apply_options, check_dir, empty_class_notes, finish, parse_options, scan,
                   walk_files)
from .folder import class_folder_files

GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
GTZAN_NAME = re.compile(r"^([a-z]+)\.(\d{5})\.(wav|au)$")


def gtzan_split() -> dict:
    """``{"blues/blues.00012": "test", ...}`` from Kereliuk et al. 2015's fault-filtered split."""
    out = {}
    for split, fname in (("train", "train"), ("val", "valid"), ("test", "test")):
        text = resources.files("genrenet.data.gtzan").joinpath(f"kereliuk2015_{fname}_filtered.txt").read_text()
        for line in text.split():
            out[os.path.splitext(line.strip())[0]] = split
    return out


def gtzan_artists() -> dict:
    """``{"blues.00000": "John Lee Hooker", ...}`` from Sturm's 2012 index (missing artists are absent)."""
    out = {}
    text = resources.files("genrenet.data.gtzan").joinpath("sturm2012_GTZANindex.txt").read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith("#") or ":::" not in line:
            continue
        parts = [p.strip() for p in line.split(":::")]
        if len(parts) >= 2 and parts[1]:
            out[os.path.splitext(parts[0])[0]] = parts[1]
    return out


def gtzan_dataset(path: str, spec: Optional[str] = None, *, split: str = "filtered") -> ClipDataset:
    """GTZAN layout ``PATH/<genre>/<genre>.NNNNN.{wav,au}`` (or ``PATH/genres/...``).

    ``split="filtered"``: Kereliuk et al.'s fault-filtered train/val/test (other files are ignored, and
    listed); ``split="none"``: every audio file in a genre folder, no predefined split. Groups are artists
    (Sturm's index) so that held-out parts can be artist-disjoint; files with an unknown artist or another
    name (a user's own songs) form their own groups. Every file below ``PATH`` is a clip, skipped or ignored.
    """
    spec = spec or f"gtzan:{path}"
    check_dir(path, spec)
    ignored = []
    if os.path.isdir(os.path.join(path, "genres")) and not os.path.isdir(os.path.join(path, "blues")):
        ignored = [(f, "outside the genres/ folder") for f in files_beside(path, "genres")]
        path = os.path.join(path, "genres")
    files, skipped, more, notes = class_folder_files(path)
    candidates, outside = gtzan_clips(files, split)
    clips, unreadable = scan(candidates)
    notes += empty_class_notes(candidates, clips)
    if split == "filtered":
        found = {s: sum(c.split == s for c in clips) for s in SPLITS}
        expected = {"train": 443, "val": 197, "test": 290}
        notes.append("fault-filtered split (Kereliuk et al. 2015): found "
                     + ", ".join(f"{s} {found[s]}/{expected[s]}" for s in SPLITS)
                     + (f"; {len(outside)} files outside the split not used" if outside else ""))
    return finish(os.path.basename(os.path.normpath(path)), spec, clips, unreadable + skipped, notes,
                  ignored=ignored + more + outside)


def files_beside(path: str, folder: str) -> list:
    """Every file below ``path`` that is not below ``path/folder``."""
    out = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name != folder:
            out += list(walk_files(full)) if os.path.isdir(full) else [full]
    return out


def gtzan_clips(files: list, split: str) -> tuple[list, list]:
    """``(clips, outside)``: the class-folder files with GTZAN's ids, artist groups and (``split="filtered"``)
    split; files outside the filtered split are returned as (path, reason)."""
    splits, artists = gtzan_split(), gtzan_artists()
    clips, outside = [], []
    for clip in files:
        genre, m = clip.label, GTZAN_NAME.match(os.path.basename(clip.path))
        stem = f"{m.group(1)}.{m.group(2)}" if m else None
        key = f"{genre}/{stem}" if m else clip.id
        clip_split = splits.get(key) if split == "filtered" else None
        if split == "filtered" and clip_split is None:
            outside.append((clip.path, "outside the fault-filtered split (gtzan:PATH?split=none uses every file)"))
            continue
        group = f"{genre}:{artists[stem]}" if stem in artists else key
        clips.append(dataclasses.replace(clip, id=key, split=clip_split, group=group))
    return clips, outside


def gtzan_source(path: str, spec: str) -> ClipDataset:
    """``gtzan:PATH[?split=filtered|none][&folds=K&fold=I&seed=S]``: with folds, every file is used."""
    path, opts = parse_options(path)
    kfold_asked = "folds" in opts or "fold" in opts
    split = opts.get("split", "none" if kfold_asked else "filtered")
    if split not in ("filtered", "none"):
        raise DatasetError(f"{spec}: split must be filtered or none")
    return apply_options(gtzan_dataset(path, spec, split=split), opts)




def looks_like_gtzan(path: str) -> bool:
    """Whether ``path`` is in GTZAN's layout: genre folders only, holding GTZAN-named files."""
    if os.path.isdir(os.path.join(path, "genres")):
        path = os.path.join(path, "genres")
    try:
        subdirs = [d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")]
    except OSError:
        return False
    return bool(subdirs) and set(subdirs) <= set(GTZAN_GENRES) and any(
        GTZAN_NAME.match(f) for d in subdirs for f in os.listdir(os.path.join(path, d))
    )
