"""A fleet behind one broker: three edged daemons, each on its own local mosquitto bridged to a central one
(the configs/examples/fleet/mosquitto-bridge.conf lines), the central broker down for a minute. Every QoS 1
event reaches a subscriber on the central broker; `edged fleet` lists the devices."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edged.testing.broker import Mosquitto, free_port
from edged.testing.subscriber import Subscriber
from tests.support.types import MakeDaemon, Media

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "configs" / "examples" / "fleet" / "mosquitto-bridge.conf"
DEVICES = ("site-a", "site-b", "site-c")
OUTAGE_S = 60.0


def bridge_lines(central_port: int, device: str) -> str:
    """The example's lines from the bridge on, for this device and central broker (listener and persistence are
    the test broker's own)."""
    text = EXAMPLE.read_text().replace("CENTRAL_HOST:1883", f"127.0.0.1:{central_port}").replace("DEVICE_ID", device)
    keep = [line for line in text.splitlines() if line.strip() and not line.startswith("#")
            and not line.startswith(("listener", "persistence", "autosave_interval"))]
    return "\n".join(keep)


def events(sub: Subscriber) -> dict[tuple[str, str], list[int]]:
    """(device, run) -> the event numbers received, duplicates included."""
    out: dict[tuple[str, str], list[int]] = {}
    for message in sub.messages:
        if message.topic.endswith("/events"):
            body = json.loads(message.payload)
            out.setdefault((body["device"], body["run"]), []).append(int(body["seq"]))
    return out


def test_a_minute_without_the_central_broker_loses_no_event(tmp_path: Path, media: Media,
                                                            daemon: MakeDaemon) -> None:
    central = Mosquitto(tmp_path / "central", port=free_port(), persistence=True).start()
    locals_: list[Mosquitto] = []
    try:
        for device in DEVICES:
            locals_.append(Mosquitto(tmp_path / f"local-{device}", port=free_port(), persistence=True,
                                     extra=bridge_lines(central.port, device)).start())
        sub = Subscriber(central.port, "edged/+/+/events", client_id="fleet-audit", persistent=True)
        # What each edged sent: seen on its own broker, which never goes away.
        at_home = [Subscriber(local.port, "edged/+/+/events") for local in locals_]
        procs = []
        for device, local in zip(DEVICES, locals_):
            procs.append(daemon({
                "device_id": device, "mqtt": {"host": "127.0.0.1", "port": local.port}, "telemetry": {"interval_s": 2},
                "engine": {"model": "yolov3-tiny"}, "homeassistant": {"enabled": False},
                "events": {"update_s": 2}, "snapshots": {"enabled": False},
                "cameras": {"street": {"url": str(media["street.mp4"]), "loop": True, "fps": 4}},
            }, name=device))
        deadline = time.monotonic() + 90
        while {d for d, _ in events(sub)} != set(DEVICES):
            assert time.monotonic() < deadline, f"events from {sorted({d for d, _ in events(sub)})} only"
            time.sleep(0.5)
        listing = subprocess.run([sys.executable, "-m", "edged", "fleet", "--port", str(central.port), "--json",
                                  "--wait", "3"], capture_output=True, text=True, timeout=60, check=True)
        rows = {r["device"]: r for r in json.loads(listing.stdout)}
        shown = subprocess.run([sys.executable, "-m", "edged", "fleet", "--port", str(central.port), "--wait", "2"],
                               capture_output=True, text=True, timeout=60, check=True).stdout
        assert all(device in shown for device in DEVICES)
        print(shown)
        assert set(rows) == set(DEVICES) and all(r["status"] == "online" and r["cameras"] == "1/1"
                                                 for r in rows.values()), rows

        # The central broker goes away for a minute; the devices keep detecting and their brokers keep the events.
        central.stop()
        time.sleep(OUTAGE_S)
        central.start()
        back = time.monotonic()
        time.sleep(10.0)
        for proc in procs:
            proc.stop()  # SIGTERM: the last objects end, the last events go out
        # The bridges retry with backoff (restart_timeout 2 30): give them until everything sent has arrived.
        deadline = time.monotonic() + 90
        while True:
            sent_events: dict[tuple[str, str], list[int]] = {}
            for home in at_home:
                sent_events.update(events(home))
            received = events(sub)
            missing = sum(len(set(n) - set(received.get(k, []))) for k, n in sent_events.items())
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        caught_up_s = time.monotonic() - back
        for home in at_home:
            home.close()
        sub.close()
    finally:
        for local in locals_:
            local.stop()
        central.stop()

    sent = lost = duplicates = 0
    assert {d for d, _ in sent_events} == set(DEVICES)
    for key, numbers in sent_events.items():
        assert sorted(set(numbers)) == list(range(1, max(numbers) + 1)), f"{key}: edged's own numbering has gaps"
        got = received.get(key, [])
        sent += len(set(numbers))
        lost += len(set(numbers) - set(got))
        duplicates += len(got) - len(set(got))
    print(f"fleet: {sent} QoS 1 events sent by {len(DEVICES)} devices across a {OUTAGE_S:g} s outage of the "
          f"central broker; received {sent - lost} distinct, {lost} lost, {duplicates} duplicates; everything "
          f"arrived {caught_up_s:.0f} s after the central broker was back")
    assert lost == 0
    assert sent > 3 * 20  # events flowed during the outage too (update_s: 2)


def test_fleet_lists_every_device_whatever_their_retained_messages_hold(broker: Mosquitto) -> None:
    """One device's bad retained telemetry once ended `edged fleet` with 'internal error' (rc 1); deep JSON killed
    paho's thread so later devices lost their telemetry; escape sequences reached the terminal."""
    hostile = {"a-list": b"[1,2,3]", "b-ts": b'{"ts":"abc"}', "c-null": b'{"ts":null}', "d-cams": b'{"cameras":[1]}',
               "e-system": b'{"system":null}', "f-deep": b"[" * 100_000 + b"]" * 100_000}
    for name, payload in hostile.items():
        broker.publish(f"edged/{name}/status", "online", retain=True)
        broker.publish(f"edged/{name}/telemetry", payload, retain=True)
    broker.publish("edged/g-evil/status", "online\x1b[2J\nforged row " + "x" * 100_000, retain=True)
    good = {"ts": time.time(), "cameras": {"gate": {"state": "online", "processed_fps": 5.0}},
            "system": {"temp_c": 48.0}, "alerts": []}
    broker.publish("edged/z-good/status", "online", retain=True)
    broker.publish("edged/z-good/telemetry", json.dumps(good), retain=True)

    shown = subprocess.run([sys.executable, "-m", "edged", "fleet", "--port", str(broker.port), "--wait", "2"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [*sorted(hostile), "g-evil", "z-good"]
    assert "\x1b" not in shown.stdout and max(len(line) for line in lines) < 400
    good_row = next(line for line in lines if line.startswith("z-good"))
    assert good_row.split()[1:5] == ["online", "1/1", "5.0", "48.0"]  # after the deep JSON: still read
    assert "telemetry is not JSON" in next(line for line in lines if line.startswith("f-deep"))
    listing = subprocess.run([sys.executable, "-m", "edged", "fleet", "--port", str(broker.port), "--json",
                              "--wait", "2"], capture_output=True, text=True, timeout=60, check=False)
    assert listing.returncode == 0 and len(json.loads(listing.stdout)) == len(hostile) + 2
