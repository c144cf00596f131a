"""Child processes the tools start (broker, RTSP server, daemon) end with their parent.

A benchmark or test that dies on an exception must not leave a daemon behind that
eats the CPU of every later measurement: every child is tracked, and whatever is
still running when the interpreter exits is terminated (then killed).
"""

from __future__ import annotations

import atexit
import subprocess
import time
import weakref
from typing import Any, TypeVar

P = TypeVar("P", bound="subprocess.Popen[Any]")

_live: weakref.WeakSet[subprocess.Popen[Any]] = weakref.WeakSet()


def track(process: P) -> P:
    """Terminate ``process`` at interpreter exit if it is still running; returns it."""
    _live.add(process)
    return process


def reap(grace_s: float = 5.0) -> None:
    running = [p for p in list(_live) if p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + grace_s
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


atexit.register(reap)
