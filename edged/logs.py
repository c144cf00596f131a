"""Logging set-up: one handler on stderr, text or JSON lines, secrets scrubbed.

The SecretFilter sits on the handler, so every record from every library passes
through it before it is formatted.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

from edged.redact import SecretFilter


class Every:
    """``due(key)`` is True at most once per ``period_s`` for each key: for a message that repeats while a
    condition lasts (a full disk, a broker that refuses, an engine that returns NaN, a flood of bad requests).
    """

    def __init__(self, period_s: float = 60.0) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}

    def due(self, key: str = "") -> bool:
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.period_s:
            return False
        self._last[key] = now
        return True

    def reset(self) -> None:
        """The condition ended: the next occurrence of anything is logged at once."""
        self._last.clear()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """``2026-11-22T17:47:16.339Z INFO edged.daemon: message``: UTC, millisecond precision."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime(datefmt or "%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))


def setup_logging(level: str = "info", fmt: str = "text", secrets: Iterable[str] = ()) -> SecretFilter:
    """Configure the root logger; returns the filter so more secrets can be added."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    scrubber = SecretFilter(secrets)
    handler.addFilter(scrubber)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("openvino", "urllib3", "nncf"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return scrubber
