"""What every dataset source shares: the clip records, the dataset, spec options and the header scan.

A clip is a whole recording (a song excerpt) with its label and, when the dataset has them, its split and
group (artist). Splits are always made on clips or groups, never on windows, so no song leaks across splits.
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Optional

import numpy as np

from ...errors import DatasetError
from ..audio import is_audio_file, load_audio, resample, unusable_path
from ..split import kfold

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}

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
        name = SPLIT_ALIASES.get(name, name)
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


def finish(name, spec, clips, skipped=(), notes=(), labels=None) -> ClipDataset:
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
    if not 0 <= fold < folds:
        raise DatasetError(f"{dataset.spec}: fold must be in 0..{folds - 1}")
    parts, notes = kfold(dataset.clips, folds, seed)
    test = {id(c) for c in parts[fold]}
    clips = [dataclasses.replace(c, split="test" if id(c) in test else "train") for c in dataset.clips]
    notes = [f"{folds}-fold cross-validation (seed {seed}): fold {fold} is the test split "
             f"({len(test)} clips), the other folds train"] + notes
    return ClipDataset(name=f"{dataset.name}-fold{fold}of{folds}", spec=dataset.spec, clips=clips,
                       labels=dataset.labels, skipped=dataset.skipped, notes=dataset.notes + notes)


def apply_options(dataset: ClipDataset, opts: dict) -> ClipDataset:
    if "folds" in opts or "fold" in opts:
        try:
            folds, fold, seed = int(opts.get("folds", 5)), int(opts.get("fold", 0)), int(opts.get("seed", 0))
        except ValueError:
            raise DatasetError(f"{dataset.spec}: folds, fold and seed must be integers") from None
        return with_folds(dataset, folds, fold, seed)
    return dataset


# --------------------------------------------------------------------------------------------- folders
def check_dir(path: str, spec: str):
    if not os.path.exists(path):
        raise DatasetError(f"{spec}: path not found")
    if not os.path.isdir(path):
        raise DatasetError(f"{spec}: not a directory")


# Audio formats libsndfile cannot read: listed as skipped (with what to do) rather than silently ignored.
UNSUPPORTED_EXTENSIONS = (".m4a", ".aac", ".mp4", ".wma", ".ape", ".alac", ".amr", ".webm", ".mka", ".ra")


def walk_audio(root: str, unsupported: Optional[list] = None):
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


def probe(path: str) -> Optional[str]:
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


def scan(candidates) -> tuple[list, list]:
    """Keep the clips whose headers read; the rest become (path, reason) skips."""
    good, skipped = [], []
    for clip in candidates:
        reason = probe(clip.path)
        if reason:
            skipped.append((clip.path, reason))
        else:
            good.append(clip)
    return good, skipped


def empty_class_notes(candidates, clips) -> list:
    """Say which classes lost every file to skipping (they are not classes of the dataset)."""
    usable = {c.label for c in clips}
    lost = Counter(c.label for c in candidates if c.label not in usable)
    return [f"class {label!r} has no usable files ({n} skipped): it is left out" for label, n in sorted(lost.items())]


