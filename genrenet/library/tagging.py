"""Genres written into audio files' own tags, where music players see them: plan, write, undo.

:func:`tag_files` classifies files with any model source and plans, per file, the value of one tag field
(genre, grouping or comment). It changes nothing unless ``write=True``; then every old value goes into a
journal (:mod:`genrenet.library.journal`) before its file is written, and each file is replaced in one rename
after its copy was checked (:func:`genrenet.library.filetags.write_field`). :func:`undo_tags` puts a journal's
old values back.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import stat
import sys
from typing import Optional

from ..data.audio import unusable_path
from ..errors import AudioError, ConfigError, GenrenetError
from .filetags import FIELDS, open_tags, read_field, require_mutagen, write_field
from .journal import Journal, check_new_journal, read_journal

MODES = ("replace", "append", "keep")


@dataclasses.dataclass
class TagChange:
    """One file: its field's value before (``old``) and after (``new``; ``None`` = no such tag), the confidence of
    the prediction, and what happened: ``to write`` (a dry run), ``written``, ``restored``, ``unchanged``,
    ``left alone`` or ``skipped`` (``reason`` says why for the last two)."""

    file: str
    old: Optional[list] = None
    new: Optional[list] = None
    confidence: Optional[float] = None
    status: str = ""
    reason: str = ""
    had_tags: bool = True


@dataclasses.dataclass
class TagReport:
    """What :func:`tag_files` or :func:`undo_tags` did (or, in a dry run, would do) to each file."""

    changes: list
    journal: Optional[str] = None

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.changes)

    def counts(self) -> dict:
        """``{status: number of files}``, the most frequent first."""
        return dict(collections.Counter(c.status for c in self.changes).most_common())

    @property
    def skipped(self) -> list:
        """The files that could not be tagged, with their reasons."""
        return [c for c in self.changes if c.status == "skipped"]

    def as_dicts(self) -> list[dict]:
        return [{k: v for k, v in dataclasses.asdict(c).items() if k != "had_tags"} for c in self.changes]

    def table(self) -> str:
        """One line per file: file, current value, new value (confidence), what happened."""
        rows = [("FILE", "CURRENT", "NEW (CONFIDENCE)", "STATUS")]
        for c in self.changes:
            new = show(c.new) if c.status in ("to write", "written", "restored", "unchanged") else "-"
            conf = f" ({c.confidence:.2f})" if c.confidence is not None and new != "-" else ""
            rows.append((c.file, show(c.old), new + conf, c.status + (f": {c.reason}" if c.reason else "")))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[3] for r in rows)

    def skipped_summary(self) -> str:
        """``N of M files skipped: k reason, ...`` (empty when none was)."""
        skipped = self.skipped
        if not skipped:
            return ""
        reasons = collections.Counter(c.reason.split(" (")[0] for c in skipped)
        return (f"{len(skipped)} of {len(self.changes)} files skipped: "
                + ", ".join(f"{reason} ×{n}" if n > 1 else reason for reason, n in reasons.most_common()))


def show(values) -> str:
    return "(none)" if values is None else "; ".join(values) or '""'


def tag_files(source, paths, *, write: bool = False, field: str = "genre", mode: str = "replace",
              min_confidence: Optional[float] = None, journal: Optional[str] = None,
              labels_map=None, batch_size: Optional[int] = None, verbose: int = 1) -> TagReport:
    """Classify ``paths`` (files, folders, patterns) with ``source`` (a preset, run, export or ``.tflite``;
    ``None``: the default preset) and set each file's ``field`` (genre, grouping or comment) to the predicted
    genre, or to the tags that pass their thresholds for multi-label sources. ``mode``: ``replace`` the value,
    ``append`` to it, or ``keep`` a value already there (only empty fields are filled). Predictions below
    ``min_confidence`` are left alone. ``labels_map`` (a JSON/YAML file {model label: your label},
    :mod:`genrenet.infer.labelmap`) turns the model's labels into the ones written. Nothing is written unless
    ``write``; then the old values go to the ``journal`` (default: a new file in the per-user journal folder)
    first."""
    check_settings(field, mode, min_confidence)
    if write and journal is not None:
        check_new_journal(journal)
    require_mutagen()
    from ..infer.classifier import Classifier, audio_paths

    changes = [current_value(f, field) for f in distinct_files(audio_paths(paths, verbose))]
    todo = [c for c in changes if not c.status]
    if todo:
        classifier = Classifier.from_preset(source, verbose=verbose)
        source = classifier.source
        rows = classifier.predict([c.file for c in todo], batch_size=batch_size, verbose=verbose,
                                  labels_map=labels_map)
        for change, row in zip(todo, rows):
            plan_change(change, row, mode, min_confidence)
    report = TagReport(changes)
    if write and any(c.status == "to write" for c in changes):
        with Journal(journal, source=source, field=field, mode=mode, min_confidence=min_confidence) as log:
            report.journal = log.path
            if verbose:
                print(f"journal: {log.path}", file=sys.stderr)
            write_changes(changes, field, log)
    return report


def check_settings(field: str, mode: str, min_confidence: Optional[float]) -> None:
    if field not in FIELDS:
        raise ConfigError(f"must be one of {', '.join(FIELDS)}, got {field!r}", param="field")
    if mode not in MODES:
        raise ConfigError(f"must be one of {', '.join(MODES)}, got {mode!r}", param="mode")
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise ConfigError(f"must be a probability in [0, 1], got {min_confidence}", param="min_confidence")


def distinct_files(files: list) -> list:
    """``files`` without second names (links, ``./``) for a file already listed."""
    seen, distinct = set(), []
    for f in files:
        if os.path.realpath(f) not in seen:
            seen.add(os.path.realpath(f))
            distinct.append(f)
    return distinct


def current_value(path: str, field: str) -> TagChange:
    """The file with its field's current value, or skipped with the reason it cannot be tagged."""
    change = TagChange(path)
    reason = unusable_path(path) or read_only(path)
    if reason:
        change.status, change.reason = "skipped", reason
        return change
    try:
        audio = open_tags(path)
    except AudioError as e:
        change.status, change.reason = "skipped", e.reason
        return change
    change.old, change.had_tags = read_field(audio, field), audio.tags is not None
    return change


