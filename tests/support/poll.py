"""Polling until a condition holds, for integration tests (never a fixed sleep where a condition exists)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(predicate: Callable[[], T | None], timeout: float, what: str, detail: Callable[[], str] = lambda: "") -> T:
    """``predicate()``'s first truthy value, polled every 0.3 s; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:g} s\n{detail()}")
