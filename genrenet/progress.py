"""A one-line progress bar on stderr, shared by long work (reading a dataset's headers, inference)."""
from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress bar on stderr when it is a terminal (stdout stays clean for ``--json``)."""

    def __init__(self, total: int, enabled: bool = True, stream=None, label: str = "predict", unit: str = "files"):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.stream, self.label, self.unit = stream or sys.stderr, label, unit
        self.enabled = enabled and total > 1 and (stream is not None or self.stream.isatty())

    def update(self, done: int):
        """Show ``done`` items finished."""
        if not self.enabled or done == self.done:
            return
        self.done = done
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        filled = int(30 * done / self.total)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} {self.unit} "
                          f"({rate:.1f} {self.unit}/s)")
        self.stream.flush()

    def close(self):
        """Finish the bar at 100 % and end its line."""
        if self.enabled:
            self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()

    def line(self, text: str):
        """One plain line on the progress stream (where a bar is not shown: logs, pipes)."""
        self.stream.write(text + "\n")
        self.stream.flush()
