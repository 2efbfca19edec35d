"""The journal of a tagging run: what each file's tag held before genrenet wrote it, so that it can be restored.

A journal is a JSON Lines file. Its first line describes the run; then, for each file, a ``pending`` record
with the old and the new value is written and flushed to disk *before* the file is touched, and a ``done`` (or
``failed``) record after. A file whose last record is ``pending`` was being written when the run stopped: it
holds either its old or its new value (files are replaced in one rename), and the undo tells them apart.
Journals go to ``$XDG_STATE_HOME/genrenet/journals/`` (``~/.local/state/...``) unless a path is given.
"""
from __future__ import annotations

import datetime
import json
import os
from typing import Optional

from ..errors import ConfigError

FORMAT = "genrenet-tag-journal/1"


def journal_folder() -> str:
    """The per-user folder of tagging journals."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "genrenet", "journals")


class Journal:
    """An open journal; each record reaches the disk before :meth:`pending` / :meth:`done` return."""

    def __init__(self, path: Optional[str] = None, **run):
        """Create the journal at ``path`` (default: a new timestamped file in :func:`journal_folder`); an
        existing file is never overwritten. ``run`` (source, field, mode, ...) goes into the first line."""
        if path is None:
            os.makedirs(journal_folder(), exist_ok=True)
            self.file, self.path = new_journal_file(journal_folder())
        else:
            check_new_journal(path)
            self.path = os.path.abspath(os.fspath(path))
            self.file = open(self.path, "x", encoding="utf-8")
        self.append({"journal": FORMAT, "created": utc_now(), **run})

    def append(self, record: dict) -> None:
        self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def pending(self, file: str, field: str, old, new, had_tags: bool) -> None:
        """Record the values of ``file`` before it is written."""
        self.append({"file": os.path.abspath(file), "state": "pending", "field": field, "old": old, "new": new,
                     "had_tags": had_tags})

    def done(self, file: str) -> None:
        self.append({"file": os.path.abspath(file), "state": "done"})

    def failed(self, file: str, reason: str) -> None:
        self.append({"file": os.path.abspath(file), "state": "failed", "reason": reason})

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_new_journal(path) -> None:
    """Raise a :class:`~genrenet.errors.ConfigError` unless a journal can be created at ``path``: it must not
    exist (a journal is never overwritten) and its folder must."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path):
        raise ConfigError(f"{path} exists; a journal is never overwritten (name a new file)", param="journal")
    if not os.path.isdir(folder):
        raise ConfigError(f"{folder} is not a folder; the journal goes into an existing one", param="journal")


def new_journal_file(folder: str):
    """``(open file, path)`` of a journal named after the current UTC time, never an existing one."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        path = os.path.join(folder, f"{stamp}{'-' + str(n) if n else ''}.jsonl")
        try:
            return open(path, "x", encoding="utf-8"), path
        except FileExistsError:
            continue
    raise ConfigError(f"{folder} has too many journals named {stamp}*")


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_journal(path) -> tuple[dict, list[dict]]:
    """``(run, entries)``: the first line, and per file its ``pending`` record with ``state`` set to the last
    state recorded (``pending``, ``done`` or ``failed``), in the order they were written. A last line cut short
    by an interruption is ignored."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such journal", param="undo") from None
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise ConfigError(f"{path}: line {i + 1} is not JSON; not a genrenet journal", param="undo") from None
    if not records or records[0].get("journal") != FORMAT:
        raise ConfigError(f"{path} is not a genrenet tagging journal", param="undo")
    entries = {}
    for record in records[1:]:
        if record["state"] == "pending":
            entries[record["file"]] = dict(record)
        elif record["file"] in entries:
            entries[record["file"]]["state"] = record["state"]
    return records[0], list(entries.values())
