"""Exponential backoff with jitter and a restart budget, as plain data that tests can drive."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``min_s, 2*min_s, 4*min_s ... max_s``, each spread by +/- ``jitter``.

    Jitter keeps many cameras that failed together (a switch rebooted) from
    reconnecting in lock-step.
    """

    min_s: float
    max_s: float
    factor: float = 2.0
    jitter: float = 0.25
    rng: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def next(self) -> float:
        base = self.min_s * self.factor ** self.attempts
        if base >= self.max_s:
            base = self.max_s  # capped: the exponent stops growing (it overflowed after 1024 failures)
        else:
            self.attempts += 1
        spread = 1.0 + self.jitter * (2.0 * self.rng() - 1.0)
        return max(self.min_s * (1.0 - self.jitter), min(self.max_s, base * spread))

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class RestartBudget:
    """Restarting too fast? At most ``max_restarts`` within ``window_s``.

    Plain data (a deque of restart times) so tests drive it with any clock.
    """

    max_restarts: int
    window_s: float
    times: deque[float] = field(default_factory=deque)

    def record(self, now: float) -> None:
        self.times.append(now)
        self._prune(now)

    def exhausted(self, now: float) -> bool:
        self._prune(now)
        return len(self.times) >= self.max_restarts

    def _prune(self, now: float) -> None:
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()