def read_only(path: str) -> Optional[str]:
    """Why ``path`` must not be written: a file without its owner's write permission (respected even where
    this process could write it anyway), or a file or folder this process cannot write."""
    folder = os.path.dirname(os.path.realpath(path))
    if not os.stat(path).st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        return "read-only file"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "read-only folder (the new file is written beside the old one)"
    return None


def plan_change(change: TagChange, row: dict, mode: str, min_confidence: Optional[float]) -> None:
    """Decide the new value of one classified file (a predict row) under ``mode``."""
    if "error" in row:
        change.status, change.reason = "skipped", f"cannot be classified ({row['error']})"
        return
    values, change.confidence, why_not = predicted_values(row, min_confidence)
    if why_not:
        change.status, change.reason = "left alone", why_not
    elif mode == "keep" and any(v.strip() for v in change.old or []):
        change.status, change.reason = "left alone", "already has a value (mode keep)"
    else:
        change.new = merged(change.old, values, mode)
        change.status = "unchanged" if change.new == change.old else "to write"


def predicted_values(row: dict, min_confidence: Optional[float]) -> tuple:
    """``(values, confidence, why_not)`` of a predict row: its label, or its tags for a multi-label source;
    ``why_not`` says why nothing is written (no music to classify, a row marked ``uncertain``, confidence too
    low). The labels are the model's, or the user's when predict applied a label map."""
    if row.get("label") is None and "tags" not in row:
        return [], None, row.get("reason", "no label predicted")
    if "tags" in row:
        tags = [(t, p) for t, p in row["tags"] if min_confidence is None or p >= min_confidence]
        if not tags:
            return [], None, "no tag passes its threshold" + (" and the minimum confidence" if min_confidence else "")
        return [t for t, _ in tags], min(p for _, p in tags), None
    label, p = row["top"][0]
    if row.get("uncertain"):
        return [], p, f"uncertain prediction (confidence {p:.2f}, below the model's minimum)"
    if min_confidence is not None and p < min_confidence:
        return [], p, f"confidence {p:.2f} below the minimum {min_confidence:.2f}"
    return [label], p, None


def merged(old: Optional[list], values: list, mode: str) -> list:
    """The new value: ``values``, or with ``append`` the old values followed by those not already there."""
    if mode == "append" and old:
        seen = {v.casefold() for v in old}
        return list(old) + [v for v in values if v.casefold() not in seen]
    return list(values)


def write_changes(changes: list, field: str, log: Journal) -> None:
    """Write the planned values, each old value journaled before its file is touched."""
    for change in changes:
        if change.status != "to write":
            continue
        log.pending(change.file, field, change.old, change.new, change.had_tags)
        error = write_one(change.file, field, change.new, expected=change.old,
                          remove_if_empty=not change.had_tags)
        if error:
            log.failed(change.file, error)
            change.status, change.reason = "skipped", error
        else:
            log.done(change.file)
            change.status = "written"


def write_one(path: str, field: str, values, *, expected, remove_if_empty: bool = False) -> Optional[str]:
    """Write one field (:func:`~genrenet.library.filetags.write_field`); the reason when the file was left as
    it was, else None."""
    try:
        write_field(path, field, values, expected=expected, remove_if_empty=remove_if_empty)
    except AudioError as e:
        return e.reason
    except (GenrenetError, OSError, require_mutagen().MutagenError, ValueError) as e:
        return f"not written ({e})"
    return None


def undo_tags(journal: str, *, verbose: int = 1) -> TagReport:
    """Put back the old values recorded in ``journal`` (including no tag at all). A file that holds neither
    the old nor the new value was changed since, and is left as it is (reported as skipped); running the undo
    again changes nothing."""
    require_mutagen()
    run, entries = read_journal(journal)
    changes = [undo_one(e) for e in entries if e["state"] != "failed"]
    if verbose:
        print(f"undoing {journal} ({run.get('field')} written {run.get('created')})", file=sys.stderr)
    return TagReport(changes, journal=os.fspath(journal))


def undo_one(entry: dict) -> TagChange:
    """Restore one journaled file, when it still holds the value that was written."""
    change = TagChange(entry["file"])
    reason = unusable_path(change.file)
    if not reason:
        try:
            change.old = read_field(open_tags(change.file), entry["field"])
        except AudioError as e:
            reason = e.reason
    if not reason and change.old == entry["old"]:
        change.new, change.status = entry["old"], "unchanged"
        return change
    if not reason and change.old != entry["new"]:
        reason = f"changed since it was tagged (now {show(change.old)}); left as it is"
    reason = reason or read_only(change.file) or write_one(change.file, entry["field"], entry["old"],
                                                           expected=entry["new"],
                                                           remove_if_empty=not entry["had_tags"])
    if reason:
        change.status, change.reason = "skipped", reason
    else:
        change.new, change.status = entry["old"], "restored"
    return change
