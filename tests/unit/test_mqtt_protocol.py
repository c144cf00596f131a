"""mqtt.protocol: auto tries MQTT 5, falls back to 3.1.1 on a refused or closed CONNECT, keeps what worked."""

from __future__ import annotations

import paho.mqtt.client as paho

from edged.publish.protocol import ProtocolChoice


def test_auto_falls_back_at_once_and_keeps_what_was_accepted() -> None:
    choice = ProtocolChoice("auto", 1.0, 30.0)
    assert choice.current == paho.MQTTv5
    assert choice.rejected() == 0.0  # the first switch is immediate
    assert choice.current == paho.MQTTv311
    note = choice.accepted()
    assert "MQTT 3.1.1" in note and "\n" not in note
    assert choice.accepted() == ""  # said once
    assert choice.rejected() is None  # settled: a later close is a broker problem, not a version one
    assert choice.current == paho.MQTTv311


def test_auto_alternates_with_backoff_until_one_is_accepted() -> None:
    choice = ProtocolChoice("auto", 1.0, 4.0)
    delays = [choice.rejected() for _ in range(6)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert choice.current == paho.MQTTv5  # an even number of switches
    assert choice.accepted() == ""  # MQTT 5 accepted: nothing to say


def test_a_fixed_version_never_switches() -> None:
    for setting, version in (("5", paho.MQTTv5), ("3.1.1", paho.MQTTv311)):
        choice = ProtocolChoice(setting)
        assert choice.rejected() is None and choice.current == version and choice.accepted() == ""
