"""The on-disk QoS 1 outbox: order, persistence across restarts, bounds, one owner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edged.errors import InputError
from edged.paths import default_spool_path
from edged.publish.spool import Outbox, Row, Spool


def test_rows_survive_a_restart_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    assert spool.open() == []
    stored, evicted = spool.put([("a/t", b"one", True), ("a/t", b"two", False), ("b/t", b"three", False)])
    assert [r.payload for r in stored] == [b"one", b"two", b"three"] and evicted == []
    spool.ack([stored[1].id])
    spool.close()
    again = Spool(tmp_path / "s.db", 1 << 20)
    rows = again.open()
    assert [(r.topic, r.payload, r.retain) for r in rows] == [("a/t", b"one", True), ("b/t", b"three", False)]
    assert again.bytes == len(b"one") + 3 + len(b"three") + 3
    again.close()


def test_full_spool_drops_oldest_first_and_remembers_the_loss(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 100)
    spool.open()
    for i in range(10):
        spool.put([("t", bytes([65 + i]) * 20, False)])  # 21 bytes each
    assert spool.bytes <= 100 and spool.dropped == 6
    spool.close()
    again = Spool(tmp_path / "s.db", 100)
    rows = again.open()
    assert [r.payload[:1] for r in rows] == [b"G", b"H", b"I", b"J"] and again.dropped == 6
    again.close()


def test_one_daemon_per_spool(tmp_path: Path) -> None:
    first = Spool(tmp_path / "s.db", 1000)
    first.open()
    with pytest.raises(InputError, match="in use by another edged"):
        Spool(tmp_path / "s.db", 1000).open()
    first.close()
    Spool(tmp_path / "s.db", 1000).open()


def test_outbox_writes_before_sending_and_deletes_on_ack(tmp_path: Path) -> None:
    async def go() -> None:
        outbox = Outbox(Spool(tmp_path / "s.db", 1 << 20), window=2)
        await outbox.open()
        sent: list[tuple[int, Row]] = []
        connected = False

        def send(row: Row) -> int | None:
            if not connected:
                return None
            mid = 100 + len(sent)
            sent.append((mid, row))
            return mid

        outbox.attach(send)
        for i in range(5):
            outbox.submit("edged/d/alerts", f"m{i}".encode())
        await asyncio.sleep(0.2)
        assert sent == [] and outbox.pending == 5  # broker away: on disk, not sent
        connected = True
        outbox.pump()
        assert [r.payload for _, r in sent] == [b"m0", b"m1"]  # a window of 2 in flight
        assert outbox.acknowledged(100) and not outbox.acknowledged(999)
        assert [r.payload for _, r in sent] == [b"m0", b"m1", b"m2"]
        for mid, _ in list(sent):
            outbox.acknowledged(mid)
        for mid, _ in list(sent[3:]):
            outbox.acknowledged(mid)
        assert await outbox.drain(2.0) and outbox.pending == 0
        await outbox.close()
        reopened = Spool(tmp_path / "s.db", 1 << 20)
        assert reopened.open() == []  # every acknowledged row is gone from disk
        reopened.close()

    asyncio.run(go())


def test_default_spool_path() -> None:
    assert default_spool_path({"STATE_DIRECTORY": "/var/lib/edged"}, "gate") == Path("/var/lib/edged/spool-gate.db")
    assert default_spool_path({"XDG_STATE_HOME": "/x"}, "gate") == Path("/x/edged/spool-gate.db")
