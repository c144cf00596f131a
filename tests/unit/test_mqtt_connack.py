"""A broker that takes the connection and never answers CONNECT: the publisher starts again instead of waiting."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from edged.config.models import MqttConfig
from edged.publish import mqtt
from edged.publish.contract import Topics
from edged.publish.mqtt import MqttPublisher
from edged.publish.outbox import Outbox
from edged.publish.spool import Spool


def test_a_silent_broker_is_connected_to_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(mqtt, "CONNACK_S", 1.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def hold() -> None:  # take every connection, read nothing, answer nothing
        server.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    config = MqttConfig(host="127.0.0.1", port=server.getsockname()[1], reconnect_min_s=1, reconnect_max_s=1)

    async def main() -> None:
        publisher = MqttPublisher(config, Topics("edged", "silent"), "edged-silent",
                                  Outbox(Spool(tmp_path / "spool.db", 1 << 20)))
        await publisher.start()
        try:
            deadline = time.monotonic() + 6
            while len(accepted) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            await publisher.stop(timeout=1)

    asyncio.run(main())
    done.set()
    holder.join(2)
    assert len(accepted) >= 2, "the publisher kept waiting on the first connection"
    assert any("did not answer within 1 s" in r.getMessage() for r in caplog.records)
    for conn in accepted:
        conn.close()
    server.close()
