"""The publisher's figures: counters it keeps, and the typed snapshot telemetry, alerts, /healthz and /metrics
read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class PublishCounters:
    detections_sent: int = 0
    detections_dropped_offline: int = 0
    detections_dropped_backlog: int = 0
    connects: int = 0
    disconnects: int = 0


@dataclass(frozen=True)
class SpoolStats:
    pending: int
    bytes: int
    dropped: int
    sent: int
    acknowledged: int
    errors: int = 0  # messages the disk refused (they went on from memory)
    error: str = ""  # the spool's current write error, '' while it takes writes
    set_aside: str = ""  # a damaged spool moved aside at start, and why
    unsendable: int = 0  # messages MQTT can never send (set aside so the rest go on)
    unsendable_reason: str = ""


@dataclass(frozen=True)
class PublisherStats:
    """The publisher's typed snapshot: for telemetry, alerts, /healthz and /metrics."""

    where: str
    connected: bool
    detections_sent: int
    detections_dropped_offline: int
    detections_dropped_backlog: int
    reconnects: int
    spool: SpoolStats
    refused: tuple[tuple[str, int], ...] = ()  # (topic, count): QoS 1 publishes the broker refused (MQTT 5)
    refused_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"connected": self.connected, "detections_sent": self.detections_sent,
                "spool": asdict(self.spool),
                "detections_dropped_offline": self.detections_dropped_offline,
                "detections_dropped_backlog": self.detections_dropped_backlog, "reconnects": self.reconnects,
                "refused": dict(self.refused)}
