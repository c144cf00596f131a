"""Messages handed from the scheduler's thread to the event loop: one wake-up carries every message that came
while it was waiting, in order."""

from __future__ import annotations

import asyncio
import threading

from edged.publish.handoff import LoopHandoff


def test_a_burst_is_one_wakeup_and_keeps_its_order() -> None:
    async def main() -> tuple[list[tuple[str, bytes, bool]], int]:
        loop = asyncio.get_running_loop()
        taken: list[tuple[str, bytes, bool]] = []
        handoff = LoopHandoff(loop.call_soon_threadsafe, lambda t, p, r: taken.append((t, p, r)))

        def frame() -> None:  # the scheduler's thread: a frame's events and counts
            for index in range(5):
                handoff.put(f"t/{index}", b"x", index % 2 == 0)

        thread = threading.Thread(target=frame)
        thread.start()
        thread.join()
        await asyncio.sleep(0.05)
        first = handoff.wakeups
        thread = threading.Thread(target=lambda: handoff.put("t/5", b"y", False))
        thread.start()
        thread.join()
        await asyncio.sleep(0.05)
        assert handoff.wakeups == first + 1  # a later message wakes the loop again
        return taken, first

    taken, wakeups = asyncio.run(main())
    assert wakeups == 1
    assert [t for t, _, _ in taken] == [f"t/{i}" for i in range(6)] and taken[0][2] and not taken[1][2]
