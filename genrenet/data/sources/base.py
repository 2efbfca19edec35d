"""What every dataset source shares: the clip records, the dataset, spec options and the header scan.

A clip is a whole recording (a song excerpt) with its label and, when the dataset has them, its split and
group (artist). Splits are always made on clips or groups, never on windows, so no song leaks across splits.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from ...errors import DatasetError
from ..progress import Progress
from ..skips import NotMusic
from ..audio import (READ_FORMATS, UNSUPPORTED_EXTENSIONS, decode_reason, is_audio_file, load_audio, read_header,
                     resample, unusable_path)
from ..split import kfold

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}

@dataclasses.dataclass
class Clip:
    """One recording. ``audio`` is set for in-memory clips (synthetic), ``path`` for files. A clip of multi-label
    data lists every label it carries in ``tags`` (``label`` is then the first, which splits stratify on)."""

    id: str
    label: str
    path: Optional[str] = None
    split: Optional[str] = None
    group: Optional[str] = None
    audio: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
    sample_rate: Optional[int] = None
    seconds: Optional[float] = None  # duration from the header read at load time (None: not read)
    tags: tuple = ()

    @property
    def all_labels(self) -> tuple:
        """Every label of the clip: its ``tags``, or its one ``label``."""
        return tuple(self.tags) or (self.label,)

    def load(self, sample_rate: int) -> np.ndarray:
        """Mono float32 audio at ``sample_rate`` (decoded and resampled if needed)."""
        if self.audio is not None:
            return resample(self.audio, self.sample_rate, sample_rate)
        return load_audio(self.path, sample_rate)

    @property
    def name(self) -> str:
        """How the clip is named in messages and reports: its path, else its id."""
        return self.path or self.id

    @property
    def duration(self) -> Optional[float]:
        """Seconds of audio: from the header read at load time, or of the in-memory audio; None if unknown."""
        if self.audio is not None:
            return self.audio.shape[0] / (self.sample_rate or 1)
        return self.seconds


@dataclasses.dataclass
class ClipDataset:
    """Clips with labels (sorted class names) and, with reasons, every other file under the dataset's root:
    ``skipped`` (audio that cannot be used) and ``ignored`` (files that are not clips of this dataset: not
    audio, hidden, outside the class folders or outside a predefined split). Nothing is left out unnamed."""

    name: str
    spec: str
    clips: list
    labels: list
    skipped: list = dataclasses.field(default_factory=list)  # [(path, reason)]
    notes: list = dataclasses.field(default_factory=list)  # things worth telling the user
    ignored: list = dataclasses.field(default_factory=list)  # [(path, reason)]

    @property
    def multi_label(self) -> bool:
        """True when a clip carries more than one label (the data is for tagging, not for one class per clip)."""
        return any(len(c.all_labels) > 1 for c in self.clips)

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
        """One line: name, used clips and classes, the split sizes, and how many files were skipped or ignored."""
        counts = {s: len(self.split(s)) for s in SPLITS if self.split(s)}
        split_text = ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "no predefined split"
        kind = "tags" if self.multi_label else "classes"
        text = f"{self.name}: {len(self.clips)} clips, {len(self.labels)} {kind} ({split_text})"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} files"
        if self.ignored:
            text += f"; ignored {len(self.ignored)} files that are not clips of the dataset"
        return text


def finish(name, spec, clips, skipped=(), notes=(), labels=None, ignored=()) -> ClipDataset:
    """The :class:`ClipDataset`, or a :class:`DatasetError` saying what was found instead of usable clips."""
    if not clips:
        detail = f"; skipped {len(skipped)}: {skipped[0][0]}: {skipped[0][1]} ..." if skipped else ""
        detail += f"; ignored {len(ignored)}: {ignored[0][0]}: {ignored[0][1]} ..." if ignored else ""
        raise DatasetError(f"{spec}: no usable audio clips found" + (f" ({detail[2:]})" if detail else ""))
    labels = sorted({l for c in clips for l in c.all_labels}) if labels is None else list(labels)
    return ClipDataset(name=name, spec=spec, clips=clips, labels=labels, skipped=list(skipped), notes=list(notes),
                       ignored=list(ignored))


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
    return dataclasses.replace(dataset, name=f"{dataset.name}-fold{fold}of{folds}", clips=clips,
                               notes=dataset.notes + notes)


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


# Audio formats libsndfile cannot read: listed as skipped (with what to do) rather than ignored.
# Reading headers is I/O (libsndfile releases the GIL): threads overlap the waits, also on network storage.
SCAN_THREADS = 16
# A scan of at least this many files shows its progress (a bar on a terminal, a line per tenth in a log).
SCAN_REPORT_MIN = 1000


def walk_files(root: str, left_out: Optional[list] = None, dataset: Optional[str] = None,
               seen: Optional[set] = None):
    """Every file below ``root``, hidden ones included (sorted), each real file once. Links are followed (users
    link their music in), except a link to a folder inside ``dataset`` or to a folder or file already read
    (``seen``, shared by the walks of one dataset): those, and folders that cannot be read, are appended to
    ``left_out`` as (path, reason), so that no audio is counted twice or under a second label."""
    seen = set() if seen is None else seen
    left_out = [] if left_out is None else left_out
    inside = os.path.realpath(dataset) if dataset else None

    def failed(error: OSError):
        left_out.append((error.filename, f"cannot read the folder ({error.strerror or error})"))

    if os.path.realpath(root) in seen:
        left_out.append((root, repeat_reason(os.path.realpath(root))))
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=failed):
        seen.add(os.path.realpath(dirpath))
        dirnames[:] = [d for d in sorted(dirnames) if walked_link(os.path.join(dirpath, d), inside, seen, left_out)]
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            real = os.path.realpath(path)
            if real in seen:
                left_out.append((path, repeat_reason(real)))
                continue
            seen.add(real)
            yield path


def walked_link(path: str, inside: Optional[str], seen: set, left_out: list) -> bool:
    """True when the folder ``path`` is to be walked: not a link back into the dataset nor to a folder read."""
    if not os.path.islink(path):
        return True
    real = os.path.realpath(path)
    if inside and (real == inside or real.startswith(inside.rstrip(os.sep) + os.sep)):
        left_out.append((path, f"a link to a folder already in the dataset ({real}): not read twice"))
        return False
    if real in seen:
        left_out.append((path, repeat_reason(real)))
        return False
    return True


def repeat_reason(real: str) -> str:
    """Why a second path to a file or folder already read is left out."""
    kind = "folder" if os.path.isdir(real) else "file"
    return f"a second path to a {kind} already read ({real}): not read twice"


def file_reason(path: str, root: str) -> Optional[str]:
    """Why the file ``path`` below ``root`` is not an audio file to read (ignored), or None when it is one."""
    parts = os.path.relpath(path, root).split(os.sep)
    if any(p.startswith(".") for p in parts):
        return "hidden file"
    if is_audio_file(path) or path.lower().endswith(UNSUPPORTED_EXTENSIONS):
        return None
    ext = os.path.splitext(path)[1]
    return f"not an audio file (extension {ext!r})" if ext else "not an audio file (no extension)"


def probe(path: str) -> tuple[Optional[str], Optional[float]]:
    """(why ``path`` cannot be used or None, its duration in seconds). Reads only the header (fast)."""
    reason = unusable_path(path)
    if reason:
        return reason, None
    try:
        info = read_header(path)
    except Exception as e:
        return decode_reason(path, e), None
    if info.format == "RAW":  # libsndfile's guess for some tiny or headerless files: their "samples" are junk
        return f"not audio (not a {READ_FORMATS} file)", None
    if info.frames <= 0:
        return "contains no audio (zero length)", None
    if info.channels < 1:
        return "the file has no channels", None
    seconds = info.frames / info.samplerate if info.samplerate > 0 else None
    return truncation_reason(info.extra_info, seconds), seconds


# A file whose audio data is shorter than its header declares by more than this is truncated, not just padded
# by the writer to a block boundary.
TRUNCATION_TOLERANCE = 0.1  # seconds
DECLARED_DATA = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def truncation_reason(extra_info: str, seconds: Optional[float]) -> Optional[str]:
    """Why a file whose data chunk is shorter than its header declares is skipped (libsndfile reads what is there
    and notes the declared size), or None."""
    found = DECLARED_DATA.search(extra_info or "")
    if not found or not seconds or int(found.group(2)) <= 0:
        return None
    declared = seconds * int(found.group(1)) / int(found.group(2))
    if declared - seconds <= TRUNCATION_TOLERANCE:
        return None
    return NotMusic(f"truncated: the header promises {format_seconds(declared)} s, the file holds "
                    f"{format_seconds(seconds)} s")


def format_seconds(seconds: float) -> str:
    """Seconds for messages: two decimals at most (``30``, ``0.07``, ``1.5``)."""
    return f"{seconds:.2f}".rstrip("0").rstrip(".") or "0"


def scan(candidates, threads: int = SCAN_THREADS) -> tuple[list, list]:
    """Read every candidate's header (``threads`` at a time, with progress); keep the clips whose headers read,
    with their durations; the rest become (path, reason) skips."""
    good, skipped = [], []
    progress = Progress(len(candidates), label="reading headers", unit="files",
                        enabled=len(candidates) >= SCAN_REPORT_MIN)  # a bar, or a line per tenth in a log
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for n, (clip, (reason, seconds)) in enumerate(zip(candidates, pool.map(probe, [c.path for c in candidates]))):
            if reason:
                skipped.append((clip.path, reason))
            else:
                clip.seconds = seconds
                good.append(clip)
            if n % 64 == 0:
                progress.update(n + 1)
    progress.close()
    return good, skipped


def empty_class_notes(candidates, clips) -> list:
    """Say which classes lost every file to skipping (they are not classes of the dataset)."""
    usable = {l for c in clips for l in c.all_labels}
    lost = Counter(l for c in candidates for l in c.all_labels if l not in usable)
    return [f"class {label!r} has no usable files ({n} skipped): it is left out" for label, n in sorted(lost.items())]


