"""Retained messages of one topic coalesce in the outbox: a flood of changes to a count, a control state or a
discovery config is one row to send, not one per change; events (not retained) are never merged."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from edged.publish.outbox import Outbox
from edged.publish.spool import Row, Spool


def taker(sent: list[Row]):  # type: ignore[no-untyped-def]
    def take(row: Row) -> int:
        sent.append(row)
        return len(sent)  # a fresh mid each time; never acknowledged

    return take


def test_a_flood_of_retained_changes_is_one_row_per_topic(tmp_path: Path) -> None:
    sent: list[Row] = []
    take = taker(sent)

    async def main() -> Outbox:
        outbox = Outbox(Spool(tmp_path / "spool.db", 1 << 24), window=1000)
        await outbox.open()
        for n in range(2000):
            outbox.submit("edged/d/cam/detect/state", b"ON" if n % 2 else b"OFF", retain=True)
            outbox.submit(f"homeassistant/sensor/edged_d/x{n % 5}/config", b"{%d}" % n, retain=True)
            if n % 100 == 0:
                outbox.submit("edged/d/cam/events", b"e%d" % n)
                await asyncio.sleep(0)  # some batches reach the disk in between
        await outbox.drain(0.5)  # nothing attached: nothing is sent, everything waits
        outbox.attach(take)
        await outbox.close()
        return outbox

    outbox = asyncio.run(main())
    topics = [row.topic for row in sent]
    assert topics.count("edged/d/cam/detect/state") == 1
    assert [row.payload for row in sent if row.topic == "edged/d/cam/detect/state"] == [b"ON"]  # the newest
    assert len([t for t in topics if t.startswith("homeassistant/")]) == 5
    assert [row.payload for row in sent if row.topic == "edged/d/cam/events"] == [b"e%d" % n
                                                                                 for n in range(0, 2000, 100)]
    assert outbox.coalesced == 2 * 2000 - 6
    with contextlib.closing(sqlite3.connect(tmp_path / "spool.db")) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] <= 6 + 20 + 6  # stale rows deleted


def test_a_restart_sends_only_the_newest_retained_row_of_each_topic(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", 1 << 24)
    spool.open()
    spool.put([("edged/d/cam/all/person", str(n).encode(), True) for n in range(50)]
              + [("edged/d/cam/events", b"e", False)] * 3)
    spool.close()
    sent: list[Row] = []
    take = taker(sent)

    async def main() -> None:
        outbox = Outbox(Spool(tmp_path / "spool.db", 1 << 24), window=1000)
        await outbox.open()
        outbox.attach(take)
        await outbox.close()

    asyncio.run(main())
    assert [(r.topic, r.payload) for r in sent if r.retain] == [("edged/d/cam/all/person", b"49")]
    assert len([r for r in sent if not r.retain]) == 3
