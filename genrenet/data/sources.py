"""Dataset specs → clip records: ``synthetic[:k=v,...]``, ``PATH``, ``gtzan:PATH``, ``fma:PATH``, ``csv:FILE``.

A clip is a whole recording (a song excerpt) with its label and, when the dataset has them, its split and
group (artist). Splits are always made on clips or groups, never on windows, so no song leaks across splits.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import re
from importlib import resources
from typing import Callable, Optional

import numpy as np

from .audio import AudioError, is_audio_file, load_audio, unusable_path

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "test": "test", "testing": "test"}


class DatasetError(ValueError):
    """A dataset spec that cannot be used (missing path, no usable files, bad columns)."""


@dataclasses.dataclass
class Clip:
    """One recording. ``audio`` is set for in-memory clips (synthetic), ``path`` for files."""

    id: str
    label: str
    path: Optional[str] = None
    split: Optional[str] = None
    group: Optional[str] = None
    audio: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
    sample_rate: Optional[int] = None

    def load(self, sample_rate: int) -> np.ndarray:
        """Mono float32 audio at ``sample_rate`` (decoded and resampled if needed)."""
        if self.audio is not None:
            from .audio import resample

            return resample(self.audio, self.sample_rate, sample_rate)
        return load_audio(self.path, sample_rate)

    @property
    def name(self) -> str:
        return self.path or self.id


@dataclasses.dataclass
class ClipDataset:
    """Clips with labels (sorted class names) and what was skipped while scanning, with reasons."""

    name: str
    spec: str
    clips: list
    labels: list
    skipped: list = dataclasses.field(default_factory=list)  # [(path, reason)]
    notes: list = dataclasses.field(default_factory=list)  # things worth telling the user

    @property
    def has_splits(self) -> bool:
        return any(c.split for c in self.clips)

    def split(self, name: str) -> list:
        """Clips of split ``name`` (``all`` for every clip)."""
        if name == "all":
            return list(self.clips)
        name = _SPLIT_ALIASES.get(name, name)
        return [c for c in self.clips if c.split == name]

    def __len__(self):
        return len(self.clips)

    def summary(self) -> str:
        counts = {s: len(self.split(s)) for s in SPLITS if self.split(s)}
        split_text = ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "no predefined split"
        text = f"{self.name}: {len(self.clips)} clips, {len(self.labels)} classes ({split_text})"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} files"
        return text


def _finish(name, spec, clips, skipped=(), notes=(), labels=None) -> ClipDataset:
    if not clips:
        detail = f" (skipped {len(skipped)}: {skipped[0][0]}: {skipped[0][1]} ...)" if skipped else ""
        raise DatasetError(f"{spec}: no usable audio clips found{detail}")
    labels = sorted({c.label for c in clips}) if labels is None else list(labels)
    return ClipDataset(name=name, spec=spec, clips=clips, labels=labels, skipped=list(skipped), notes=list(notes))


# --------------------------------------------------------------------------------------------- synthetic
def _parse_options(text: str) -> dict:
    opts = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise DatasetError(f"synthetic option {item!r} is not key=value")
        k, v = item.split("=", 1)
        opts[k.strip()] = v.strip()
    return opts


def synthetic_dataset(spec: str = "synthetic") -> ClipDataset:
    """``synthetic[:classes=6,clips=20,seconds=6,seed=0,sample_rate=22050]``; ``classes`` is a count or
    ``+``-separated style names."""
    from . import synthetic

    opts = _parse_options(spec.split(":", 1)[1] if ":" in spec else "")
    known = {"classes", "clips", "seconds", "seed", "sample_rate"}
    if set(opts) - known:
        raise DatasetError(f"unknown synthetic options {sorted(set(opts) - known)}; known: {sorted(known)}")
    classes = opts.get("classes", str(len(synthetic.DEFAULT_CLASSES)))
    if classes.isdigit():
        names = list(synthetic.DEFAULT_CLASSES) + [s for s in synthetic.STYLES if s not in synthetic.DEFAULT_CLASSES]
        if not 2 <= int(classes) <= len(names):
            raise DatasetError(f"synthetic classes must be between 2 and {len(names)}")
        classes = names[: int(classes)]
    else:
        classes = classes.split("+")
    sample_rate = int(opts.get("sample_rate", 22050))
    try:
        items = synthetic.generate(classes=classes, clips_per_class=int(opts.get("clips", 20)),
                                   seconds=float(opts.get("seconds", 6.0)), sample_rate=sample_rate,
                                   seed=int(opts.get("seed", 0)))
    except ValueError as e:
        raise DatasetError(f"{spec}: {e}") from None
    clips = [Clip(id=i, label=lab, audio=a, sample_rate=sample_rate, group=i) for i, lab, a in items]
    return _finish("synthetic", spec, clips)


# --------------------------------------------------------------------------------------------- folders
def _check_dir(path: str, spec: str):
    if not os.path.exists(path):
        raise DatasetError(f"{spec}: path not found")
    if not os.path.isdir(path):
        raise DatasetError(f"{spec}: not a directory")


def _walk_audio(root: str):
    """Audio files below ``root`` (sorted, symlink loops and unreadable folders skipped)."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for f in sorted(filenames):
            if is_audio_file(f):
                yield os.path.join(dirpath, f)


