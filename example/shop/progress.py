"""A tiny text progress bar, so seeding shows it is alive without adding a dependency."""

from __future__ import annotations

import shutil
import time
from types import TracebackType
from typing import TextIO


class Progress:
    """One redrawn line on a terminal; a few plain lines elsewhere, where ``\\r`` would pile up.

    Use as a context manager and call ``advance(n)`` after each batch.
    """

    REDRAW_SECONDS = 0.1

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label = label
        self.total = max(total, 0)
        self.stream = stream
        self.done = 0
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.started = time.perf_counter()
        self._drawn_at = 0.0
        self._quarter = 0  # plain mode: the last quarter (of 4) already reported

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.done = self.total
            self._draw(force=True)
            self._finish()
        elif self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        self._draw()

    def _fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            quarter = int(self._fraction() * 4)
            if 0 < quarter < 4 and quarter > self._quarter:
                self._quarter = quarter
                percent = f"{self._fraction():.0%}"
                self.stream.write(f"{self.label}: {self.done:,}/{self.total:,} ({percent})\n")
                self.stream.flush()
            return
        now = time.perf_counter()
        if not force and now - self._drawn_at < self.REDRAW_SECONDS:
            return
        self._drawn_at = now
        counts = f"{self._fraction():4.0%} {self.done:,}/{self.total:,}"
        columns = shutil.get_terminal_size((80, 20)).columns
        width = max(10, min(40, columns - len(counts) - 20))
        filled = round(self._fraction() * width)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label:<13} [{bar}] {counts}")
        self.stream.flush()

    def _finish(self) -> None:
        elapsed = time.perf_counter() - self.started
        if self.tty:
            self.stream.write(f" {elapsed:.1f}s\n")
        else:
            self.stream.write(f"{self.label}: {self.total:,} rows in {elapsed:.1f}s\n")
        self.stream.flush()
