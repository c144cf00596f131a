"""tegrastats lines recorded on real Jetsons, JetPack 4 to 7, and the GPU load file."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.telemetry.jetson import gpu_load_pct, is_jetson, parse_tegrastats


def lines(fixtures: Path, name: str) -> list[str]:
    return [line for line in (fixtures / "tegrastats" / name).read_text().splitlines() if line.strip()]


def test_every_recorded_line_parses(telemetry_fixtures: Path) -> None:
    files = sorted((telemetry_fixtures / "tegrastats").glob("*.txt"))
    assert len(files) >= 20
    for path in files:
        for line in path.read_text().splitlines():
            if "RAM" not in line:
                continue
            stats = parse_tegrastats(line)
            assert stats.ram_total_mb > 1000, path.name
            assert all(-40 < t < 150 for t in stats.temps_c.values()), path.name


def test_nano_jetpack4_root_output(telemetry_fixtures: Path) -> None:
    s = parse_tegrastats(lines(telemetry_fixtures, "nano-jp4-1.txt")[0])
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (936, 3964, 0, 4096)
    assert [c.load_pct for c in s.cpus] == [10, 3, 0, 0] and [c.mhz for c in s.cpus] == [102] * 4
    assert (s.emc_pct, s.emc_mhz, s.gpu_pct, s.gpu_mhz) == (0.0, 204, 0.0, [76])
    assert s.temps_c["CPU"] == 27.5 and "PMIC" not in s.temps_c  # a fixed placeholder, not a sensor
    assert s.rails["POM_5V_IN"].current_mw == 920 and s.power_in_mw == 920


def test_non_root_output_with_cores_off(telemetry_fixtures: Path) -> None:
    s = parse_tegrastats(lines(telemetry_fixtures, "nano-jp4-2.txt")[0])
    assert [c.online for c in s.cpus] == [True, True, False, False]
    assert (s.emc_pct, s.emc_mhz, s.gpu_pct, s.gpu_mhz) == (0.0, None, 0.0, [])
    assert s.rails == {} and s.power_in_mw is None


def test_xavier_jetpack5_date_prefix_brackets_and_mw(telemetry_fixtures: Path) -> None:
    s = parse_tegrastats(lines(telemetry_fixtures, "xavier-nx-jp5-1.txt")[0])
    assert s.gpu_mhz == [114] and s.engines["VIC_FREQ"] == {"mhz": 115}
    assert s.rails["VDD_IN"].current_mw == 2763 and s.rails["VDD_IN"].average_mw == 2846


def test_orin_jetpack5_placeholders_and_repeated_rails(telemetry_fixtures: Path) -> None:
    s = parse_tegrastats(lines(telemetry_fixtures, "orin-agx-jp5-1.txt")[0])
    assert "GPU" not in s.temps_c and "CV0" not in s.temps_c  # -256C: sensor off
    assert s.temps_c["tj"] == 44.343 and s.gpu_mhz == [0, 0]
    assert {"NC", "NC_2"} <= set(s.rails)
    assert s.power_in_mw == 2340 + 390 + 4025 + 301  # no VDD_IN on AGX Orin: the sum of rails


def test_orin_jetpack6_engines_and_lower_case_sensors(telemetry_fixtures: Path) -> None:
    s = parse_tegrastats(lines(telemetry_fixtures, "orin-nx-jp6-1.txt")[0])
    assert s.engines["NVDEC"] == {"pct": 40.0, "mhz": 115} and s.engines["NVJPG"] == "off"
    assert s.gpu_pct == 84.0 and s.temps_c["cpu"] == 65.562 and s.cpus[5].load_pct == 93.0
    agx = parse_tegrastats(lines(telemetry_fixtures, "orin-agx-jp6-1.txt")[0])
    assert sum(not c.online for c in agx.cpus) == 4 and agx.gpu_mhz == [305, 0]


def test_jetpack7_current_and_max(telemetry_fixtures: Path) -> None:
    s = parse_tegrastats(lines(telemetry_fixtures, "orin-agx-jp7-1.txt")[0])
    assert s.temps_c["cpu"] == 52.968 and s.gpu_mhz == [1300, 1300]
    rail = s.rails["VDD_GPU_SOC"]
    assert (rail.current_mw, rail.average_mw, rail.max_mw) == (5139, 5139, 5139)
    assert s.engines["NVENC0"] == "off"


def test_odd_and_legacy_forms(telemetry_fixtures: Path) -> None:
    tx2 = parse_tegrastats(lines(telemetry_fixtures, "tx2-jp4-1.txt")[0])
    assert tx2.gpu_pct is None and tx2.gpu_mhz == [0]  # 'GR3D_FREQ @0'
    assert [c.online for c in tx2.cpus] == [True, False, False, True, True, True]
    tx1 = parse_tegrastats(lines(telemetry_fixtures, "tx1-l4t28-1.txt")[1])
    assert [c.load_pct for c in tx1.cpus] == [17, 11, 65, 0] and tx1.cpus[0].mhz == 1734
    assert (tx1.emc_pct, tx1.gpu_pct) == (1.0, 39.0)
    no_freq = parse_tegrastats(lines(telemetry_fixtures, "tx2-jpunknown-1.txt")[0])
    assert no_freq.gpu_pct is None and no_freq.swap_total_mb is None and no_freq.temps_c["GPU"] == 41.0


def test_truncated_lines_and_garbage(telemetry_fixtures: Path) -> None:
    cut = lines(telemetry_fixtures, "nano-jp4-6-nvdec-TRUNCATED.txt")[0]
    stats = parse_tegrastats(cut)  # cut short in the source: what is there is still read
    assert stats.engines["NVDEC"] == {"mhz": 192} and stats.gpu_pct == 51.0
    assert parse_tegrastats(cut[: cut.index("GR3D_FREQ") + 9]).gpu_pct is None
    with pytest.raises(ValueError, match="not a tegrastats line"):
        parse_tegrastats("tegrastats: permission denied")


@pytest.mark.parametrize("board", ["nano", "xavier-nx", "agx-orin"])
def test_gpu_load_from_the_paths_tegrastats_reads(tmp_path: Path, telemetry_fixtures: Path, board: str) -> None:
    paths = (telemetry_fixtures / "sysfs" / f"jetson-gpu-load-paths-{board}.txt").read_text().splitlines()
    load = next(p.split(",", 1)[1] for p in paths if p.startswith("IGPU_LOAD"))
    target = tmp_path / load.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_text("150\n")  # tenths of a percent
    assert gpu_load_pct(tmp_path) == 15.0 and is_jetson(tmp_path)
    assert gpu_load_pct(tmp_path / "elsewhere") is None
