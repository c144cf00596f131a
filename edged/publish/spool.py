"""The QoS 1 outbox on disk: events, alerts and camera status survive broker outages
and restarts of the daemon itself.

``Spool`` is SQLite in WAL mode with ``synchronous=FULL``; it lives on one thread of
its own, so fsyncs (slow on SD cards) never block the event loop. ``Outbox`` is the
event loop's side: a message is written to disk first, in group commits, and only
then handed to MQTT; it is deleted when the broker acknowledges it. After a
restart every row still on disk is sent again, oldest first (a subscriber may then
see a message twice, never zero times). The spool is bounded in bytes: when full,
the oldest rows go first and the loss is counted, on disk too.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edged.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Row:
    id: int
    topic: str
    payload: bytes
    retain: bool


class Spool:
    """Synchronous, used from one thread only (the Outbox's)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._db: sqlite3.Connection | None = None
        self._lock: IO[str] | None = None
        self.bytes = 0
        self.dropped = 0

    def open(self) -> list[Row]:
        """Open (creating it if needed) and return every row not yet acknowledged, oldest first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = (self.path.parent / f"{self.path.name}.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise InputError(f"mqtt.spool: {self.path} is in use by another edged (one spool per daemon)") from None
        self._lock = lock
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
                   "payload BLOB NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._db = db
        row = db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        self.dropped = int(row[0]) if row else 0
        rows = [Row(i, t, bytes(p), bool(r)) for i, t, p, r in
                db.execute("SELECT id, topic, payload, retain FROM outbox ORDER BY id")]
        self.bytes = sum(len(r.payload) + len(r.topic) for r in rows)
        return rows

    def put(self, items: list[tuple[str, bytes, bool]]) -> tuple[list[Row], list[int]]:
        """Store in one transaction; returns the stored rows and the ids evicted to stay in bounds."""
        assert self._db is not None
        db, now = self._db, time.time()
        stored = []
        evicted: list[int] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for topic, payload, retain in items:
                cursor = db.execute("INSERT INTO outbox (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
                                    (topic, payload, int(retain), now))
                stored.append(Row(int(cursor.lastrowid or 0), topic, payload, retain))
                self.bytes += len(payload) + len(topic)
            while self.bytes > self.max_bytes:
                oldest = db.execute("SELECT id, length(payload) + length(topic) FROM outbox ORDER BY id LIMIT 1"
                                    ).fetchone()
                if oldest is None:
                    break
                db.execute("DELETE FROM outbox WHERE id = ?", (oldest[0],))
                self.bytes -= int(oldest[1])
                evicted.append(int(oldest[0]))
            if evicted:
                self.dropped += len(evicted)
                db.execute("INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (self.dropped,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return stored, evicted

    def ack(self, ids: list[int]) -> None:
        assert self._db is not None
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        freed = self._db.execute(f"SELECT coalesce(sum(length(payload) + length(topic)), 0) FROM outbox "
                                 f"WHERE id IN ({marks})", ids).fetchone()[0]
        self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids)
        self.bytes -= int(freed)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


Send = Callable[[Row], "int | None"]


class Outbox:
    """The event loop's side of the spool. ``submit`` never blocks."""

    def __init__(self, spool: Spool, window: int = 20) -> None:
        self.spool = spool
        self.window = window
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._incoming: list[tuple[str, bytes, bool]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._unsent: collections.deque[Row] = collections.deque()
        # MQTT mid -> row handed to paho. Kept across reconnects: paho sends its own
        # unacknowledged QoS 1 messages again (same mid) when the connection is back.
        self._inflight: dict[int, Row] = {}
        self._acks: list[int] = []
        self._send: Send | None = None
        self.sent = 0
        self.acked = 0
        self.loaded = 0

    @property
    def pending(self) -> int:
        """Messages accepted and not yet acknowledged by the broker."""
        return len(self._incoming) + len(self._unsent) + len(self._inflight)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._thread, self.spool.open)
        self._unsent.extend(rows)
        self.loaded = len(rows)
        if rows:
            log.info("MQTT spool %s: %d message(s) from before the restart to deliver", self.spool.path, len(rows))

    def submit(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._incoming.append((topic, payload, retain))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._incoming or self._acks:
            batch, self._incoming = self._incoming, []
            acks, self._acks = self._acks, []
            if acks:
                await loop.run_in_executor(self._thread, self.spool.ack, acks)
            if batch:
                rows, evicted = await loop.run_in_executor(self._thread, self.spool.put, batch)
                if evicted:
                    gone = set(evicted)
                    self._unsent = collections.deque(r for r in self._unsent if r.id not in gone)
                    log.warning("MQTT spool full (%d bytes): dropped the %d oldest message(s); %d dropped in all",
                                self.spool.max_bytes, len(evicted), self.spool.dropped)
                self._unsent.extend(r for r in rows if r.id not in set(evicted))
            self.pump()

    def attach(self, send: Send) -> None:
        """``send(row)`` hands a row to MQTT and returns its mid, or None when it cannot."""
        self._send = send
        self.pump()

    def pump(self) -> None:
        send = self._send
        if send is None:
            return
        while self._unsent and len(self._inflight) < self.window:
            row = self._unsent[0]
            mid = send(row)
            if mid is None:
                return
            self._unsent.popleft()
            self._inflight[mid] = row
            self.sent += 1

    def acknowledged(self, mid: int) -> bool:
        row = self._inflight.pop(mid, None)
        if row is None:
            return False
        self.acked += 1
        self._acks.append(row.id)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        self.pump()
        return True

    async def drain(self, timeout: float) -> bool:
        """Wait until everything accepted was acknowledged (or the timeout)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._flushing is not None:
            await self._flushing
        return not self.pending

    async def close(self) -> None:
        if self._flushing is not None:
            await self._flushing
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self.spool.close)
        self._thread.shutdown(wait=True)

