"""A paho-mqtt 2.x client as the config asks: credentials, TLS, the last will (``offline``, retained), reconnect
delays. The publisher sets the callbacks."""

from __future__ import annotations

import contextlib
import socket
import ssl
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edged.config.models import MqttConfig
from edged.publish.contract import DEVICE_OFFLINE


def make_client(cfg: MqttConfig, client_id: str, protocol: MQTTProtocolVersion, status_topic: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        client.username_pw_set(cfg.username, password)
    if cfg.tls is not None:
        client.tls_set(
            ca_certs=str(cfg.tls.ca) if cfg.tls.ca else None,
            certfile=str(cfg.tls.cert) if cfg.tls.cert else None,
            keyfile=str(cfg.tls.key) if cfg.tls.key else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(cfg.tls.insecure)
    client.will_set(status_topic, DEVICE_OFFLINE, qos=1, retain=True)
    client.reconnect_delay_set(max(1, round(cfg.reconnect_min_s)), max(1, round(cfg.reconnect_max_s)))
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    """Each message goes out when it is written (TCP_NODELAY), as paho does not ask: with Nagle's algorithm a
    message written while the last one is not yet acknowledged waits for the broker's ACK, and the broker delays
    its ACKs."""
    with contextlib.suppress(AttributeError, OSError):  # not a TCP socket: nothing to set
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
