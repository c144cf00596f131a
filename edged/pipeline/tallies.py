"""What must outlive a restart: line-crossing totals, and which retained count topics exist.

One JSON file in the state directory (beside the spool), rewritten whole (write to a
temporary file, then rename) on every crossing and on every new count topic: crossings
are a few a minute, the file a few hundred bytes. A restart reads it back, so totals
run on and count topics that no longer exist (a zone removed while edged was down) are
cleared rather than left at a stale value. The rename survives a crash of edged; it is
not fsynced, so a power cut may lose the last seconds of totals.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Tallies:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._lines: dict[str, dict[str, dict[str, dict[str, int]]]] = {}  # camera -> line -> label -> dir -> n
        self._topics: dict[str, set[str]] = {}  # camera -> count topics published (zone/label)
        self._failed = False

    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data: Any = json.loads(self.path.read_text())
            self._lines = {c: {ln: {lb: {d: int(n) for d, n in dirs.items()} for lb, dirs in labels.items()}
                               for ln, labels in lines.items()} for c, lines in data.get("lines", {}).items()}
            self._topics = {c: set(topics) for c, topics in data.get("count_topics", {}).items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            bad = self.path.with_suffix(".damaged")
            log.error("%s cannot be read (%s): line totals start from 0; the file is kept as %s",
                      self.path, exc, bad.name)
            self.path.replace(bad)
            self._lines, self._topics = {}, {}

    def line_totals(self, camera: str) -> dict[str, dict[str, dict[str, int]]]:
        with self._lock:
            return {ln: {lb: dict(d) for lb, d in labels.items()} for ln, labels in self._lines.get(camera, {}).items()}

    def add_crossing(self, camera: str, line: str, label: str, direction: str) -> int:
        """Count one crossing; returns the new total for that line, label and direction."""
        with self._lock:
            per_label = self._lines.setdefault(camera, {}).setdefault(line, {}).setdefault(label, {})
            per_label[direction] = per_label.get(direction, 0) + 1
            total = per_label[direction]
            self._save()
        return total

    def count_topics(self, camera: str) -> set[str]:
        with self._lock:
            return set(self._topics.get(camera, set()))

    def set_count_topics(self, camera: str, topics: set[str]) -> None:
        with self._lock:
            if self._topics.get(camera) == topics:
                return
            if topics:
                self._topics[camera] = set(topics)
            else:
                self._topics.pop(camera, None)
            self._save()

    def forget_lines(self, camera: str, keep: set[str]) -> None:
        """Drop totals of lines that are no longer configured."""
        with self._lock:
            lines = self._lines.get(camera, {})
            gone = set(lines) - keep
            for line in gone:
                del lines[line]
            if gone:
                self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"lines": self._lines, "count_topics": {c: sorted(t) for c, t in self._topics.items()}}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, sort_keys=True))
            os.replace(tmp, self.path)
            self._failed = False
        except OSError as exc:
            if not self._failed:
                log.error("cannot save line totals to %s: %s (they are kept in memory)", self.path, exc)
            self._failed = True
