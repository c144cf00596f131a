"""The on-disk QoS 1 outbox: order, persistence across restarts, bounds, one owner."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from edged.errors import InputError
from edged.paths import default_spool_path
from edged.publish.outbox import Outbox
from edged.publish.spool import Row, Spool, spool_problem


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


def test_a_spool_that_is_not_a_database_is_set_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite " * 100)
    spool = Spool(path, 1 << 20)
    assert spool.open() == []  # it used to stop edged from starting (rc 1, and systemd crash-looped)
    assert spool.set_aside is not None and spool.set_aside.read_bytes() == b"this is not sqlite " * 100
    assert "file is not a database" in spool.set_aside_reason
    stored, _ = spool.put([("t", b"fresh", False)])
    assert stored[0].payload == b"fresh"
    spool.close()


def test_a_malformed_spool_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, 1 << 20)
    spool.open()
    spool.put([("t", bytes([i % 256]) * 900, False) for i in range(200)])
    spool.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    data = bytearray(path.read_bytes())
    data[4096 * 3: 4096 * 6] = b"\xff" * (4096 * 3)  # trash pages in the middle of the table
    path.write_bytes(bytes(data))
    again = Spool(path, 1 << 20)
    assert again.open() == []
    assert again.set_aside is not None and again.set_aside.exists()
    again.close()


@pytest.mark.parametrize(("where", "says"), [
    ("dir", "is a directory"), ("/dev/null", "is under /dev"), ("/proc/edged.db", "is under /proc"),
    ("file-as-parent", "is not a directory"),
])
def test_paths_that_cannot_hold_a_spool_are_named(tmp_path: Path, where: str, says: str) -> None:
    if where == "dir":
        path = tmp_path
    elif where == "file-as-parent":
        (tmp_path / "plain").write_text("x")
        path = tmp_path / "plain" / "s.db"
    else:
        path = Path(where)
    assert says in spool_problem(path)
    with pytest.raises(InputError, match=f"mqtt.spool: .*{says}"):
        Spool(path, 1 << 20).open()


def test_a_disk_that_refuses_writes_loses_no_message(tmp_path: Path) -> None:
    """sqlite3 errors on write (disk full) keep the messages in memory; they go out, counted."""

    class FullSpool(Spool):
        refuse = True

        def put(self, items: list[tuple[str, bytes, bool]]) -> tuple[list[Row], list[int]]:
            if self.refuse:
                raise sqlite3.OperationalError("database or disk is full")
            return super().put(items)

    spool = FullSpool(tmp_path / "s.db", 1 << 20)
    sent: list[bytes] = []

    async def main() -> None:
        outbox = Outbox(spool)
        await outbox.open()
        mids = iter(range(1, 1000))

        def send(row: Row) -> int:
            sent.append(row.payload)
            return next(mids)

        outbox.attach(send)
        for i in range(5):
            outbox.submit("t", f"m{i}".encode())
        await asyncio.sleep(0.2)
        assert sent == [b"m0", b"m1", b"m2", b"m3", b"m4"] and outbox.errors == 5
        assert outbox.error == "cannot write the spool: database or disk is full"
        for mid in range(1, 6):
            assert outbox.acknowledged(mid)
        spool.refuse = False
        outbox.submit("t", b"m5")
        await asyncio.sleep(0.2)
        assert outbox.error == "" and sent[-1] == b"m5"
        await outbox.close()

    asyncio.run(main())


def test_a_spool_on_a_read_only_filesystem_is_named(tmp_path: Path) -> None:
    import subprocess

    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        assert spool_problem(mount / "spool.db") == f"{mount / 'spool.db'} is on a read-only filesystem"
        with pytest.raises(InputError, match="read-only filesystem"):
            Spool(mount / "spool.db", 1 << 20).open()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_acknowledgements_coming_one_by_one_are_deleted_in_few_transactions(tmp_path: Path) -> None:
    class Counting(Spool):
        def __init__(self, path: Path, max_bytes: int) -> None:
            super().__init__(path, max_bytes)
            self.acks: list[list[int]] = []

        def ack(self, ids: list[int]) -> None:
            self.acks.append(list(ids))
            super().ack(ids)

    async def go() -> None:
        spool = Counting(tmp_path / "s.db", 1 << 20)
        outbox = Outbox(spool, window=100)
        await outbox.open()
        mids = iter(range(1, 1000))
        outbox.attach(lambda row: next(mids))
        for i in range(20):
            outbox.submit("edged/d/events", f"m{i}".encode())
        await asyncio.sleep(0.2)
        assert outbox.sent == 20
        for mid in range(1, 21):  # the broker's PUBACKs, one at a time, a millisecond apart
            assert outbox.acknowledged(mid)
            await asyncio.sleep(0.001)
        await outbox.close()
        assert sorted(i for ids in spool.acks for i in ids) == list(range(1, 21))  # every row deleted...
        assert len(spool.acks) <= 2, spool.acks  # ...in one or two transactions, not twenty
        reopened = Spool(tmp_path / "s.db", 1 << 20)
        assert reopened.open() == []
        reopened.close()

    asyncio.run(go())


def test_a_message_submitted_while_acknowledgements_are_gathered_goes_out_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edged.publish.outbox.ACK_GATHER_S", 30.0)  # a wait no message must sit through

    async def go() -> None:
        outbox = Outbox(Spool(tmp_path / "s.db", 1 << 20))
        await outbox.open()
        sent: list[bytes] = []
        mids = iter(range(1, 1000))

        def send(row: Row) -> int:
            sent.append(row.payload)
            return next(mids)

        outbox.attach(send)
        outbox.submit("edged/d/events", b"first")
        await asyncio.sleep(0.2)
        assert sent == [b"first"] and outbox.acknowledged(1)  # the flush now waits for more acknowledgements
        await asyncio.sleep(0.1)
        outbox.submit("edged/d/events", b"second")
        await asyncio.sleep(0.2)
        assert sent == [b"first", b"second"]  # not after the 30 s
        assert outbox.acknowledged(2)
        await outbox.close()  # ends the wait for more acknowledgements: not after the 30 s either
        reopened = Spool(tmp_path / "s.db", 1 << 20)
        assert reopened.open() == []  # both deleted on the way out
        reopened.close()

    asyncio.run(go())
