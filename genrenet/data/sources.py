"""Dataset specs → clip records: ``synthetic[:k=v,...]``, ``PATH``, ``gtzan:PATH``, ``fma:PATH``, ``csv:FILE``.

A clip is a whole recording (a song excerpt) with its label and, when the dataset has them, its split and
group (artist). Splits are always made on clips or groups, never on windows, so no song leaks across splits.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections import Counter
from importlib import resources
from typing import Callable, Optional

import numpy as np

from .audio import is_audio_file, load_audio, unusable_path

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
        """How the clip is named in messages and reports: its path, else its id."""
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
        """True when the source assigns clips to train/val/test itself."""
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
        """One line: name, clip and class counts, and the split sizes."""
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


# --------------------------------------------------------------------------------------------- options
def parse_options(path: str, known=("folds", "fold", "seed", "split", "subset")) -> tuple[str, dict]:
    """``"PATH?folds=5&fold=0"`` → ``("PATH", {"folds": "5", "fold": "0"})``. A path that exists as written,
    or whose query has unknown keys, is returned unchanged."""
    if "?" not in path or os.path.exists(path):
        return path, {}
    base, query = path.rsplit("?", 1)
    opts = {}
    for item in filter(None, query.split("&")):
        k, sep, v = item.partition("=")
        if not sep or k not in known:
            return path, {}
        opts[k] = v
    return base, opts


def with_folds(dataset: ClipDataset, folds: int, fold: int, seed: int = 0) -> ClipDataset:
    """``dataset`` with split ``test`` = fold ``fold`` of a stratified, artist-disjoint ``folds``-fold
    partition (:func:`genrenet.data.split.kfold`) and ``train`` = the other folds (``train`` then holds out
    its validation part from those, by group)."""
    from .split import kfold

    if not 0 <= fold < folds:
        raise DatasetError(f"{dataset.spec}: fold must be in 0..{folds - 1}")
    parts, notes = kfold(dataset.clips, folds, seed)
    test = {id(c) for c in parts[fold]}
    clips = [dataclasses.replace(c, split="test" if id(c) in test else "train") for c in dataset.clips]
    notes = [f"{folds}-fold cross-validation (seed {seed}): fold {fold} is the test split "
             f"({len(test)} clips), the other folds train"] + notes
    return ClipDataset(name=f"{dataset.name}-fold{fold}of{folds}", spec=dataset.spec, clips=clips,
                       labels=dataset.labels, skipped=dataset.skipped, notes=dataset.notes + notes)


def _apply_options(dataset: ClipDataset, opts: dict) -> ClipDataset:
    if "folds" in opts or "fold" in opts:
        try:
            folds, fold, seed = int(opts.get("folds", 5)), int(opts.get("fold", 0)), int(opts.get("seed", 0))
        except ValueError:
            raise DatasetError(f"{dataset.spec}: folds, fold and seed must be integers") from None
        return with_folds(dataset, folds, fold, seed)
    return dataset


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


# Audio formats libsndfile cannot read: listed as skipped (with what to do) rather than silently ignored.
UNSUPPORTED_EXTENSIONS = (".m4a", ".aac", ".mp4", ".wma", ".ape", ".alac", ".amr", ".webm", ".mka", ".ra")


def _walk_audio(root: str, unsupported: Optional[list] = None):
    """Audio files below ``root`` (sorted, symlink loops and unreadable folders skipped); files in formats
    libsndfile cannot read are appended to ``unsupported`` as (path, reason)."""
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
            elif unsupported is not None and f.lower().endswith(UNSUPPORTED_EXTENSIONS):
                unsupported.append((os.path.join(dirpath, f), f"unsupported format {os.path.splitext(f)[1]!r} "
                                    "(libsndfile reads wav, flac, ogg, mp3, au, aiff: convert it)"))


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
    candidates, unsupported, notes = [], [], []
    for label in sorted(os.listdir(path)):
        sub = os.path.join(path, label)
        if os.path.isdir(sub) and not label.startswith("."):
            found = 0
            for f in _walk_audio(sub, unsupported):
                rel = os.path.relpath(f, path)
                candidates.append(Clip(id=rel, label=label, path=f, group=rel))
                found += 1
            if not found:
                notes.append(f"folder {label!r} has no audio files: it is not used as a class")
    if not candidates:
        detail = f" ({len(unsupported)} in unsupported formats, e.g. {unsupported[0][0]})" if unsupported else ""
        raise DatasetError(f"{spec}: no audio files in class sub-folders (expected PATH/<label>/<file>.wav){detail}")
    clips, skipped = _scan(candidates)
    notes += _empty_class_notes(candidates, clips)
    return _finish(os.path.basename(os.path.normpath(path)), spec, clips, skipped + unsupported, notes)


def _empty_class_notes(candidates, clips) -> list:
    """Say which classes lost every file to skipping (they are not classes of the dataset)."""
    usable = {c.label for c in clips}
    lost = Counter(c.label for c in candidates if c.label not in usable)
    return [f"class {label!r} has no usable files ({n} skipped): it is left out" for label, n in sorted(lost.items())]


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
    notes = _empty_class_notes(candidates, clips)
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
    return _finish(os.path.splitext(os.path.basename(path))[0], spec, clips, skipped + unreadable,
                   _empty_class_notes(candidates, clips))


# --------------------------------------------------------------------------------------------- dispatch
def _gtzan_source(path: str, spec: str) -> ClipDataset:
    """``gtzan:PATH[?split=filtered|none][&folds=K&fold=I&seed=S]``: with folds, every file is used."""
    path, opts = parse_options(path)
    kfold_asked = "folds" in opts or "fold" in opts
    split = opts.get("split", "none" if kfold_asked else "filtered")
    if split not in ("filtered", "none"):
        raise DatasetError(f"{spec}: split must be filtered or none")
    return _apply_options(gtzan_dataset(path, spec, split=split), opts)


def _with_options(loader):
    def load(path: str, spec: str) -> ClipDataset:
        path, opts = parse_options(path, known=("folds", "fold", "seed"))
        return _apply_options(loader(path, spec), opts)

    return load


SOURCES: dict[str, Callable[[str, str], ClipDataset]] = {
    "gtzan": _gtzan_source,
    "csv": _with_options(csv_dataset),
    "folder": _with_options(folder_dataset),
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
    ``gtzan:PATH`` adds the fault-filtered split. Any folder, GTZAN or CSV spec takes ``?folds=K&fold=I``
    (``&seed=S``): fold I of a stratified, artist-disjoint K-fold partition is the test split.
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
    path, opts = parse_options(os.path.expanduser(spec), known=("folds", "fold", "seed"))
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return _apply_options(csv_dataset(path, spec), opts)
    if os.path.isdir(path) and _looks_like_gtzan(path):
        return _apply_options(gtzan_dataset(path, spec, split="none"), opts)
    return _apply_options(folder_dataset(path, spec), opts)
