"""Controls over MQTT (``mqtt.controls``, off by default): switch a camera's detection or its motion gate.

``<prefix>/<camera>/detect/set`` and ``<prefix>/<camera>/motion/set`` take ``ON`` or
``OFF`` (what Home Assistant's MQTT switch sends); edged answers on the retained
``.../state``. Anything else on those topics (another payload, an unknown camera) is
ignored with one log line, at most once a minute for each kind of mistake. Who may
publish there is the broker's business: an ACL (``configs/examples/mosquitto-acl.conf``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from edged.logs import Every

log = logging.getLogger(__name__)

SETTINGS = ("detect", "motion")
_PAYLOADS = {b"ON": True, b"OFF": False}


class Controlled(Protocol):
    def set_control(self, camera: str, setting: str, on: bool) -> bool: ...


class Subscriber(Protocol):
    def subscribe(self, topic_filter: str, handler: object) -> None: ...


class Controls:
    def __init__(self, base: str, target: Controlled) -> None:
        self.base = base
        self.target = target
        self._noted = Every(60.0)
        self.applied = 0
        self.ignored = 0

    def filters(self) -> list[str]:
        return [f"{self.base}/+/{setting}/set" for setting in SETTINGS]

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """One message on a ``set`` topic (the event loop). A retained one is the broker's copy of an old command,
        delivered again on every (re)connect: never obeyed, so start and reconnect behave alike."""
        rest = topic[len(self.base) + 1:].split("/")
        if len(rest) != 3 or rest[1] not in SETTINGS or rest[2] != "set":
            return
        if retained:
            self._ignore(f"retained {topic}", f"a retained message on {_shown(topic.encode())}: a set topic takes "
                                             f"commands, not states (clear it: mosquitto_pub -r -n -t <topic>)")
            return
        camera, setting = rest[0], rest[1]
        on = _PAYLOADS.get(payload.strip())
        if on is None:
            self._ignore(f"{setting}/set", f"payload {_shown(payload)} on {topic}: only ON or OFF")
            return
        if not self.target.set_control(camera, setting, on):
            self._ignore("camera", f"{topic}: there is no running camera '{camera}'")
            return
        self.applied += 1

    def _ignore(self, kind: str, message: str) -> None:
        self.ignored += 1
        if self._noted.due(kind):
            log.warning("controls: ignored %s", message)


def _shown(payload: bytes) -> str:
    """A payload, short and printable, for a log line."""
    text = payload[:32].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(text + ("..." if len(payload) > 32 else ""))
