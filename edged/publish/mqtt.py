"""MQTT publisher: paho-mqtt 2.x on its own network thread, driven from asyncio.

Every method here runs on the event loop thread, except the two the pipeline calls
for each frame from its scheduler thread: ``publish_detections`` and
``publish_event``. Detections never touch the loop: their bookkeeping (how many
are in paho's queue per camera, the newest one parked behind them) sits behind one
lock, and paho's callback for a sent detection settles it on paho's own thread.
Events go to the loop (the spool lives there). All other paho callbacks are handed
to the loop with ``call_soon_threadsafe``. ``publish()`` on a threaded paho client
only queues the packet and wakes the network thread: it never blocks the pipeline.

- Birth and last will: retained ``<prefix>/status`` is ``online`` on every
  (re)connect, ``offline`` (the will) when the daemon dies, ``stopped`` on a
  clean exit.
- Everything at QoS 1 (events, alerts, camera status) goes through the on-disk
  outbox (spool.py): written to disk first, sent in order, deleted on PUBACK, sent
  again after a broker outage or a restart of the daemon. The current status of
  every camera is queued again on each reconnect, behind anything older.
- Detections are latest-wins per camera: at most ``max_pending`` messages per
  camera sit in paho's queue; a newer one replaces the one waiting behind them,
  and the replaced one is counted as dropped. While the broker is away,
  detections are dropped and counted, not queued.
- Reconnects back off from ``reconnect_min_s`` to ``reconnect_max_s``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion

from edged.config.models import MqttConfig
from edged.logs import Every
from edged.publish.client import make_client
from edged.publish.contract import DEVICE_ONLINE, DEVICE_STOPPED, Topics
from edged.publish.handoff import LoopHandoff
from edged.publish.latest import LatestDetections
from edged.publish.outbox import Outbox
from edged.publish.protocol import ProtocolChoice
from edged.publish.spool import Row, Unsendable
from edged.publish.stats import PublishCounters, PublisherStats, SpoolStats

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes, bool], None]  # topic, payload, retained (the broker's copy, not a live message)

CONNACK_S = 20.0  # a connection the broker took but did not answer this long is started again


class MqttPublisher:
    def __init__(self, config: MqttConfig, topics: Topics, client_id: str, outbox: Outbox,
                 max_pending: int = 2) -> None:
        self.config = config
        self.outbox = outbox
        self.topics = topics
        self.client_id = client_id
        self.max_pending = max_pending
        self.counters = PublishCounters()
        self.connected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        self._camera_status: dict[str, bytes] = {}
        self.latest = LatestDetections(topics, config.detections_qos, max_pending, self.counters)
        self._acks: dict[int, asyncio.Future[None]] = {}  # QoS1 mids we wait on
        self._loop_thread: int | None = None
        self._handoff = LoopHandoff(self._call, outbox.submit)  # the scheduler's QoS 1 messages, a wake-up a batch
        self._problems = Every(60.0)  # each connection problem logged at most once a minute
        self._stopping = False
        self._connect_error = ""
        self._protocol = ProtocolChoice(config.protocol, config.reconnect_min_s, config.reconnect_max_s)
        self.refused: dict[str, int] = {}  # topic -> QoS 1 publishes the broker refused (MQTT 5 PUBACK >= 0x80)
        self.refused_reason = ""
        self._connected_at = 0.0
        self._refused_attempt = False
        self._early_drops: list[float] = []  # disconnects soon after connecting: another client with our id?
        self._subscriptions: dict[str, Handler] = {}  # filter -> handler (on the loop)
        self._handler_errors = Every(60.0)
        self._awaiting_connack = 0.0  # monotonic: since when an open connection waits for the broker's CONNACK
        self._watch: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        scheme = "mqtts" if self.config.tls else "mqtt"
        return f"{scheme}://{self.config.host}:{self.config.port}"

    def stats(self) -> PublisherStats:
        c, outbox = self.counters, self.outbox
        aside = outbox.spool.set_aside
        spool = SpoolStats(outbox.pending, outbox.spool.bytes, outbox.spool.dropped, outbox.sent, outbox.acked,
                           outbox.errors, outbox.error,
                           f"{aside} ({outbox.spool.set_aside_reason})" if aside is not None else "",
                           outbox.unsendable, outbox.unsendable_reason)
        return PublisherStats(self.where, self.connected, c.detections_sent, c.detections_dropped_offline,
                              c.detections_dropped_backlog, max(0, c.connects - 1), spool,
                              tuple(sorted(self.refused.items())), self.refused_reason)

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the spool, then connect in the background. Retries until stop()."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await self.outbox.open()
        client = self._make_client(self._protocol.current)
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        client.loop_start()
        self._client = client
        self.outbox.attach(self._send_row)
        self._watch = asyncio.get_running_loop().create_task(self._watch_connack(), name="mqtt-connack")
        log.info("MQTT: connecting to %s as %s", self.where, self.client_id)

    async def _watch_connack(self) -> None:
        """A broker that takes the TCP connection but never answers CONNECT would leave paho waiting for ever (a
        fleet test's bridged mosquitto did, for 90 s): after CONNACK_S with no answer, start the client again."""
        while True:
            await asyncio.sleep(CONNACK_S / 4)
            waiting = self._awaiting_connack
            if self.connected or self._stopping or not waiting or time.monotonic() - waiting < CONNACK_S:
                continue
            self._on_problem(f"the broker at {self.where} took the connection but did not answer within "
                             f"{CONNACK_S:g} s; connecting again")
            self._awaiting_connack = 0.0
            await self._restart_client()

    async def _restart_client(self, delay_s: float = 0.0) -> None:
        old = self._client
        if old is None:
            return
        old.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, old.loop_stop)
        if delay_s:
            await asyncio.sleep(delay_s)
        if self._stopping or self._client is not old:
            return
        client = self._make_client(self._protocol.current)
        client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        client.loop_start()
        self._client = client

    def _make_client(self, protocol: MQTTProtocolVersion) -> paho.Client:
        client = make_client(self.config, self.client_id, protocol, self.topics.status)
        client.on_connect = self._paho_connect
        client.on_connect_fail = self._paho_connect_fail
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_message = self._paho_message
        client.reconnect = self._wrap_reconnect(client.reconnect)  # type: ignore[method-assign]
        return client

    def _other_protocol(self) -> bool:
        """``mqtt.protocol: auto`` and this version's CONNECT was refused as a version or closed with no CONNACK:
        connect again on the other version (protocol.py decides when); False when the version is settled."""
        delay = self._protocol.rejected()
        if delay is None:
            return False
        if self._protocol.switches > 1:  # both versions were closed: a broker problem, not a version one
            self._on_problem(f"the broker at {self.where} closed the connection before accepting it; trying "
                             f"{self._protocol.name} in {delay:g} s")
        asyncio.get_running_loop().create_task(self._restart_client(delay))
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Publish ``stopped``, wait (bounded) for QoS 1 messages to be acknowledged, disconnect."""
        client = self._client
        if client is None:
            return
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        if self.connected:
            if not await self.outbox.drain(timeout / 2):
                log.warning("MQTT: %d QoS 1 message(s) still unacknowledged; they stay in the spool for next time",
                            self.outbox.pending)
            self._publish_ack(self.topics.status, DEVICE_STOPPED.encode(), retain=True)
            pending = [f for f in self._acks.values() if not f.done()]
            if pending:
                _done, not_done = await asyncio.wait(pending, timeout=timeout)
                if not_done:
                    log.warning("MQTT: %d message(s) not acknowledged before shutdown", len(not_done))
        else:
            log.warning("MQTT: not connected at shutdown; could not publish 'stopped'")
        client.disconnect()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, client.loop_stop)
        self._client = None
        self.connected = False
        await self.outbox.close()

    # -- publishing (event loop thread) ------------------------------------------

    def set_camera_status(self, camera: str, payload: bytes) -> None:
        """Retained camera status, through the spool; queued again on every reconnect."""
        self._camera_status[camera] = payload
        self.outbox.submit(self.topics.camera_status(camera), payload, retain=True)

    def publish_event(self, camera: str, payload: bytes) -> None:
        """Through the spool, in order; from any thread (the spool is the loop's)."""
        self._submit(self.topics.events(camera), payload, False)

    def set_retained(self, levels: Sequence[str], payload: bytes) -> None:
        """``<prefix>/<levels...>``, QoS 1 and retained, through the spool; from any thread. Empty: clear it."""
        self._submit(f"{self.topics.base}/{'/'.join(levels)}", payload, True)

    def publish_control_state(self, camera: str, setting: str, on: bool) -> None:
        self.set_retained((camera, setting, "state"), b"ON" if on else b"OFF")

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Messages on ``topic_filter`` (QoS 1) go to ``handler(topic, payload, retained)`` on the event loop;
        subscribed again on every reconnect. Before start() or while connected."""
        self._subscriptions[topic_filter] = handler
        if self._client is not None and self.connected:
            self._client.subscribe(topic_filter, qos=1)

    def publish_alert(self, payload: bytes) -> None:
        """An alert transition (QoS 1, through the spool); from any thread."""
        self._submit(self.topics.alerts, payload, False)

    def _submit(self, topic: str, payload: bytes, retain: bool) -> None:
        if threading.get_ident() == self._loop_thread:
            self.outbox.submit(topic, payload, retain)
        else:
            self._handoff.put(topic, payload, retain)

    def publish_detections(self, camera: str, payload: bytes) -> None:
        """Latest wins per camera; from any thread."""
        self.latest.publish(self._client if self.connected else None, camera, payload)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        """Any other message: QoS 1 (alerts) through the spool, never lost; QoS 0 (telemetry)
        sent now or dropped (False) while the broker is away."""
        if qos:
            self.outbox.submit(topic, payload, retain)
            return True
        if self._client is None or not self.connected:
            return False
        return self._client.publish(topic, payload, qos=0, retain=retain).rc == paho.MQTT_ERR_SUCCESS

    def _send_row(self, row: Row) -> int | None:
        if self._client is None or not self.connected:
            return None
        try:
            info = self._client.publish(row.topic, row.payload, qos=1, retain=row.retain)
        except (ValueError, TypeError) as exc:  # paho refuses the topic or payload itself: it never will send it
            raise Unsendable(str(exc)) from None
        return info.mid if info.rc == paho.MQTT_ERR_SUCCESS else None

    def _publish_ack(self, topic: str, payload: bytes, retain: bool) -> asyncio.Future[None] | None:
        assert self._client is not None and self._loop is not None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return None
        future: asyncio.Future[None] = self._loop.create_future()
        self._acks[info.mid] = future
        return future

    # -- paho callbacks (network thread) -> loop ---------------------------------

    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def _paho_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        if client is self._client:
            self._call(self._on_message, message.topic, bytes(message.payload), bool(message.retain))

    def _on_message(self, topic: str, payload: bytes, retained: bool = False) -> None:
        for topic_filter, handler in self._subscriptions.items():
            if paho.topic_matches_sub(topic_filter, topic):
                try:
                    handler(topic, payload, retained)
                except Exception as exc:  # one bad message never stops the ones behind it, nor other handlers
                    if self._handler_errors.due(topic_filter):
                        log.error("MQTT: a message on %r could not be handled: %s: %s (at most once a minute)",
                                  topic[:200], type(exc).__name__, str(exc)[:200])

    def _paho_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if client is self._client:
            self._call(self._on_connect, bool(reason.is_failure), str(reason))

    def _wrap_reconnect(self, reconnect: Any) -> Any:
        """paho swallows the reason a connection attempt failed; keep it for the log."""

        def attempt() -> Any:
            self._awaiting_connack = 0.0
            try:
                result = reconnect()
            except OSError as exc:
                self._connect_error = f": {exc}" if str(exc) else f": {type(exc).__name__}"
                raise
            self._awaiting_connack = time.monotonic()  # the socket is open; CONNECT sent, CONNACK to come
            return result

        return attempt

    def _paho_connect_fail(self, client: Any, userdata: Any) -> None:
        reason, self._connect_error = self._connect_error, ""
        self._call(self._on_problem, f"cannot connect to the broker at {self.where}{reason}")

    def _paho_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if client is self._client:
            self._call(self._on_disconnect, str(reason))

    def _paho_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if self.latest.sent(mid, self._client if self.connected else None):
            return
        refused = str(reason) if getattr(reason, "is_failure", False) else ""
        self._call(self._on_published, mid, refused)

    # -- loop-side handlers ------------------------------------------------------

    def _on_problem(self, message: str) -> None:
        """Log a connection problem; the same problem at most once a minute."""
        if self._problems.due(message):
            log.error("MQTT: %s; retrying (up to every %g s)", message, self.config.reconnect_max_s)

    def _on_connect(self, failed: bool, reason: str) -> None:
        self._awaiting_connack = 0.0
        if failed:
            self._refused_attempt = True  # the disconnect that follows is the same attempt: one line, not two
            if "protocol version" in reason.lower() and self._other_protocol():
                return
            auth = "authori" in reason.lower() or "password" in reason.lower()
            hint = " (check mqtt.username and mqtt.password)" if auth else ""
            self._on_problem(f"the broker at {self.where} refused the connection: {reason}{hint}")
            return
        self._reset_pending()
        self.connected = True
        self._connected_at = time.monotonic()
        self.counters.connects += 1
        self._problems.reset()
        if note := self._protocol.accepted():
            log.warning("MQTT: %s: %s", self.where, note)
        log.info("MQTT: connected to %s%s", self.where,
                 f"; {self.outbox.pending} spooled message(s) to deliver" if self.outbox.pending else "")
        self._publish_ack(self.topics.status, DEVICE_ONLINE.encode(), retain=True)
        if self._subscriptions and self._client is not None:
            self._client.subscribe([(topic, 1) for topic in self._subscriptions])
        for camera, payload in self._camera_status.items():
            self.outbox.submit(self.topics.camera_status(camera), payload, retain=True)
        self.outbox.pump()

    def _on_disconnect(self, reason: str) -> None:
        self._awaiting_connack = 0.0
        if self.connected and not self._stopping:
            self.counters.disconnects += 1
            if self._taken_over(reason):
                self._on_problem(f"another client with id '{self.client_id}' took over the session at {self.where} "
                                 f"(a second edged with the same device_id?); give each one its own device_id "
                                 f"or mqtt.client_id")
            else:
                log.warning("MQTT: disconnected from %s: %s", self.where, reason)
        elif not self.connected and not self._stopping and self._refused_attempt:
            self._refused_attempt = False
        elif not self.connected and not self._stopping and not self._other_protocol():
            tls = " (TLS: does the broker require a client certificate?)" if self.config.tls else ""
            self._on_problem(f"the broker at {self.where} closed the connection before accepting it: {reason}{tls}")
        self.connected = False
        self._reset_pending()

    def _taken_over(self, reason: str) -> bool:
        """MQTT 5 says so ("Session taken over"); on 3.1.1, three drops within 5 s of connecting in a minute."""
        if "taken over" in reason.lower():
            return True
        now = time.monotonic()
        if now - self._connected_at < 5.0:
            self._early_drops = [t for t in self._early_drops if now - t < 60.0] + [now]
        return len(self._early_drops) >= 3

    def _reset_pending(self) -> None:
        self.latest.reset()

    def _on_published(self, mid: int, refused: str = "") -> None:
        if refused:
            row = self.outbox.row_for(mid)
            topic = row.topic if row is not None else "?"
            if topic not in self.refused:
                log.error("MQTT: the broker refused a message on %s: %s (its ACL?); such messages are counted and "
                          "alerted, not sent again", topic, refused)
            self.refused[topic] = self.refused.get(topic, 0) + 1
            self.refused_reason = refused
        if self.outbox.acknowledged(mid):
            return
        future = self._acks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)
