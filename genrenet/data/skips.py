"""The record of files a pipeline could not use (skipped, with the reason) or padded, and of files the dataset
ignored: what train and evaluate report and what ``skipped.tsv`` lists, so that no file is dropped silently."""
from __future__ import annotations

import threading


class NotMusic(str):
    """A skip reason saying the file holds nothing to classify (silent, near-silent, too short, truncated,
    NaN/Inf samples) rather than that it could not be read: predict gives such a file no label and this reason."""


class SkipLog:
    """Thread-safe record of skipped files and padded clips, reported by train/evaluate and saved in runs, with
    the files the dataset ignored (not clips of it), so that its report names every file that was not used."""

    SHOWN_IGNORED = 10  # ignored files named in :meth:`summary` (all of them are in :meth:`to_rows`)

    def __init__(self, initial=(), ignored=()):
        self._lock = threading.Lock()
        self.skipped = {}  # name -> reason
        self.padded = set()
        self.ignored = dict(ignored)  # name -> reason
        for name, reason in initial:
            self.skipped[name] = reason

    def skip(self, name, reason):
        """Record that ``name`` was left out, and why."""
        with self._lock:
            self.skipped[str(name)] = reason

    def pad(self, name):
        """Record that ``name`` was shorter than one window and was zero-padded."""
        with self._lock:
            self.padded.add(str(name))

    def summary(self) -> list[str]:
        """Lines for the user: how many files were skipped (with reasons), ignored (the first few) and padded."""
        lines = []
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} files")
            lines += [f"  {n}: {r}" for n, r in sorted(self.skipped.items())]
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} files that are not clips of the dataset")
            shown = sorted(self.ignored.items())[:self.SHOWN_IGNORED]
            lines += [f"  {n}: {r}" for n, r in shown]
            if len(self.ignored) > len(shown):
                lines.append(f"  ... and {len(self.ignored) - len(shown)} more")
        if self.padded:
            lines.append(f"padded {len(self.padded)} clips shorter than one window with silence")
        return lines

    def brief(self, shown: int = 3) -> str:
        """One line for an error: how many files were skipped, the first ``shown`` with their reasons."""
        items = sorted(self.skipped.items())
        more = f"; and {len(items) - shown} more" if len(items) > shown else ""
        return f"{len(items)} files skipped: " + "; ".join(f"{n}: {r}" for n, r in items[:shown]) + more

    def to_rows(self):
        """``(file, reason)`` rows for ``skipped.tsv``: skipped files, then ignored and padded ones."""
        return ([(n, r) for n, r in sorted(self.skipped.items())]
                + [(n, f"ignored: {r}") for n, r in sorted(self.ignored.items())]
                + [(n, "padded: shorter than one window") for n in sorted(self.padded)])
