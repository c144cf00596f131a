"""``edged fleet``: every edged behind one broker, from what they keep retained there.

Each edged publishes a retained ``<prefix>/<device>/status`` (online, or its last will
offline, or stopped) and a retained ``<prefix>/<device>/telemetry``; on a central broker
that the devices' local brokers bridge to, those are the fleet's state. ``edged fleet``
subscribes to both for ``wait_s``, then prints one line per device: its status, cameras
online of all, detections a second, temperature, alerts firing, and how old its
telemetry is.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edged.errors import EdgedError, InputError


@dataclass
class Device:
    name: str
    status: str = "?"
    telemetry: dict[str, Any] = field(default_factory=dict)

    def row(self, now: float) -> dict[str, Any]:
        t = self.telemetry
        cameras = t.get("cameras", {})
        online = sum(1 for c in cameras.values() if c.get("state") == "online")
        rates = [c.get("processed_fps") for c in cameras.values() if isinstance(c.get("processed_fps"), (int, float))]
        system = t.get("system", {})
        return {"device": self.name, "status": self.status, "cameras": f"{online}/{len(cameras)}" if cameras else "-",
                "fps": round(sum(rates), 1) if rates else None, "temp_c": system.get("temp_c"),
                "alerts": list(t.get("alerts", [])),
                "telemetry_age_s": round(now - float(t["ts"]), 1) if "ts" in t else None}


def read_fleet(*, host: str, port: int, prefix: str = "edged", username: str | None = None,
               password: str | None = None, ca: Path | None = None, wait_s: float = 2.0) -> list[dict[str, Any]]:
    devices: dict[str, Device] = {}
    lock = threading.Lock()
    connected = threading.Event()
    failure: list[str] = []

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            failure.append(str(reason))
        else:
            client.subscribe([(f"{prefix}/+/status", 1), (f"{prefix}/+/telemetry", 0)])
        connected.set()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 3 or not msg.payload:
            return
        with lock:
            device = devices.setdefault(parts[1], Device(parts[1]))
            if parts[2] == "status":
                device.status = msg.payload.decode("utf-8", "replace")
            else:
                with contextlib.suppress(ValueError):  # not edged's telemetry: the device shows without it
                    device.telemetry = json.loads(msg.payload)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"edged-fleet-{time.time_ns()}")
    if username:
        client.username_pw_set(username, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise EdgedError(f"cannot reach the broker at {host}:{port}: {exc.strerror or exc}") from None
    client.loop_start()
    try:
        if not connected.wait(10):
            raise EdgedError(f"the broker at {host}:{port} did not answer within 10 s")
        if failure:
            raise InputError(f"the broker at {host}:{port} refused the connection: {failure[0]}")
        time.sleep(wait_s)
    finally:
        client.disconnect()
        client.loop_stop()
    now = time.time()
    with lock:
        return [devices[name].row(now) for name in sorted(devices)]


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no edged devices on this broker (nothing retained under <prefix>/+/status)"
    head = ["device", "status", "cameras", "fps", "temp_c", "telemetry_age_s", "alerts"]
    cells = [[str(r[k] if r[k] is not None else "-") if k != "alerts" else (", ".join(r[k]) or "-") for k in head]
             for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
    return "\n".join(lines)
