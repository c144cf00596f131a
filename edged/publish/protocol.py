"""Which MQTT version to speak to a broker (``mqtt.protocol``), as data: no threads, no sockets.

``auto`` tries MQTT 5 first. A broker that refuses it as an unsupported protocol version, or closes the
connection on the CONNECT without any CONNACK (RabbitMQ 3.10's MQTT plugin does that), is tried on 3.1.1.
Until one version has been accepted the two alternate, the first switch at once and later ones after a
backoff (a broker that closes every CONNECT is not hammered); once one is accepted it is kept until edged
restarts. ``5`` and ``3.1.1`` never switch.
"""

from __future__ import annotations

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion

NAMES = {paho.MQTTv5: "MQTT 5", paho.MQTTv311: "MQTT 3.1.1"}


class ProtocolChoice:
    def __init__(self, setting: str, backoff_min_s: float = 1.0, backoff_max_s: float = 30.0) -> None:
        self.auto = setting == "auto"
        self.current: MQTTProtocolVersion = paho.MQTTv311 if setting == "3.1.1" else paho.MQTTv5
        self.settled = not self.auto
        self.switches = 0
        self._backoff = (backoff_min_s, backoff_max_s)

    @property
    def name(self) -> str:
        return NAMES[self.current]

    def rejected(self) -> float | None:
        """The broker refused or closed this version's CONNECT: None to retry as configured, else the delay (s)
        before connecting again on the other version, which is now ``current``."""
        if self.settled:
            return None
        self.switches += 1
        self.current = paho.MQTTv311 if self.current == paho.MQTTv5 else paho.MQTTv5
        low, high = self._backoff
        return 0.0 if self.switches == 1 else min(high, low * 2 ** (self.switches - 2))

    def accepted(self) -> str:
        """The broker accepted ``current``: keep it. Returns the one line worth logging ('' when nothing changed)."""
        if self.settled:
            return ""
        self.settled = True
        if self.current == paho.MQTTv5:
            return ""
        return ("speaking MQTT 3.1.1: the broker closed or refused an MQTT 5 CONNECT (mqtt.protocol: auto); kept until "
                "edged restarts, and a publish its ACL refuses cannot be told from one it took")
