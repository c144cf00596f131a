"""systemd's notify protocol: READY=1, WATCHDOG=1, STOPPING=1, STATUS=... on $NOTIFY_SOCKET.

A datagram per message to the socket systemd names (a path, or ``@name`` for the
abstract namespace). Without $NOTIFY_SOCKET (not under systemd) every call is a
no-op. The watchdog interval comes from $WATCHDOG_USEC: edged pings at half of it,
and only while the pipeline's heartbeats are fresh (daemon.py decides).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from edged.pipeline.health import Supervisor
from edged.pipeline.stats import PipelineStats

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self.sent: list[str] = []  # what was sent, for the log and tests

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Notifier:
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), target)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        self.sent.append(message)
        return True

    def ready(self, status: str) -> bool:
        return self.send(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(f"STOPPING=1\nSTATUS={status}")

    def reloading(self) -> bool:
        return self.send("RELOADING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of $WATCHDOG_USEC, in seconds; None when systemd set no watchdog for us."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000


async def supervise(supervisor: Supervisor, stats: Callable[[], PipelineStats], notifier: Notifier,
                    summary: Callable[[], str], on_fatal: Callable[[str], None], watchdog_s: float | None) -> None:
    """Apply the supervisor's verdict every second: READY, WATCHDOG, STATUS (every 10 s), the hang exit."""
    period = min(1.0, watchdog_s) if watchdog_s else 1.0
    last_status = 0.0
    while True:
        await asyncio.sleep(period)
        verdict = supervisor.step(stats())
        if verdict.fatal:
            log.error("%s", verdict.fatal)
            on_fatal(verdict.fatal)
            return
        if verdict.ready:
            notifier.ready(summary())
            log.info("ready: %s", summary())
        if verdict.watchdog:
            notifier.watchdog()
        elif verdict.withheld:
            log.warning("watchdog withheld: %s", verdict.withheld)
        now = time.monotonic()
        if now - last_status >= 10.0:
            last_status = now
            notifier.status(summary())
