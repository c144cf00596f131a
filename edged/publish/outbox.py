"""The event loop's side of the QoS 1 spool (spool.py): a message is written to disk first, in group commits on the
spool's own thread, then handed to MQTT in order, and deleted when the broker acknowledges it. Retained messages
of one topic coalesce (only the newest not yet sent goes); a row MQTT can never send is set aside so the rows
behind it go on; when the disk refuses writes, messages go on from memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edged.logs import Every
from edged.publish.spool import Row, Spool, Unsendable

log = logging.getLogger(__name__)

Send = Callable[[Row], "int | None"]

# Acknowledgements alone (nothing to write) are gathered up to this long before one transaction deletes their rows:
# with TCP_NODELAY the broker's PUBACKs come back one by one, and a transaction each cost more than sending the
# message. A message submitted meanwhile ends the wait (it is written and sent at once). A row acknowledged but not
# yet deleted when the daemon dies is sent again after the restart (QoS 1 allows it).
ACK_GATHER_S = 0.05
ACK_BATCH = 32  # ...unless this many are waiting


class Outbox:
    """The event loop's side of the spool. ``submit`` never blocks."""

    def __init__(self, spool: Spool, window: int = 20) -> None:
        self.spool = spool
        self.window = window
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._incoming: list[tuple[str, bytes, bool]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a message came while the flush waited for more acknowledgements
        self._closing = False  # closing: acknowledgements are not gathered any more
        self._unsent: collections.deque[Row] = collections.deque()
        # MQTT mid -> row handed to paho. Kept across reconnects: paho sends its own
        # unacknowledged QoS 1 messages again (same mid) when the connection is back.
        self._inflight: dict[int, Row] = {}
        self._acks: list[int] = []
        self._send: Send | None = None
        self.sent = 0
        self.acked = 0
        self.loaded = 0
        self.errors = 0  # spool writes the disk refused (full, I/O error): those messages went on from memory
        self.error = ""  # the last such error, while it lasts ('' once the spool takes writes again)
        self._memory_ids = 0  # rows the spool could not take get ids below zero
        self._error_log = Every(60.0)
        self.unsendable = 0  # rows MQTT can never send, set aside so the rest go on
        self.unsendable_reason = ""  # the last one's topic and why
        self._aside: list[tuple[int, str]] = []  # (row id, reason) to move aside on the spool's thread
        self._incoming_retained: dict[str, int] = {}  # topic -> its retained message's index in _incoming
        self._unsent_retained: dict[str, int] = {}  # topic -> id of its newest retained row not yet sent
        self.coalesced = 0  # retained messages replaced by a newer one of their topic before they were sent

    @property
    def pending(self) -> int:
        """Messages accepted and not yet acknowledged by the broker."""
        return len(self._incoming) + len(self._unsent) + len(self._inflight)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._thread, self.spool.open)
        if self.spool.unavailable:
            self.error = f"cannot open the spool: {self.spool.unavailable}"
        self._queue(rows)  # a restart after a flood: one row per retained topic goes out
        self.loaded = len(rows)
        if rows:
            log.info("MQTT spool %s: %d message(s) from before the restart to deliver", self.spool.path, len(rows))

    def submit(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Queue one message. A retained one replaces an older retained one of the same topic that has not been
        handed to MQTT yet: only the newest state of a topic matters (a count, a control state, a discovery
        config), so a flood of changes costs one row, not one per change."""
        if retain:
            waiting = self._incoming_retained.get(topic)
            if waiting is not None:
                self._incoming[waiting] = (topic, payload, retain)
                self.coalesced += 1
                return
            self._incoming_retained[topic] = len(self._incoming)
        self._incoming.append((topic, payload, retain))
        self._kick()

    def _kick(self, wake: bool = True) -> None:
        """Start the flush task unless it is running (it loops until nothing is left); ``wake``: a message to write
        or set aside ends its wait for more acknowledgements at once (an acknowledgement alone does not)."""
        if wake:
            self._wake.set()
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._incoming or self._acks or self._aside:
            if not self._incoming and not self._aside and len(self._acks) < ACK_BATCH and not self._closing:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):  # (not TimeoutError: Python 3.10's differs)
                    await asyncio.wait_for(self._wake.wait(), ACK_GATHER_S)
            batch, self._incoming = self._incoming, []
            self._incoming_retained = {}
            acks, self._acks = self._acks, []
            aside, self._aside = self._aside, []
            for row_id, reason in aside:
                try:
                    await loop.run_in_executor(self._thread, self.spool.set_aside_row, row_id, reason)
                except sqlite3.Error as exc:
                    self._failed("set aside an unsendable message in", exc)
            stored = [ack for ack in acks if ack > 0]
            if stored:
                try:
                    await loop.run_in_executor(self._thread, self.spool.ack, stored)
                except sqlite3.Error as exc:  # the rows stay on disk: sent again after a restart, never lost
                    self._failed("delete acknowledged messages from", exc)
            if batch:
                try:
                    rows, evicted = await loop.run_in_executor(self._thread, self.spool.put, batch)
                except sqlite3.Error as exc:
                    # Not on disk, but not lost: kept in memory and sent while the broker is up.
                    self._failed("write", exc, len(batch))
                    self._queue(self._in_memory(batch))
                    self.pump()
                    continue
                if self.error:
                    log.warning("MQTT spool %s takes writes again", self.spool.path)
                    self.error = ""
                gone = set(evicted)
                if gone:
                    self._unsent = collections.deque(r for r in self._unsent if r.id not in gone)
                    log.warning("MQTT spool full (%d bytes): dropped the %d oldest message(s); %d dropped in all",
                                self.spool.max_bytes, len(evicted), self.spool.dropped)
                self._queue([r for r in rows if r.id not in gone])
            self.pump()

    def _queue(self, rows: list[Row]) -> None:
        """``rows`` to send, in order, each retained one superseding older unsent rows of its topic."""
        self._unsent.extend(rows)
        self._supersede(rows)

    def _supersede(self, rows: list[Row]) -> None:
        """Newer retained rows make older unsent ones of their topic needless: dropped from the queue and the disk
        (a row handed to MQTT already is left to be acknowledged)."""
        stale: set[int] = set()
        for row in rows:
            if not row.retain:
                continue
            older = self._unsent_retained.get(row.topic)
            if older is not None and older != row.id:
                stale.add(older)
            self._unsent_retained[row.topic] = row.id
        if stale:
            self._unsent = collections.deque(r for r in self._unsent if r.id not in stale)
            self._acks.extend(i for i in stale if i > 0)
            self.coalesced += len(stale)

    def _in_memory(self, batch: list[tuple[str, bytes, bool]]) -> list[Row]:
        rows = []
        for topic, payload, retain in batch:
            self._memory_ids -= 1
            rows.append(Row(self._memory_ids, topic, payload, retain))
        return rows

    def _failed(self, what: str, exc: sqlite3.Error, messages: int = 0) -> None:
        """Count a spool failure; log it at most once a minute (it repeats while the disk is full)."""
        self.errors += messages
        self.error = f"cannot {what} the spool: {exc}"
        if self._error_log.due():
            log.error("MQTT spool %s: %s; QoS 1 messages go on from memory while the broker is up "
                      "(%d message(s) not on disk so far)", self.spool.path, self.error, self.errors)

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
            try:
                mid = send(row)
            except Unsendable as exc:
                self._unsendable(self._unsent.popleft(), str(exc))
                continue
            if mid is None:
                return
            self._unsent.popleft()
            if row.retain and self._unsent_retained.get(row.topic) == row.id:
                del self._unsent_retained[row.topic]
            self._inflight[mid] = row
            self.sent += 1

    def _unsendable(self, row: Row, reason: str) -> None:
        """Counted, logged (a minute apart), kept in the spool's ``aside`` table, alerted by telemetry."""
        self.unsendable += 1
        self.unsendable_reason = f"{row.topic!r}: {reason}"
        if self._error_log.due("unsendable"):
            log.error("MQTT: a QoS 1 message can never be sent (%s); set aside in %s (table 'aside'), %d so far; "
                      "the messages behind it go on", self.unsendable_reason, self.spool.path, self.unsendable)
        if row.id > 0:
            self._aside.append((row.id, reason))
            self._kick()

    def row_for(self, mid: int) -> Row | None:
        """The row handed to MQTT as ``mid``, if it is still waiting for its acknowledgement."""
        return self._inflight.get(mid)

    def acknowledged(self, mid: int) -> bool:
        row = self._inflight.pop(mid, None)
        if row is None:
            return False
        self.acked += 1
        self._acks.append(row.id)
        self._kick(wake=len(self._acks) >= ACK_BATCH)
        self.pump()
        return True

    async def drain(self, timeout: float) -> bool:
        """Wait until everything accepted was acknowledged (or the timeout)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._wake.set()  # a flush waiting for more acknowledgements deletes what it has now
        if self._flushing is not None:
            await self._flushing
        return not self.pending

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._flushing is not None:
            await self._flushing
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self.spool.close)
        self._thread.shutdown(wait=True)

