"""`edged fleet`'s table: every device a row whatever its retained messages hold; terminal-safe cells."""

from __future__ import annotations

import json

import pytest

from edged.tools.fleet import Device, cell, table


def test_the_fleet_table_reads_status_and_telemetry() -> None:
    now = 1000.0
    up = Device("site-a", "online", {"ts": 999.0, "alerts": ["camera_down:gate"], "system": {"temp_c": 51.5},
                                     "cameras": {"gate": {"state": "online", "processed_fps": 4.0},
                                                 "yard": {"state": "offline", "processed_fps": None}}})
    down = Device("site-b", "offline")
    rows = [up.row(now), down.row(now)]
    assert rows[0] == {"device": "site-a", "status": "online", "cameras": "1/2", "fps": 4.0, "temp_c": 51.5,
                       "alerts": ["camera_down:gate"], "telemetry_age_s": 1.0, "note": ""}
    text = table(rows)
    assert text.splitlines()[0].split() == ["device", "status", "cameras", "fps", "temp_c", "telemetry_age_s",
                                            "alerts", "note"]
    assert "camera_down:gate" in text and "site-b  offline" in text
    assert "no edged devices" in table([])


@pytest.mark.parametrize("payload", [b"[1,2,3]", b'{"ts":"abc"}', b'{"ts":null}', b'{"cameras":[1]}',
                                     b'{"system":null}', b'{"cameras":{"a":7,"b":{"processed_fps":"x"}}}',
                                     b'{"alerts":{"x":1}}', b'{"ts":1e999}', b"[" * 100_000 + b"]" * 100_000,
                                     b"\xff\xfe", b"null", b'{"system":{"temp_c":"hot"}}'])
def test_any_telemetry_is_a_row(payload: bytes) -> None:
    device = Device("odd")
    device.take_telemetry(payload)
    row = device.row(1000.0)
    assert row["device"] == "odd"
    json.dumps(row)  # --json prints it
    table([row])


def test_bad_telemetry_is_marked_and_huge_messages_are_not_parsed() -> None:
    device = Device("odd")
    device.take_telemetry(b"[" * 100_000 + b"]" * 100_000)
    assert device.row(0.0)["note"] == "telemetry is not JSON"
    device.take_telemetry(b"[1,2,3]")
    assert device.row(0.0)["note"] == "telemetry is not a JSON object"
    device.take_telemetry(b" " * (300 * 1024))
    assert "is not edged's" in device.row(0.0)["note"]


def test_cells_cannot_drive_the_terminal() -> None:
    device = Device("evil\x1b[2J")
    device.take_status(b"online\x1b[2J\nforged  row" + b"x" * 10_000_000)
    text = table([device.row(0.0)])
    assert "\x1b" not in text and len(text.splitlines()) == 2
    assert max(len(line) for line in text.splitlines()) < 400
    assert cell("a\nb") == "a\\nb" and len(cell("y" * 1000)) == 40
