"""Raspberry Pi vcgencmd output recorded on real Pis; /proc readings; rolling windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.pipeline.stats import Rate, Window
from edged.telemetry.memory import CpuLoad, read_memory
from edged.telemetry.rpi import decode_throttled, parse_kernel_line, parse_vcgencmd


def read(fixtures: Path, name: str) -> str:
    return (fixtures / "rpi" / name).read_text()


def test_every_throttle_bit() -> None:
    all_bits = decode_throttled(0xF000F)
    assert all_bits.now == ("under_voltage", "arm_frequency_capped", "throttled", "soft_temperature_limit")
    assert all_bits.since_boot == all_bits.now and all_bits.active
    assert not decode_throttled(0).active and decode_throttled(0).since_boot == ()


def test_recorded_get_throttled(telemetry_fixtures: Path) -> None:
    soft = parse_vcgencmd(read(telemetry_fixtures, "vcgencmd-get_throttled-1.txt")).throttle
    assert soft is not None and soft.now == ("soft_temperature_limit",)
    assert soft.since_boot == ("soft_temperature_limit",)
    past = parse_vcgencmd(read(telemetry_fixtures, "vcgencmd-get_throttled-2.txt")).throttle
    assert past is not None and past.now == () and past.since_boot == ("under_voltage", "throttled")
    assert past.as_dict()["raw"] == "0x50000"


def test_recorded_mixed_output(telemetry_fixtures: Path) -> None:
    reading = parse_vcgencmd(read(telemetry_fixtures, "vcgencmd-mixed-2.txt"))
    assert reading.temp_c == 38.6 and reading.throttle is not None
    assert reading.throttle.now == ("under_voltage", "throttled")
    quiet = parse_vcgencmd(read(telemetry_fixtures, "vcgencmd-mixed-3.txt"))
    assert quiet.temp_c == 62.3 and quiet.throttle is not None and not quiet.throttle.active
    assert parse_vcgencmd(read(telemetry_fixtures, "vcgencmd-measure_temp-1.txt")).temp_c == 52.1


def test_kernel_reports(telemetry_fixtures: Path) -> None:
    first, normal = read(telemetry_fixtures, "dmesg-undervoltage-1.txt").splitlines()[:2]
    detected = parse_kernel_line(first)
    assert detected is not None and detected.now == ("under_voltage", "throttled")
    cleared = parse_kernel_line(normal)
    assert cleared is not None and not cleared.active
    assert parse_kernel_line("usb 1-1: new device") is None


def test_memory_from_proc(tmp_path: Path) -> None:
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    (tmp_path / "proc" / "meminfo").write_text(
        "MemTotal:        4000000 kB\nMemFree:          100000 kB\nMemAvailable:    1000000 kB\n"
        "SwapTotal:       2048000 kB\nSwapFree:        1024000 kB\n")
    (tmp_path / "proc" / "4242" / "status").write_text("Name:\tedged\nVmRSS:\t  204800 kB\nThreads:\t17\n")
    m = read_memory(tmp_path, 4242)
    assert m.used_pct == pytest.approx(75.0) and m.available_mb == pytest.approx(976.5625)
    assert m.swap_used_mb == 1000 and m.process_rss_mb == 200 and m.process_threads == 17


def test_cpu_load_between_samples(tmp_path: Path) -> None:
    stat = tmp_path / "proc" / "stat"
    stat.parent.mkdir(parents=True)
    stat.write_text("cpu  100 0 100 800 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0\n")
    cpu = CpuLoad(tmp_path)
    assert cpu.sample() == {}
    stat.write_text("cpu  200 0 200 1000 0 0 0 0\ncpu0 150 0 50 400 0 0 0 0\n")
    assert cpu.sample() == {"cpu": 50.0, "cpu0": 100.0}


def test_window_percentiles_and_wrap() -> None:
    window = Window(size=10)
    assert window.percentiles(50) == [None]
    for value in range(100):
        window.add(float(value))
    assert len(window) == 10 and window.percentiles(0, 50, 100) == [90.0, 94.5, 99.0]


def test_rate() -> None:
    rate = Rate()
    assert rate.update(10, 1.0) is None
    assert rate.update(30, 3.0) == 10.0