def _probe(path: str) -> Optional[str]:
    """Why ``path`` cannot be used, or None. Reads only the header (fast)."""
    import soundfile as sf

    reason = unusable_path(path)
    if reason:
        return reason
    try:
        info = sf.info(os.fsencode(path))
    except Exception as e:
        return f"cannot decode ({type(e).__name__}: {str(e).strip() or 'unknown error'})"
    if info.frames <= 0:
        return "contains no audio (zero length)"
    if info.channels < 1:
        return "the file has no channels"
    return None


def _scan(candidates) -> tuple[list, list]:
    """Keep the clips whose headers read; the rest become (path, reason) skips."""
    good, skipped = [], []
    for clip in candidates:
        reason = _probe(clip.path)
        if reason:
            skipped.append((clip.path, reason))
        else:
            good.append(clip)
    return good, skipped


def folder_dataset(path: str, spec: Optional[str] = None) -> ClipDataset:
    """Folder-per-class: ``PATH/<label>/**/<file>`` in any format libsndfile reads."""
    spec = spec or path
    _check_dir(path, spec)
    candidates = []
    for label in sorted(os.listdir(path)):
        sub = os.path.join(path, label)
        if os.path.isdir(sub) and not label.startswith("."):
            for f in _walk_audio(sub):
                rel = os.path.relpath(f, path)
                candidates.append(Clip(id=rel, label=label, path=f, group=rel))
    if not candidates:
        raise DatasetError(f"{spec}: no audio files in class sub-folders (expected PATH/<label>/<file>.wav)")
    clips, skipped = _scan(candidates)
    return _finish(os.path.basename(os.path.normpath(path)), spec, clips, skipped)


