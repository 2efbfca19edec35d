"""Third-party decoders write to the process's stderr (file descriptor 2) from C: libmpg123, inside
libsndfile, prints ``Note: Illegal Audio-MPEG-Header ...`` and ``[src/libmpg123/...] warning: ...`` lines for
every file that is not quite MP3. :func:`decoder_noise_filtered` catches descriptor 2 while a decoder runs and
writes back every line that is not such noise, so genrenet's own messages, Python's warnings and progress
bars still reach the terminal (at the end of the decode, in their order)."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

# What libmpg123 prints; nothing else is dropped.
NOISE = re.compile(rb"^(?:Note: (?:Illegal Audio-MPEG-Header|Trying to resync|Hit end of|Skipped \d+ bytes)|"
                   rb"\[src/libmpg123/|.*big_parse|.*skip_junk)")


class _Capture:
    """Descriptor 2 redirected to a temporary file while any thread decodes (nested uses share it)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0
        self.saved = None
        self.file = None

    def enter(self) -> bool:
        with self.lock:
            if self.depth == 0:
                try:
                    sys.stderr.flush()
                    self.file = tempfile.TemporaryFile()
                    self.saved = os.dup(2)
                    os.dup2(self.file.fileno(), 2)
                except (OSError, ValueError, AttributeError):  # no descriptor 2 (or no stderr): nothing to filter
                    self._close()
                    return False
            self.depth += 1
            return True

    def leave(self):
        with self.lock:
            self.depth -= 1
            if self.depth:
                return
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(self.saved, 2)
            self.file.seek(0)
            kept = [line for line in self.file.read().splitlines(keepends=True) if not NOISE.match(line)]
            self._close()
            if kept:
                os.write(2, b"".join(kept))

    def _close(self):
        if self.saved is not None:
            os.close(self.saved)
        if self.file is not None:
            self.file.close()
        self.saved = self.file = None


_CAPTURE = _Capture()


@contextlib.contextmanager
def decoder_noise_filtered(path):
    """Run a decode of ``path`` with libmpg123's lines kept off the terminal (for MP3 files and files named
    otherwise that libsndfile may hand to libmpg123: any extension it does not know by name)."""
    name = os.fspath(path).lower() if not isinstance(path, bytes) else path.decode(errors="replace").lower()
    noisy = name.endswith((".mp3", ".mp2", ".mpga")) or not name.endswith(QUIET_EXTENSIONS)
    if not noisy or not _CAPTURE.enter():
        yield
        return
    try:
        yield
    finally:
        _CAPTURE.leave()


QUIET_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".w64", ".caf", ".snd")
