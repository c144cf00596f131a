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
import time
from pathlib import Path
from typing import Any, TypeGuard

from edged.names import check_name

log = logging.getLogger(__name__)

MAX_TOTAL = 2**53  # a count beyond what a JSON number holds exactly is not one edged wrote
DIRECTIONS = ("in", "out")


def _name(value: Any) -> TypeGuard[str]:
    try:
        return isinstance(value, str) and check_name(value) == value
    except ValueError:
        return False


def _read_lines(raw: Any, problems: list[str]) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
    """camera -> line -> label -> direction -> total, keeping only entries edged could have written."""
    out: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    if not isinstance(raw, dict):
        problems.append("'lines' is not an object")
        return out
    for camera, lines in raw.items():
        for line, labels in (lines.items() if isinstance(lines, dict) else [(None, None)]):
            for label, dirs in (labels.items() if isinstance(labels, dict) else [(None, None)]):
                for direction, total in (dirs.items() if isinstance(dirs, dict) else [(None, None)]):
                    where = f"lines.{camera!r}.{line!r}.{label!r}.{direction!r}"
                    if not (_name(camera) and _name(line) and _name(label) and direction in DIRECTIONS):
                        problems.append(f"{where[:200]}: not a camera, line, label and in/out")
                    elif type(total) is not int or not 0 <= total <= MAX_TOTAL:
                        problems.append(f"{where[:200]}: {str(total)[:40]!r} is not a whole number from 0 up")
                    else:
                        out.setdefault(camera, {}).setdefault(line, {}).setdefault(label, {})[direction] = total
    return out


def _read_topics(raw: Any, problems: list[str]) -> dict[str, set[str]]:
    """camera -> the count topics ('zone/label') it published."""
    out: dict[str, set[str]] = {}
    if not isinstance(raw, dict):
        problems.append("'count_topics' is not an object")
        return out
    for camera, topics in raw.items():
        for topic in (topics if isinstance(topics, list) else [None]):
            parts = topic.split("/") if isinstance(topic, str) else []
            if _name(camera) and len(parts) == 2 and all(_name(p) for p in parts):
                out.setdefault(camera, set()).add("/".join(parts))
            else:
                problems.append(f"count_topics.{camera!r}: {str(topic)[:80]!r} is not a zone/label topic")
    return out


class Tallies:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._lines: dict[str, dict[str, dict[str, dict[str, int]]]] = {}  # camera -> line -> label -> dir -> n
        self._topics: dict[str, set[str]] = {}  # camera -> count topics published (zone/label)
        self._failed = False

    def load(self) -> None:
        """Read the file back. What edged did not write (not JSON, nested too deep, a count that is not a whole
        number from 0 up, a name MQTT cannot carry) never stops the start: the entries that are right are kept,
        the rest named in one log line, and the file itself moved aside under a new name for a person to read."""
        if self.path is None or not self.path.exists():
            return
        problems: list[str] = []
        try:
            data: Any = json.loads(self.path.read_text())
        except (OSError, ValueError, RecursionError) as exc:
            data, problems = {}, [f"not readable JSON ({type(exc).__name__}: {str(exc)[:120]})"]
        if not isinstance(data, dict):
            data, problems = {}, problems or ["not a JSON object"]
        self._lines = _read_lines(data.get("lines", {}), problems)
        self._topics = _read_topics(data.get("count_topics", {}), problems)
        if problems:
            self._set_aside(problems)

    def _set_aside(self, problems: list[str]) -> None:
        assert self.path is not None
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for n in range(100):
            bad = self.path.with_name(f"{self.path.name}.damaged-{stamp}{f'-{n}' if n else ''}")
            if not bad.exists():
                break
        try:
            self.path.replace(bad)
            kept = f"the file is kept as {bad.name}"
        except OSError as exc:
            kept = f"it could not be moved aside ({exc.strerror or exc})"
        log.error("%s holds what edged did not write (%d problem(s); first: %s): what was right is kept, the rest "
                  "starts from 0; %s", self.path, len(problems), problems[0], kept)
        self._save()

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
