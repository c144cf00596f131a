"""One message MQTT can never send (a topic with '+', as a label once made) must not block the queue: a spool from
an earlier run holds such a row in front of good ones; against a real mosquitto, the good ones are delivered, the
bad one is set aside (kept on disk), counted and alerted, and it stays so after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from edged.config.models import AlertsConfig, MqttConfig
from edged.publish.contract import Topics
from edged.publish.mqtt import MqttPublisher
from edged.publish.outbox import Outbox
from edged.publish.spool import Spool
from edged.telemetry.alerts import Alerts
from edged.testing.broker import Mosquitto
from tests.support.stats import pipeline
from tests.support.types import Subscribe


async def deliver(broker: Mosquitto, path: Path, submit: list[tuple[str, bytes]]) -> MqttPublisher:
    config = MqttConfig(host="127.0.0.1", port=broker.port, reconnect_min_s=1, reconnect_max_s=1)
    publisher = MqttPublisher(config, Topics("edged", "bad"), "edged-bad", Outbox(Spool(path, 1 << 20)))
    await publisher.start()
    try:
        for topic, payload in submit:
            publisher.outbox.submit(topic, payload, retain=True)
        deadline = time.monotonic() + 15
        while (publisher.outbox.pending or not publisher.connected) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await publisher.stop(timeout=2)
    return publisher


def test_an_unsendable_row_is_set_aside_and_the_rest_go_on(broker: Mosquitto, subscribe: Subscribe,
                                                           tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sub = subscribe(broker.port, "edged/#")
    path = tmp_path / "spool.db"
    first = asyncio.run(deliver(broker, path, [("edged/bad/street/all/per+son", b"1"),
                                               ("edged/bad/street/all/person", b"2"),
                                               ("edged/bad/street/all/per#son", b"3"),
                                               ("edged/bad/street/all/car", b"4")]))
    sub.wait_count("edged/bad/street/all/car", 1, timeout=10)
    got = {m.topic: m.text for m in sub.messages}
    assert got["edged/bad/street/all/person"] == "2" and got["edged/bad/street/all/car"] == "4"
    stats = first.stats()
    assert stats.spool.unsendable == 2 and "per#son" in stats.spool.unsendable_reason and stats.spool.pending == 0
    assert caplog.text.count("can never be sent") == 1  # logged once a minute, not per row
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        aside = sorted(t for (t,) in db.execute("SELECT topic FROM aside"))
    assert aside == ["edged/bad/street/all/per#son", "edged/bad/street/all/per+son"]

    alerts = Alerts(AlertsConfig(), "bad")
    from edged.pipeline.stats import Snapshot

    fired = alerts.evaluate({}, Snapshot(pipeline(), stats), 100.0)
    unsendable = [a for a in fired if a["alert"] == "publish_unsendable"]
    assert len(unsendable) == 1 and unsendable[0]["state"] == "firing" and unsendable[0]["value"] == 2

    # A restart: nothing of it is sent again, nothing blocks.
    second = asyncio.run(deliver(broker, path, [("edged/bad/street/all/bus", b"5")]))
    assert sub.wait_for(lambda m: m.topic == "edged/bad/street/all/bus", 10).text == "5"
    assert second.stats().spool.unsendable == 0 and second.stats().spool.pending == 0
