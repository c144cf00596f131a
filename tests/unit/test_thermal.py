"""Thermal zones from sysfs trees recorded on real devices, chosen by type."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.telemetry.thermal import device_temperature, read_zones
from tests.conftest import make_thermal_tree


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("thermal-zones-jetson-nano.txt", ("CPU-therm", 24.5)),  # not PMIC-Die, fixed at 100 C
        ("thermal-zones-raspberry-pi-raspbian-4.19.txt", ("cpu-thermal", 44.388)),
        ("thermal-zones-raspberry-pi5.txt", ("thermal_zone0", 47.4)),  # type not readable
        ("thermal-zones-intel-nuc-hassos.txt", ("thermal_zone2", 38.0)),  # zone0 reads -263.2: not a temperature
        ("thermal-zones-intel-x86-thermald219.txt", ("SEN1", 34.0)),
        ("thermal-zones-jetson-nano-2gb.txt", None),  # types only, no readings
    ],
)
def test_device_temperature(tmp_path: Path, telemetry_fixtures: Path, fixture: str,
                            expected: tuple[str, float] | None) -> None:
    root = make_thermal_tree(tmp_path, (telemetry_fixtures / "sysfs" / fixture).read_text())
    assert device_temperature(read_zones(root)) == expected


def test_zones_are_read_in_numeric_order_and_junk_dropped(tmp_path: Path, telemetry_fixtures: Path) -> None:
    table = (telemetry_fixtures / "sysfs" / "thermal-zones-intel-nuc-hassos.txt").read_text()
    zones = read_zones(make_thermal_tree(tmp_path, table))
    assert [z.index for z in zones] == [0, 1, 2, 3]
    assert zones[0].temp_c is None and zones[1].temp_c == 27.8


def test_configured_zone_types_win(tmp_path: Path, telemetry_fixtures: Path) -> None:
    root = make_thermal_tree(tmp_path, (telemetry_fixtures / "sysfs" / "thermal-zones-jetson-nano.txt").read_text())
    assert device_temperature(read_zones(root), ["GPU-therm"]) == ("GPU-therm", 26.5)


def test_unreadable_temperature_files(tmp_path: Path) -> None:
    zone = tmp_path / "sys" / "class" / "thermal" / "thermal_zone7"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("not a number\n")
    assert read_zones(tmp_path)[0].temp_c is None
    assert read_zones(tmp_path / "nowhere") == []
