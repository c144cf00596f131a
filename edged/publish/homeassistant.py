"""Home Assistant MQTT discovery (``homeassistant.enabled``, on by default).

One Home Assistant device per edged device; its entities read edged's own topics
(no topic exists for Home Assistant alone):

- per camera: connectivity (the camera's status), processed frames a second
  (telemetry), for every zone and ``all`` and every label counted there a count
  sensor and an occupancy binary sensor (the retained count topic), line totals
  in and out, the latest snapshot per label as an image entity (the retained
  snapshot topic), and with ``mqtt.controls`` the detect and motion switches;
- per device: temperature, memory, CPU, throttled (Raspberry Pi throttle bits or
  edged's own governor slowing cameras), the engine in use, alerts firing.

Every entity is available while ``<prefix>/status`` is ``online``: edged's birth,
and its last will turns them all unavailable when it dies. Unique ids are built from
the device, camera, zone and label names, so they are the same in every run.

Discovery is published (QoS 1, retained) at start, again whenever Home Assistant
announces ``online`` on ``<discovery prefix>/status``, and as entities come and go:
a label counted for the first time adds its entities, a camera removed from the config
(SIGHUP) removes its own (an empty retained config). What edged published earlier
is learned from the broker itself (its retained configs under this device's node
id), so entities of a camera removed while edged was down go at the next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from edged import __version__
from edged.addresses import is_loopback
from edged.analytics.camera import Counted
from edged.config.models import Config
from edged.publish.contract import DEVICE_ONLINE, Topics, dumps

log = logging.getLogger(__name__)

DISCOVERY_S = 5.0  # how often discovery looks for entities that came or went

RESEND_S = 15.0  # discovery is sent again for Home Assistant's 'online' at most this often

_SLUG = re.compile(r"[^A-Za-z0-9_-]")


def _part(part: str, joined: bool = True) -> str:
    """One part of a discovery id ([A-Za-z0-9_-]). A part that had to change gets a short hash of itself, so two
    names that differ only in such characters stay apart; so does one that holds the separator '_' when it is
    ``joined`` to others, so the parts can be told apart."""
    clean = _SLUG.sub("_", part)
    if clean != part or (joined and "_" in part):
        clean += "_" + hashlib.sha1(part.encode()).hexdigest()[:6]
    return clean


def slug(*parts: str) -> str:
    """Parts joined with '_' as an MQTT discovery id: camera ``front`` with zone ``door_left`` and camera
    ``front_door`` with zone ``left`` are two ids, not one."""
    return "_".join(_part(part) for part in parts)


def node_id(device_id: str) -> str:
    """The discovery node id, as every release has made it (one part after the fixed 'edged', so it is
    unambiguous as it is)."""
    return f"edged_{_part(device_id, joined=False)}"


def _key(name: str) -> str:
    """A name as a Jinja string literal: JSON's quoting is Jinja's, with the characters themselves rather than
    \\u escapes (outside the BMP JSON writes a surrogate pair, which Jinja does not join back into one)."""
    return json.dumps(name, ensure_ascii=False)


class Publisher(Protocol):
    """The MQTT publisher, as discovery uses it (all on the event loop)."""

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool: ...

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes, bool], None]) -> None: ...


def configuration_url(config: Config, port: int | None) -> str | None:
    """The web page's address as Home Assistant should link it: the configured one, else the listen address
    when it is reachable from other machines (a loopback address is not)."""
    ha = config.homeassistant
    if ha.configuration_url:
        return ha.configuration_url
    listen = config.http.listen
    if not listen or not config.http.page or is_loopback(listen) or port is None:
        return None
    host = listen.rpartition(":")[0]
    if host in ("0.0.0.0", "[::]", "::", ""):
        import socket

        host = socket.getfqdn()
    return f"http://{host}:{port}/"


class Discovery:
    def __init__(self, *, config: Config, topics: Topics, publisher: Publisher,
                 counted: Callable[[], Mapping[str, Counted]], engine: str, url: str | None) -> None:
        self.config = config
        self.topics = topics
        self.publisher = publisher
        self.counted = counted  # camera -> what it counts now (the running cameras)
        self.engine = engine
        self.url = url
        self.prefix = config.homeassistant.prefix
        self.node = node_id(config.device_id)
        self._sent: dict[str, bytes] = {}
        self.published = 0
        self.removed = 0
        self._resent_at = float("-inf")  # monotonic: the last resend for Home Assistant's 'online'
        self._asked = 0  # 'online' messages since then
        self._later: asyncio.TimerHandle | None = None

    # -- the event loop ------------------------------------------------------------------

    def start(self) -> None:
        self._sent = {}
        self.refresh()
        self.publisher.subscribe(f"{self.prefix}/status", self._ha_status)
        self.publisher.subscribe(f"{self.prefix}/+/{self.node}/+/config", self._retained)
        log.info("Home Assistant: discovery of %d entities under %s/.../%s", len(self._sent), self.prefix, self.node)

    async def run(self, period_s: float = DISCOVERY_S) -> None:
        """New labels counted, cameras added or removed: their entities follow within ``period_s``."""
        while True:
            await asyncio.sleep(period_s)
            self.refresh()

    def refresh(self) -> None:
        """Publish configs that are new or changed, clear those no longer wanted."""
        wanted = self.entities()
        for topic, payload in wanted.items():
            if self._sent.get(topic) != payload:
                self._send(topic, payload)
        for topic in sorted(set(self._sent) - set(wanted)):
            self._clear(topic)
        self._sent = dict(wanted)

    def resend(self) -> None:
        for topic, payload in self.entities().items():
            self._send(topic, payload)

    def _ha_status(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Home Assistant's birth: discovery again, at most once per ``RESEND_S`` (a flood of ``online`` is one
        resend now and one at the end of the window, with one log line each)."""
        if payload.strip() != b"online":
            return
        now = time.monotonic()
        self._asked += 1
        if now - self._resent_at >= RESEND_S:
            self._resend_now(now)
        elif self._later is None:
            self._later = asyncio.get_running_loop().call_later(RESEND_S - (now - self._resent_at),
                                                                self._resend_later)

    def _resend_later(self) -> None:
        self._later = None
        self._resend_now(time.monotonic())

    def _resend_now(self, now: float) -> None:
        asked, self._asked, self._resent_at = self._asked, 0, now
        log.info("Home Assistant came online: discovery sent again%s",
                 f" (for {asked} 'online' messages since the last resend)" if asked > 1 else "")
        self.resend()

    def stop(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None

    def _retained(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """A config under our node id, on the broker: one from an earlier run that is no longer wanted goes."""
        if payload and topic not in self._sent:
            self._clear(topic)

    def _send(self, topic: str, payload: bytes) -> None:
        self.publisher.publish(topic, payload, 1, True)
        self._sent[topic] = payload
        self.published += 1

    def _clear(self, topic: str) -> None:
        self.publisher.publish(topic, b"", 1, True)
        self._sent.pop(topic, None)
        self.removed += 1

    # -- the entities ----------------------------------------------------------------------

    def entities(self) -> dict[str, bytes]:
        """Discovery topic -> config, for the device and every running camera."""
        out: dict[str, bytes] = {}
        device = self._device()
        for component, key, entity in self._device_entities():
            out.update(self._entity(component, key, entity, device))
        for camera, counted in sorted(self.counted().items()):
            for component, key, entity in self._camera_entities(camera, counted):
                out.update(self._entity(component, (camera, *key), entity, device))
        return out

    def _entity(self, component: str, key: tuple[str, ...], entity: dict[str, Any],
                device: dict[str, Any]) -> dict[str, bytes]:
        object_id = slug(*key)
        status = self.topics.status
        config = {
            **entity,
            "unique_id": slug("edged", self.config.device_id, *key),
            "availability": [{"topic": status, "value_template": "{{ 'online' if value == 'online' else 'offline' }}",
                              "payload_available": DEVICE_ONLINE, "payload_not_available": "offline"}],
            "device": device,
            "origin": {"name": "edged", "sw_version": __version__},
        }
        return {f"{self.prefix}/{component}/{self.node}/{object_id}/config": dumps(config)}

    def _device(self) -> dict[str, Any]:
        device: dict[str, Any] = {"identifiers": [self.node], "name": f"edged {self.config.device_id}",
                                  "manufacturer": "edged", "model": f"edged ({self.engine})",
                                  "sw_version": __version__}
        if self.url:
            device["configuration_url"] = self.url
        return device

    def _device_entities(self) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
        telemetry = self.topics.telemetry
        system = "value_json.system"
        return [
            ("sensor", ("temperature",), {
                "name": "Temperature", "state_topic": telemetry, "device_class": "temperature",
                "unit_of_measurement": "°C", "state_class": "measurement",
                "value_template": f"{{{{ {system}.temp_c }}}}"}),
            ("sensor", ("memory",), {
                "name": "Memory used", "state_topic": telemetry, "unit_of_measurement": "%",
                "state_class": "measurement", "icon": "mdi:memory",
                "value_template": f"{{{{ {system}.memory.used_pct if {system}.memory.used_pct is defined "
                                  f"else None }}}}"}),
            ("sensor", ("cpu",), {
                "name": "CPU", "state_topic": telemetry, "unit_of_measurement": "%", "state_class": "measurement",
                "icon": "mdi:cpu-64-bit", "value_template": f"{{{{ {system}.cpu_pct.cpu|default(None) }}}}"}),
            ("binary_sensor", ("throttled",), {
                "name": "Throttled", "state_topic": telemetry, "device_class": "problem",
                "value_template": f"{{{{ 'ON' if ({system}.throttle and {system}.throttle.now) or "
                                  f"value_json.governor.level|default(0) > 0 else 'OFF' }}}}"}),
            ("sensor", ("engine",), {
                "name": "Engine", "state_topic": telemetry, "icon": "mdi:chip", "entity_category": "diagnostic",
                "value_template": "{{ value_json.engine.backend }} {{ value_json.engine.device|default('') }} "
                                  "{{ value_json.engine.precision|default('') }}"}),
            ("sensor", ("alerts",), {
                "name": "Alerts firing", "state_topic": telemetry, "icon": "mdi:alert", "state_class": "measurement",
                "value_template": "{{ value_json.alerts|length }}", "json_attributes_topic": telemetry,
                "json_attributes_template": "{{ {'alerts': value_json.alerts}|tojson }}"}),
        ]

    def _camera_entities(self, camera: str, counted: Counted) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
        cam = _key(camera)
        out: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
            ("binary_sensor", ("status",), {
                "name": f"{camera} camera", "state_topic": self.topics.camera_status(camera),
                "device_class": "connectivity",
                "value_template": "{{ 'ON' if value_json.state == 'online' else 'OFF' }}",
                "json_attributes_topic": self.topics.camera_status(camera),
                "json_attributes_template": "{{ {'state': value_json.state, 'reason': value_json.reason}|tojson }}"}),
            ("sensor", ("fps",), {
                "name": f"{camera} detection rate", "state_topic": self.topics.telemetry,
                "unit_of_measurement": "fps", "state_class": "measurement", "icon": "mdi:speedometer",
                "value_template": f"{{{{ value_json.cameras[{cam}].processed_fps if {cam} in value_json.cameras "
                                  f"else None }}}}"}),
        ]
        for zone, labels in sorted(counted.zones.items()):
            where = "" if zone == "all" else f"{zone} "
            for label in sorted(labels):
                topic = self.topics.count(camera, zone, label)
                out.append(("sensor", (zone, label, "count"), {
                    "name": f"{camera} {where}{label} count", "state_topic": topic, "state_class": "measurement",
                    "icon": "mdi:counter"}))
                out.append(("binary_sensor", (zone, label, "occupancy"), {
                    "name": f"{camera} {where}{label} occupancy", "state_topic": topic, "device_class": "occupancy",
                    "value_template": "{{ 'ON' if value|int(0) > 0 else 'OFF' }}"}))
            if zone == "all":
                continue
            for label in sorted(labels):
                topic = self.topics.stays(camera, zone, label, "dwell")
                out.append(("sensor", (zone, label, "dwell"), {
                    "name": f"{camera} {zone} {label} time in zone", "state_topic": topic,
                    "device_class": "duration", "unit_of_measurement": "s", "state_class": "measurement",
                    "value_template": "{{ value_json.median_s }}", "json_attributes_topic": topic}))
                if zone in counted.speeds:
                    topic = self.topics.stays(camera, zone, label, "speed")
                    out.append(("sensor", (zone, label, "speed"), {
                        "name": f"{camera} {zone} {label} speed", "state_topic": topic, "device_class": "speed",
                        "unit_of_measurement": "km/h", "state_class": "measurement",
                        "value_template": "{{ value_json.median_kmh }}", "json_attributes_topic": topic}))
        for line, labels in sorted(counted.lines.items()):
            for label in sorted(labels):
                for direction in ("in", "out"):
                    out.append(("sensor", (line, label, direction), {
                        "name": f"{camera} {line} {label} {direction}", "state_class": "total_increasing",
                        "state_topic": self.topics.crossings(camera, line, label, direction), "icon": "mdi:counter"}))
        for label in sorted(counted.looked):
            topic = self.topics.look(camera, label)
            out.append(("sensor", (label, "look"), {
                "name": f"{camera} {label} second look", "state_topic": topic, "icon": "mdi:tag-search",
                "value_template": "{{ value_json.sub_label.label if value_json.sub_label is defined and "
                                  "value_json.sub_label.label else ('undecided' if value_json.sub_label is defined "
                                  "else (value_json.attributes.colors|join('/') if value_json.attributes is defined "
                                  "else 'unknown')) }}",
                "json_attributes_topic": topic}))
        if self.config.snapshots.enabled:
            for label in sorted(counted.labels):
                out.append(("image", (label, "snapshot"), {
                    "name": f"{camera} {label} snapshot", "content_type": "image/jpeg",
                    "image_topic": f"{self.topics.base}/{camera}/{label}/snapshot"}))
        if self.config.mqtt.controls:
            for setting, name in (("detect", "detection"), ("motion", "motion gate")):
                out.append(("switch", (setting,), {
                    "name": f"{camera} {name}", "icon": "mdi:motion-sensor" if setting == "motion" else "mdi:eye",
                    "command_topic": f"{self.topics.base}/{camera}/{setting}/set",
                    "state_topic": f"{self.topics.base}/{camera}/{setting}/state",
                    "payload_on": "ON", "payload_off": "OFF"}))
        return out