# --------------------------------------------------------------------------------------------- GTZAN
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
_GTZAN_NAME = re.compile(r"^([a-z]+)\.(\d{5})\.(wav|au)$")


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

    ``split="filtered"``: Kereliuk et al.'s fault-filtered train/val/test (files outside it are dropped);
    ``split="none"``: all files, no predefined split. Groups are artists (Sturm's index) so that held-out
    parts can be artist-disjoint; files with an unknown artist form their own group.
    """
    spec = spec or f"gtzan:{path}"
    _check_dir(path, spec)
    if os.path.isdir(os.path.join(path, "genres")) and not os.path.isdir(os.path.join(path, "blues")):
        path = os.path.join(path, "genres")
    splits, artists = gtzan_split(), gtzan_artists()
    candidates, dropped = [], 0
    for genre in sorted(os.listdir(path)):
        sub = os.path.join(path, genre)
        if not os.path.isdir(sub):
            continue
        for f in sorted(os.listdir(sub)):
            m = _GTZAN_NAME.match(f)
            if not m:
                continue
            stem = f"{m.group(1)}.{m.group(2)}"
            key = f"{genre}/{stem}"
            clip_split = splits.get(key) if split == "filtered" else None
            if split == "filtered" and clip_split is None:
                dropped += 1
                continue
            group = f"{genre}:{artists[stem]}" if stem in artists else key
            candidates.append(Clip(id=key, label=genre, path=os.path.join(sub, f), split=clip_split, group=group))
    clips, skipped = _scan(candidates)
    notes = []
    if split == "filtered":
        found = {s: sum(c.split == s for c in clips) for s in SPLITS}
        expected = {"train": 443, "val": 197, "test": 290}
        notes.append("fault-filtered split (Kereliuk et al. 2015): found "
                     + ", ".join(f"{s} {found[s]}/{expected[s]}" for s in SPLITS)
                     + (f"; {dropped} files outside the split not used" if dropped else ""))
    return _finish(os.path.basename(os.path.normpath(path)), spec, clips, skipped, notes)


# --------------------------------------------------------------------------------------------- CSV
def csv_dataset(path: str, spec: Optional[str] = None) -> ClipDataset:
    """``path,label[,split][,group]`` with a header; relative paths are relative to the CSV file."""
    spec = spec or f"csv:{path}"
    if not os.path.isfile(path):
        raise DatasetError(f"{spec}: file not found")
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        missing = [c for c in ("path", "label") if c not in columns]
        if missing:
            raise DatasetError(f"{spec}: missing column(s) {missing}; the header must have path,label[,split][,group]")
        candidates, skipped = [], []
        for row_no, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            if not row.get("path") or not row.get("label"):
                skipped.append((f"{path}:{row_no}", "empty path or label"))
                continue
            split = row.get("split") or None
            if split is not None and split.lower() not in _SPLIT_ALIASES:
                skipped.append((f"{path}:{row_no}", f"unknown split {split!r} (use train/val/test)"))
                continue
            audio_path = row["path"] if os.path.isabs(row["path"]) else os.path.join(base, row["path"])
            candidates.append(Clip(id=row["path"], label=row["label"], path=audio_path,
                                   split=_SPLIT_ALIASES[split.lower()] if split else None,
                                   group=row.get("group") or row["path"]))
    clips, unreadable = _scan(candidates)
    return _finish(os.path.splitext(os.path.basename(path))[0], spec, clips, skipped + unreadable)


# --------------------------------------------------------------------------------------------- dispatch
SOURCES: dict[str, Callable[[str, str], ClipDataset]] = {
    "gtzan": lambda p, spec: gtzan_dataset(p, spec),
    "csv": lambda p, spec: csv_dataset(p, spec),
    "folder": lambda p, spec: folder_dataset(p, spec),
}


def _looks_like_gtzan(path: str) -> bool:
    if os.path.isdir(os.path.join(path, "genres")):
        path = os.path.join(path, "genres")
    try:
        subdirs = [d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))]
    except OSError:
        return False
    return bool(subdirs) and set(subdirs) <= set(GTZAN_GENRES) and any(
        _GTZAN_NAME.match(f) for d in subdirs for f in os.listdir(os.path.join(path, d))
    )


def load_dataset(spec: str) -> ClipDataset:
    """Resolve a data spec (see module docstring) to a :class:`ClipDataset`.

    A plain ``PATH`` is read folder-per-class (no predefined split; GTZAN-named files get artist groups);
    ``gtzan:PATH`` adds the fault-filtered split.
    """
    spec = str(spec)
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return synthetic_dataset(spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind in SOURCES and not os.path.exists(spec):
        return SOURCES[kind](os.path.expanduser(rest), spec)
    if sep and kind == "fma":
        from .fma import fma_dataset  # noqa: F401  (registered by the FMA module)

        return SOURCES["fma"](os.path.expanduser(rest), spec)
    path = os.path.expanduser(spec)
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return csv_dataset(path, spec)
    if os.path.isdir(path) and _looks_like_gtzan(path):
        return gtzan_dataset(path, spec, split="none")
    return folder_dataset(path, spec)
