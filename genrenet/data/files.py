"""The audio files a user names: files, folders (their audio files, recursively) and glob patterns.

Everything a folder holds is accounted for: its audio files are returned, and the other files are counted in a
note, so nothing is left out without a word. Named files are returned as they are, whatever their extension:
the decoder then says why one cannot be used.
"""
from __future__ import annotations

import dataclasses
import glob
import os

from ..errors import DatasetError
from .audio import is_audio_file, unsupported_format

GLOB_CHARS = ("*", "?", "[")


@dataclasses.dataclass
class AudioPaths:
    """The files to process, in order, and notes about what the folders held besides audio."""

    files: list
    notes: list


def expand_audio_paths(paths) -> AudioPaths:
    """Files, folders and glob patterns → the audio files they name. Raises
    :class:`~genrenet.errors.DatasetError` naming the arguments when none gives a file."""
    files, notes = [], []
    for path in (os.fspath(p) for p in paths):
        if os.path.isdir(path):
            found, note = folder_audio(path)
            files += found
            notes += [note] if note else []
        elif not os.path.lexists(path) and any(c in path for c in GLOB_CHARS):
            matched = sorted(glob.glob(path, recursive=True))
            if not matched:
                notes.append(f"{path}: the pattern matches no file")
            files += [m for m in matched if not os.path.isdir(m)]
        else:
            files.append(path)
    if not files:
        raise DatasetError(f"no audio files in {', '.join(os.fspath(p) for p in paths) or 'the arguments'}"
                           + (f" ({'; '.join(notes)})" if notes else ""))
    return AudioPaths(files, notes)


def folder_audio(folder: str):
    """``(audio files, note)`` of a folder, recursively and sorted; the note counts the other files (None when
    there are none) or says that the folder cannot be read."""
    if not os.access(folder, os.R_OK | os.X_OK):
        return [], f"{folder}: cannot read the folder (permission denied)"
    found = sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names)
    unsupported = [f for f in found if unsupported_format(f)]
    other = [f for f in found if not is_audio_file(f) and not unsupported_format(f)]
    notes = []
    if unsupported:
        kinds = sorted({os.path.splitext(f)[1].lower() for f in unsupported})
        notes.append(f"skipped {len(unsupported)} file(s) in an unsupported format ({', '.join(kinds)}); convert "
                     f"them with ffmpeg (e.g. ffmpeg -i song{kinds[0]} song.flac)")
    if other:
        kinds = sorted({os.path.splitext(f)[1].lower() or "no extension" for f in other})
        notes.append(f"ignored {len(other)} file(s) without an audio extension ({', '.join(kinds[:6])}"
                     f"{', …' if len(kinds) > 6 else ''}); name a file to classify it anyway")
    return [f for f in found if is_audio_file(f)], f"{folder}: {'; '.join(notes)}" if notes else None


def holds_audio(folder: str) -> bool:
    """Whether ``folder`` holds at least one audio file (stops at the first)."""
    return any(is_audio_file(f) for _, _, names in os.walk(folder) for f in names)
