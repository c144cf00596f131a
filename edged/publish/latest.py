"""Detections, latest wins per camera: at most ``max_pending`` messages per camera sit in paho's queue; a newer
one replaces the one parked behind them (the replaced one counted as dropped); while the broker is away they are
dropped and counted, not queued. Called from the scheduler's thread and, when paho has written one, from paho's:
its bookkeeping sits behind one lock and never touches the event loop."""

from __future__ import annotations

import threading

import paho.mqtt.client as paho

from edged.publish.contract import Topics
from edged.publish.stats import PublishCounters


class LatestDetections:
    def __init__(self, topics: Topics, qos: int, max_pending: int, counters: PublishCounters) -> None:
        self.topics, self.qos, self.max_pending, self.counters = topics, qos, max_pending, counters
        self._lock = threading.Lock()  # the next three and the detection counters
        self._pending: dict[str, int] = {}  # camera -> detections handed to paho, not yet written
        self._parked: dict[str, bytes] = {}  # camera -> newest detections waiting their turn
        self._mids: dict[int, str] = {}  # detections mid -> camera

    def publish(self, client: paho.Client | None, camera: str, payload: bytes) -> None:
        """``client``: None while not connected."""
        with self._lock:
            if client is None:
                self.counters.detections_dropped_offline += 1
                return
            if self._pending.get(camera, 0) >= self.max_pending:
                if camera in self._parked:
                    self.counters.detections_dropped_backlog += 1
                self._parked[camera] = payload
                return
            self._send(client, camera, payload)

    def _send(self, client: paho.Client, camera: str, payload: bytes) -> None:
        """Hand one detections message to paho (the lock is held)."""
        info = client.publish(self.topics.detections(camera), payload, qos=self.qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.counters.detections_dropped_offline += 1
            return
        self._mids[info.mid] = camera
        self._pending[camera] = self._pending.get(camera, 0) + 1

    def sent(self, mid: int, client: paho.Client | None) -> bool:
        """paho wrote (QoS 0) or the broker took (QoS 1) message ``mid``; False: not a detections message. The
        camera's parked message goes next (``client``: None while not connected)."""
        with self._lock:
            camera = self._mids.pop(mid, None)
            if camera is None:
                return False
            self.counters.detections_sent += 1
            self._pending[camera] = max(0, self._pending.get(camera, 0) - 1)
            parked = self._parked.pop(camera, None)
            if parked is not None and client is not None:
                self._send(client, camera, parked)
            return True

    def reset(self) -> None:
        """paho discards unsent QoS 0 packets on reconnect; their callbacks never come."""
        with self._lock:
            self.counters.detections_dropped_offline += len(self._parked)
            self._pending.clear()
            self._parked.clear()
            self._mids.clear()
