"""QoS 1 messages from other threads to the event loop, one wake-up for many: the scheduler's thread hands over a
frame's events, counts and totals, and the loop takes them all in one call (the first message of a batch
schedules the call; the rest join it), in the order they came."""

from __future__ import annotations

import threading
from collections.abc import Callable

Message = tuple[str, bytes, bool]  # topic, payload, retain


class LoopHandoff:
    def __init__(self, schedule: Callable[[Callable[[], None]], object], take: Callable[[str, bytes, bool], None]
                 ) -> None:
        self._schedule = schedule  # runs a function on the event loop (call_soon_threadsafe)
        self._take = take  # the loop's side: one message
        self._lock = threading.Lock()
        self._waiting: list[Message] = []
        self.wakeups = 0  # calls scheduled on the loop (messages / wakeups: how many each carried)

    def put(self, topic: str, payload: bytes, retain: bool) -> None:
        """From any thread but the loop's."""
        with self._lock:
            self._waiting.append((topic, payload, retain))
            if len(self._waiting) > 1:
                return  # a call is scheduled and has not run yet: it takes this one too
            self.wakeups += 1
        self._schedule(self._drain)

    def _drain(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for topic, payload, retain in waiting:
            self._take(topic, payload, retain)
