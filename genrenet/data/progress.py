"""Progress of long work (inference over files, downloads) on stderr, readable on a terminal and in a log file.

On a terminal the line is a bar redrawn in place. Anywhere else (a file, a pipe, CI) redrawing would leave
carriage returns and one copy of the bar per update, so there a plain line is printed every tenth of the work
(every :data:`PLAIN_SECONDS` when the total is unknown) and at the end. stdout stays clean for ``--json``.
"""
from __future__ import annotations

import sys
import time
from typing import Optional

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2   # a terminal bar is redrawn at most five times a second
PLAIN_SECONDS = 30.0   # without a known total, a plain line at most this often
PLAIN_STEPS = 10       # with a known total, a plain line every tenth


class Progress:
    """Progress of ``total`` units (``None``: unknown) of which ``done`` are already finished.

    ``scale`` divides the counts for display (``2**20`` and ``unit="MiB"`` for bytes). ``terminal`` overrides
    whether ``stream`` (default stderr) is treated as a terminal.
    """

    def __init__(self, total: Optional[float], *, label: str = "predict", unit: str = "files", done: float = 0,
                 enabled: bool = True, stream=None, scale: float = 1, terminal: Optional[bool] = None):
        self.total, self.done, self.first = total, done, done
        self.label, self.unit, self.scale = label, unit, scale
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.enabled = enabled and (total is None or total > 1)
        self.start = self.last = time.perf_counter()
        self.shown = done  # the count last printed

    def advance(self, n: float):
        """Count ``n`` more units."""
        self.update(self.done + n)

    def update(self, done: float):
        """Show that ``done`` units are finished (redrawn or printed only when it is worth a line)."""
        if done == self.done:
            return
        self.done = done
        if self.enabled and self._due(time.perf_counter()):
            self._show()

    def close(self):
        """Show the final count and end the line."""
        if not self.enabled:
            return
        if self.done != self.shown:
            self._show()
        if self.terminal:
            self.stream.write("\n")
            self.stream.flush()

    def _due(self, now: float) -> bool:
        finished = self.total is not None and self.done >= self.total
        if self.terminal:
            due = finished or now - self.last >= REDRAW_SECONDS
        elif self.total:
            step = self.total / PLAIN_STEPS
            due = not finished and int(self.done / step) > int(self.shown / step)
        else:
            due = now - self.last >= PLAIN_SECONDS
        if due:
            self.last = now
        return due

    def _show(self):
        self.shown = self.done
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = (self.done - self.first) / self.scale / elapsed
        count = f"{self.done / self.scale:,.{1 if self.scale > 1 else 0}f}"
        if self.total:
            count += f"/{self.total / self.scale:,.{1 if self.scale > 1 else 0}f}"
        text = f"{count} {self.unit} ({rate:.1f} {self.unit}/s)"
        if self.total and self.terminal:
            filled = int(BAR_WIDTH * min(1.0, self.done / self.total))
            text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
        elif self.total:
            text = f"{min(1.0, self.done / self.total):4.0%} {text}"
        self.stream.write(f"\r{self.label} {text}" if self.terminal else f"{self.label} {text}\n")
        self.stream.flush()
