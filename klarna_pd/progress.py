"""A one-line progress report for long jobs: done/total, rows per second, time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints ``label: 1,200,000 / 10,000,000 rows (12%), 250,000 rows/s, 35 s left``.

    On a terminal the line is redrawn in place; elsewhere (CI logs, files) a new line is written
    at most every ``every`` seconds, so logs stay short.
    """

    def __init__(
        self, label: str, total: int | None, *, estimated: bool = False, stream: TextIO | None = None, every: float = 5.0
    ) -> None:
        self.label = label
        self.total = total
        self.estimated = estimated
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.started = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        # In a log the first line comes after ``every`` seconds: a short job prints its finish alone.
        self._last = 0.0 if self._tty else self.started

    def _line(self, done: int) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = done / elapsed
        text = f"{self.label}: {done:,}"
        if self.total:
            about = "~" if self.estimated else ""
            text += f" / {about}{self.total:,} rows ({about}{min(100.0, 100.0 * done / self.total):.0f}%)"
            if 0 < done < self.total and rate > 0:
                text += f", {rate:,.0f} rows/s, {(self.total - done) / rate:,.0f} s left"
            else:
                text += f", {rate:,.0f} rows/s"
        else:
            text += f" rows, {rate:,.0f} rows/s"
        return text

    def update(self, done: int) -> None:
        now = time.perf_counter()
        interval = 0.2 if self._tty else self.every
        if now - self._last < interval:
            return
        self._last = now
        end = "\r" if self._tty else "\n"
        print(self._line(done), end=end, file=self.stream, flush=True)

    def interrupt(self) -> None:
        """End a terminal's progress line, so that what is printed next (an error) starts a line."""
        if self._tty and self._last:
            print(file=self.stream, flush=True)

    def finish(self, done: int) -> None:
        self.total, self.estimated = done, False
        elapsed = time.perf_counter() - self.started
        line = f"{self._line(done)} in {elapsed:,.1f} s"
        # On a terminal it overwrites the last update, which may have been longer.
        print(line.ljust(80) if self._tty else line, file=self.stream, flush=True)
