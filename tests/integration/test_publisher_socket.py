"""The publisher's connection to a real broker sends each message when it is written: TCP_NODELAY on paho's
socket (paho does not set it; with Nagle's algorithm a message written while the previous one was not yet
acknowledged waited for the broker's delayed ACK: 9-10 ms at p95 from the daemon's payload to a subscriber in
``edged bench``'s rtsp-1 case, 1.2-1.3 ms with it)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from edged.config.models import MqttConfig
from edged.publish.contract import Topics
from edged.publish.mqtt import MqttPublisher
from edged.publish.outbox import Outbox
from edged.publish.spool import Spool
from edged.testing.broker import Mosquitto


async def options(broker: Mosquitto, path: Path) -> list[int]:
    config = MqttConfig(host="127.0.0.1", port=broker.port, reconnect_min_s=1, reconnect_max_s=1)
    publisher = MqttPublisher(config, Topics("edged", "sock"), "edged-sock", Outbox(Spool(path, 1 << 20)))
    await publisher.start()
    found = []
    try:
        for _ in range(2):  # the first connection, then one made again after the broker dropped it
            deadline = time.monotonic() + 15
            while not publisher.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            client = publisher._client
            assert client is not None and publisher.connected
            sock = client.socket()
            assert isinstance(sock, socket.socket)
            found.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            sock.shutdown(socket.SHUT_RDWR)  # as a broker that goes away: paho connects again
            deadline = time.monotonic() + 5
            while publisher.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    finally:
        await publisher.stop(timeout=2)
    return found


def test_the_publisher_s_socket_sends_without_delay_on_every_connection(broker: Mosquitto, tmp_path: Path) -> None:
    assert asyncio.run(options(broker, tmp_path / "spool.db")) == [1, 1]
