"""The QoS 1 spool on disk: events, alerts and camera status survive broker outages
and restarts of the daemon itself. ``Outbox`` (outbox.py) is the event loop's side of it.

``Spool`` is SQLite in WAL mode with ``synchronous=FULL``; it lives on one thread of
its own, so fsyncs (slow on SD cards) never block the event loop. ``Outbox`` is the
event loop's side: a message is written to disk first, in group commits, and only
then handed to MQTT; it is deleted when the broker acknowledges it. After a
restart every row still on disk is sent again, oldest first (a subscriber may then
see a message twice, never zero times). The spool is bounded in bytes: when full,
the oldest rows go first and the loss is counted, on disk too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import time
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


class Unsendable(Exception):
    """``send(row)`` can never send this row (a topic MQTT refuses, a payload over its limit): it is set aside, not
    retried, so the rows behind it go on."""


ASIDE_KEEP = 1000  # rows set aside as unsendable, kept on disk (newest) for a person to look at


class Spool:
    """Synchronous, used from one thread only (the Outbox's)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._db: sqlite3.Connection | None = None
        self._lock: IO[str] | None = None
        self.bytes = 0
        self.dropped = 0
        self.set_aside: Path | None = None  # where a damaged spool found at open was moved
        self.set_aside_reason = ""
        self.unavailable = ""  # why the spool could not be opened (a full disk): running from memory meanwhile

    def open(self) -> list[Row]:
        """Open (creating it if needed) and return every row not yet acknowledged, oldest first.

        A damaged file ("file is not a database", "malformed") is moved aside, kept, and a
        fresh spool started; a path edged cannot use is an InputError naming it."""
        problem = spool_problem(self.path)
        if problem:
            raise InputError(f"mqtt.spool: {problem}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = (self.path.parent / f"{self.path.name}.lock").open("w")
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                return self._without_disk(str(exc.strerror or exc))
            raise InputError(f"mqtt.spool: cannot use {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise InputError(f"mqtt.spool: {self.path} is in use by another edged (one spool per daemon)") from None
        self._lock = lock
        try:
            db = self._connect()
        except sqlite3.OperationalError as exc:
            if _full(exc):
                return self._without_disk(str(exc))
            raise InputError(f"mqtt.spool: cannot use {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._move_aside(str(exc))
            db = self._connect()
        self._db = db
        row = db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        self.dropped = int(row[0]) if row else 0
        rows = [Row(i, t, bytes(p), bool(r)) for i, t, p, r in
                db.execute("SELECT id, topic, payload, retain FROM outbox ORDER BY id")]
        self.bytes = sum(len(r.payload) + len(r.topic) for r in rows)
        return rows

    def _without_disk(self, reason: str) -> list[Row]:
        """The disk is full at start: run without it (QoS 1 goes on from memory, as when it fills at run time) and
        try it again at every write. Rows a previous run left are read back without writing, and stay on disk to
        be sent again next time too (at least once, never lost)."""
        self.unavailable = reason
        log.error("MQTT spool %s: the disk is full (%s); starting without it: QoS 1 messages go on from memory "
                  "until it takes writes again", self.path, reason)
        rows: list[Row] = []
        if self.path.is_file():
            with contextlib.suppress(sqlite3.Error), \
                    contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
                rows = [Row(i, t, bytes(p), bool(r)) for i, t, p, r in
                        db.execute("SELECT id, topic, payload, retain FROM outbox ORDER BY id")]
        return rows

    def _reopen(self) -> sqlite3.Connection:
        """The spool that could not be opened at start, once the disk takes writes (raises sqlite3.Error if not)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._lock is None:
                lock = (self.path.parent / f"{self.path.name}.lock").open("w")
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock = lock
        except OSError as exc:
            raise sqlite3.OperationalError(str(exc.strerror or exc)) from None
        db = self._connect()
        self._db, self.unavailable = db, ""
        self.bytes = int(db.execute("SELECT coalesce(sum(length(payload) + length(topic)), 0) FROM outbox")
                         .fetchone()[0])
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({verdict})")
            db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS aside (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
                       "payload BLOB NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL, reason TEXT NOT NULL)")
            db.execute("SELECT count(*) FROM outbox").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(f"{aside}{suffix}")
        self.set_aside, self.set_aside_reason = aside, reason
        log.error("MQTT spool %s is damaged (%s): moved it aside to %s and started a fresh one; the messages in it "
                  "were not sent", self.path, reason, aside)

    def put(self, items: list[tuple[str, bytes, bool]]) -> tuple[list[Row], list[int]]:
        """Store in one transaction; returns the stored rows and the ids evicted to stay in bounds."""
        db, now = self._db or self._reopen(), time.time()
        stored = []
        evicted: list[int] = []
        bytes_before, dropped_before = self.bytes, self.dropped
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
            self.bytes, self.dropped = bytes_before, dropped_before
            if db.in_transaction:  # a failed COMMIT (disk full) may have ended it already
                db.execute("ROLLBACK")
            raise
        return stored, evicted

    def ack(self, ids: list[int]) -> None:
        if not ids or self._db is None:  # no disk: what it holds stays, sent again next time
            return
        marks = ",".join("?" * len(ids))
        freed = self._db.execute(f"SELECT coalesce(sum(length(payload) + length(topic)), 0) FROM outbox "
                                 f"WHERE id IN ({marks})", ids).fetchone()[0]
        self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids)
        self.bytes -= int(freed)

    def set_aside_row(self, row_id: int, reason: str) -> None:
        """Move a row MQTT can never send to the ``aside`` table (the newest ``ASIDE_KEEP`` are kept)."""
        db = self._db
        if db is None:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            freed = db.execute("SELECT coalesce(sum(length(payload) + length(topic)), 0) FROM outbox WHERE id = ?",
                               (row_id,)).fetchone()[0]
            db.execute("INSERT OR REPLACE INTO aside (id, topic, payload, retain, created, reason) "
                       "SELECT id, topic, payload, retain, created, ? FROM outbox WHERE id = ?", (reason, row_id))
            db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            db.execute("DELETE FROM aside WHERE id NOT IN (SELECT id FROM aside ORDER BY id DESC LIMIT ?)",
                       (ASIDE_KEEP,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self.bytes -= int(freed)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def spool_problem(path: Path) -> str:
    """Why ``path`` cannot hold the spool ('' when it can): checked by ``edged check`` and at start."""
    text = str(path)
    if text.startswith(("/proc/", "/sys/", "/dev/")):
        return f"{path} is under /{text.split('/')[1]}, which holds no files for a database"
    if path.is_dir():
        return f"{path} is a directory; give a file path such as {path / 'spool.db'}"
    if path.exists() and not path.is_file():
        return f"{path} is not a regular file"
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("/"))
    if not parent.is_dir():
        return f"{parent} is not a directory"
    try:
        if os.statvfs(parent).f_flag & os.ST_RDONLY:
            return f"{path} is on a read-only filesystem"
    except OSError as exc:
        return f"cannot use {path}: {exc.strerror or exc}"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by this user"
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path}: {parent} is not writable by this user"
    return ""


def spool_health(path: Path) -> str:
    """'' when the spool is fine; 'mqtt.spool: ...' when edged cannot use the path; else a note."""
    problem = spool_problem(path)
    if problem:
        return f"mqtt.spool: {problem}"
    if not path.exists():
        return "not made yet"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    except sqlite3.Error as exc:
        return f"DAMAGED: {exc}; edged run will move it aside, keep it, and start a fresh one"
    if verdict != "ok":
        return f"DAMAGED: {verdict}; edged run will move it aside, keep it, and start a fresh one"
    return f"{pending} message(s) waiting to be sent" if pending else ""


def _full(exc: sqlite3.Error) -> bool:
    return "disk is full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == 13  # SQLITE_FULL
