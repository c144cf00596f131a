"""An MQTT subscriber that records what a real consumer of edged receives (tests, benchmarks)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    received: float  # time.time() on arrival

    @property
    def text(self) -> str:
        return self.payload.decode()

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    def __init__(self, port: int, topic: str = "#", *, username: str | None = None, password: str | None = None,
                 ca: Path | None = None, client_id: str = "", persistent: bool = False) -> None:
        """``persistent``: a session the broker keeps (and queues QoS 1 for) while we are away."""
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent)
        self._client.reconnect_delay_set(1, 2)
        if username:
            self._client.username_pw_set(username, password)
        if ca:
            self._client.tls_set(ca_certs=str(ca))
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self._client.connect("127.0.0.1" if ca is None else "localhost", port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, time.time()))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float, what: str = "message") -> Message:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for m in self.messages[seen:]:
                    if predicate(m):
                        return m
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self.messages})
                    seen_count = len(self.messages)
                    raise AssertionError(f"no {what} within {timeout:g} s; saw {seen_count} message(s) on {topics}")
                self._cond.wait(left)

    def wait_count(self, topic: str, count: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([m for m in self.messages if m.topic == topic]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = len([m for m in self.messages if m.topic == topic])
                    raise AssertionError(f"{topic}: {got} of {count} messages within {timeout:g} s")
                self._cond.wait(left)
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
