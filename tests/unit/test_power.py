"""Power and energy per inference: the Jetson's board input from recorded tegrastats lines, RAPL's package counters
(with their wrap), and the line where a device reports none."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.telemetry.jetson import parse_tegrastats
from edged.telemetry.power import NO_READING, Rapl, energy, power_reading


@pytest.mark.parametrize(("fixture", "rail", "watts"), [
    ("nano-jp4-1.txt", "POM_5V_IN", 0.920),
    ("orin-nano-jp6-1.txt", "VDD_IN", None),
    ("orin-agx-jp5-1.txt", "the sum of its rails", None),  # AGX Orin reports no input rail: its rails' sum
])
def test_a_jetsons_board_input_gives_watts_and_inferences_per_joule(telemetry_fixtures: Path, fixture: str,
                                                                    rail: str, watts: float | None) -> None:
    line = (telemetry_fixtures / "tegrastats" / fixture).read_text().splitlines()[0]
    stats = parse_tegrastats(line)
    if rail in stats.rails:
        expected = stats.rails[rail].current_mw / 1000 if watts is None else watts
    else:
        assert "VDD_IN" not in stats.rails and "POM_5V_IN" not in stats.rails
        expected = sum(r.current_mw for r in stats.rails.values()) / 1000
    reading = power_reading({"tegrastats": stats.as_dict()})
    assert reading is not None and reading[0] == pytest.approx(expected) and rail in reading[1]
    section = energy({"tegrastats": stats.as_dict()}, 30.0)
    assert section["watts"] == pytest.approx(expected, abs=1e-3)
    assert section["inferences_per_joule"] == pytest.approx(30.0 / expected, rel=1e-3)
    assert section["joules_per_inference"] == pytest.approx(expected / 30.0, rel=1e-3)


def rapl_zone(root: Path, name: str, label: str, energy_uj: int, wrap: int = 262143328850) -> Path:
    zone = root / "sys" / "class" / "powercap" / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(f"{label}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    return zone


def test_rapl_sums_the_packages_between_two_readings_and_survives_the_wrap(tmp_path: Path) -> None:
    """The kernel's powercap layout: package zones, their sub-zones (core, dram) left out, a counter that wraps."""
    first = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    second = rapl_zone(tmp_path, "intel-rapl:1", "package-1", 999_000, wrap=1_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:0", "core", 5_000_000)
    rapl_zone(tmp_path, "intel-rapl:2", "psys", 7_000_000)
    rapl = Rapl(tmp_path)
    assert rapl.present and len(rapl.domains) == 2
    assert rapl.watts(now=10.0) is None  # one reading is no rate
    (first / "energy_uj").write_text("13000000\n")  # 12 J in 2 s
    (second / "energy_uj").write_text("3000\n")  # wrapped: 4000 uJ more
    assert rapl.watts(now=12.0) == pytest.approx((12.0 + 0.004) / 2.0)
    assert power_reading({"rapl_watts": 6.0}) == (6.0, "CPU package (RAPL)")


def test_no_reading_is_said_not_invented(tmp_path: Path) -> None:
    assert not Rapl(tmp_path).present
    assert energy({"temp_c": 40.0}, 25.0) == {"watts": None, "source": NO_READING}
    assert energy({"rapl_watts": 5.0}, 0.0)["inferences_per_joule"] is None  # nothing inferred: no ratio
