"""FrameSlot: latest frame wins, drops are counted, a leased frame is never overwritten."""

from __future__ import annotations

import threading
import time

import numpy as np

from edged.sources.slot import FrameInfo, FrameSlot


def write(slot: FrameSlot, value: int, seq: int) -> np.ndarray:
    buf = slot.begin_write(4, 6)
    buf[:] = value
    slot.commit(FrameInfo(seq, time.time(), time.monotonic(), 6, 4))
    return buf


def test_latest_frame_wins_and_drops_are_counted() -> None:
    slot = FrameSlot("cam")
    for seq in range(1, 4):
        write(slot, seq, seq)
    lease = slot.lease()
    assert lease is not None and lease.info.seq == 3 and (lease.image == 3).all()
    assert slot.dropped == 2 and slot.committed == 3 and slot.leased == 1
    assert slot.lease() is None  # nothing fresh until the next commit
    lease.release()


def test_a_leased_frame_is_never_written() -> None:
    slot = FrameSlot("cam")
    write(slot, 1, 1)
    lease = slot.lease()
    assert lease is not None
    for seq in range(2, 6):
        write(slot, seq, seq)
    assert (lease.image == 1).all()  # untouched while leased
    lease.release()
    newest = slot.lease()
    assert newest is not None and newest.info.seq == 5
    assert slot.dropped == 3


def test_buffers_are_reused_not_reallocated() -> None:
    slot = FrameSlot("cam")
    seen = set()
    for seq in range(20):
        seen.add(id(write(slot, seq, seq)))
        with slot.leased_frame():
            pass
    assert len(seen) <= 2  # two buffers at most, for the life of the camera


def test_size_change_reallocates_once() -> None:
    slot = FrameSlot("cam")
    write(slot, 1, 1)
    buf = slot.begin_write(8, 8)
    assert buf.shape == (8, 8, 3)
    slot.abort_write()


def test_pull_mode_waits_for_the_consumer() -> None:
    slot = FrameSlot("file", pull=True)
    write(slot, 1, 1)
    assert slot.wait_consumed(0.01) is False
    consumed = threading.Event()

    def consume() -> None:
        time.sleep(0.05)
        with slot.leased_frame() as lease:
            assert lease is not None
        consumed.set()

    threading.Thread(target=consume).start()
    assert slot.wait_consumed(2.0) is True
    consumed.wait(2)
    assert slot.dropped == 0


def test_listener_is_told_of_every_commit() -> None:
    slot = FrameSlot("cam")
    calls = []
    slot.set_listener(lambda: calls.append(1))
    write(slot, 1, 1)
    write(slot, 2, 2)
    assert len(calls) == 2
