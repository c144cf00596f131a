"""A progress bar for long steps: redrawn in place on a terminal, a log line per 10 % otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("edged.progress")


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.label = label
        self.total = max(1, total)
        self.done = 0
        self.note = ""
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self._last_decile = -1
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        if note:
            self.note = note
        self._draw()

    def _draw(self, force: bool = False) -> None:
        fraction = self.done / self.total
        if self.tty:
            now = time.monotonic()
            if not force and now - self._last_draw < 0.1 and self.done < self.total:
                return
            self._last_draw = now
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "." * (width - filled)
            elapsed = now - self.started
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s {self.note}\x1b[K")
            self.stream.flush()
        else:  # a line per tenth, and per step where there are few steps
            decile = int(fraction * 10)
            if decile != self._last_decile or self.total <= 20:
                self._last_decile = decile
                log.info("%s: %d/%d%s", self.label, self.done, self.total, f" ({self.note})" if self.note else "")

    def close(self) -> None:
        if self.tty:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
