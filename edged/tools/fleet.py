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
import math
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edged.errors import EdgedError, InputError

MAX_PAYLOAD = 256 * 1024  # a telemetry message larger than this is not edged's: shown as such, not parsed
MAX_STATUS = 64  # characters of a status kept
CELL = 40  # characters of a table cell shown


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class Device:
    """One device as the broker keeps it. Whatever its retained messages hold, it becomes a row: what is not
    edged's telemetry is marked (``note``), never an error for the whole listing."""

    name: str
    status: str = "?"
    telemetry: Any = field(default_factory=dict)
    note: str = ""  # why its telemetry could not be read

    def take_status(self, payload: bytes) -> None:
        self.status = payload[:MAX_STATUS * 4].decode("utf-8", "replace")[:MAX_STATUS]

    def take_telemetry(self, payload: bytes) -> None:
        if len(payload) > MAX_PAYLOAD:
            self.telemetry, self.note = {}, f"telemetry of {len(payload)} bytes is not edged's"
            return
        try:
            self.telemetry, self.note = json.loads(payload), ""
        except (ValueError, RecursionError):
            self.telemetry, self.note = {}, "telemetry is not JSON"

    def row(self, now: float) -> dict[str, Any]:
        t = self.telemetry if isinstance(self.telemetry, dict) else {}
        note = self.note or ("" if isinstance(self.telemetry, dict) else "telemetry is not a JSON object")
        cameras = t.get("cameras", {})
        if not isinstance(cameras, dict):
            cameras, note = {}, note or "telemetry's cameras are not an object"
        states = [c for c in cameras.values() if isinstance(c, dict)]
        online = sum(1 for c in states if c.get("state") == "online")
        rates = [r for r in (_number(c.get("processed_fps")) for c in states) if r is not None]
        found = t.get("system")
        system: dict[str, Any] = found if isinstance(found, dict) else {}
        alerts = t.get("alerts", [])
        ts = _number(t.get("ts"))
        return {"device": self.name, "status": self.status, "cameras": f"{online}/{len(cameras)}" if cameras else "-",
                "fps": round(sum(rates), 1) if rates else None, "temp_c": _number(system.get("temp_c")),
                "alerts": [str(a) for a in alerts] if isinstance(alerts, list) else [],
                "telemetry_age_s": round(now - ts, 1) if ts is not None else None, "note": note}


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
        with lock, contextlib.suppress(Exception):  # one device's message never stops paho's thread or the rest
            device = devices.setdefault(parts[1], Device(parts[1]))
            if parts[2] == "status":
                device.take_status(bytes(msg.payload))
            else:
                device.take_telemetry(bytes(msg.payload))

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


def cell(value: Any, width: int = CELL) -> str:
    """Printable on a terminal: no control characters (an escape sequence, a newline), at most ``width`` long."""
    text = str(value)
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text[:width * 2])
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no edged devices on this broker (nothing retained under <prefix>/+/status)"
    head = ["device", "status", "cameras", "fps", "temp_c", "telemetry_age_s", "alerts", "note"]
    cells = [[cell(r[k] if r[k] is not None and r[k] != "" else "-") if k != "alerts" else
              cell(", ".join(r[k]) or "-") for k in head] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)
