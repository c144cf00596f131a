"""The precision policy per device, from /proc/cpuinfo as real devices print it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.engines.precision import DeviceTraits, candidates, parse_cpuinfo, read_traits, why

# Abbreviated from real devices' /proc/cpuinfo (one processor block each).
XEON_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
EPYC_ZEN2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme sse sse2 avx avx2 fma bmi2 sha_ni
"""
PI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08
Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
PI5 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b
"""


def traits(text: str, machine: str, device: str = "CPU") -> DeviceTraits:
    model, flags = parse_cpuinfo(text)
    return DeviceTraits(device=device, machine=machine, cpu_model=model, flags=flags)


@pytest.mark.parametrize(("text", "machine", "device", "expected"), [
    (XEON_AMX, "x86_64", "CPU", ["bf16", "f32"]),
    (EPYC_ZEN2, "x86_64", "CPU", ["f32"]),
    (EPYC_ZEN2, "x86_64", "GPU", ["f16", "f32"]),
    (EPYC_ZEN2, "x86_64", "NPU", ["f16", "f32"]),
    (EPYC_ZEN2, "x86_64", "AUTO:GPU,CPU", ["f16", "f32"]),
    (XEON_AMX, "x86_64", "AUTO:CPU", ["bf16", "f32"]),
    (PI4, "aarch64", "CPU", ["f32"]),
    (PI5, "aarch64", "CPU", ["f16", "f32"]),
])
def test_candidates_per_device(text: str, machine: str, device: str, expected: list[str]) -> None:
    assert candidates(traits(text, machine, device)) == expected


def test_reasons_and_keys() -> None:
    xeon = traits(XEON_AMX, "x86_64")
    assert why(xeon) == "this x86 CPU has amx_bf16 and avx512_bf16"
    assert why(traits(PI4, "aarch64")) == "this ARM CPU has no half-precision arithmetic"
    assert xeon.key("2026.4.1") == "cpu-x86_64-intel-r-xeon-r-platinum-8481c-cpu-2-70ghz-ov2026.4.1"
    assert traits(PI5, "aarch64").cpu_model == "arm-part-0xd0b"  # no model name line on a Pi 5
    assert traits(PI4, "aarch64").cpu_model == "BCM2835"
    assert xeon.key("2026.4.1") != traits(EPYC_ZEN2, "x86_64").key("2026.4.1")  # another CPU gates again


def test_read_traits_of_a_missing_file(tmp_path: Path) -> None:
    found = read_traits("CPU", tmp_path / "none", machine="x86_64")
    assert found.flags == frozenset() and candidates(found) == ["f32"]


def test_arm_half_precision_comes_from_hwcap_where_cpuinfo_is_another_cpus(tmp_path: Path) -> None:
    host = tmp_path / "cpuinfo"
    host.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2\n")  # qemu-user shows this
    n1 = read_traits("CPU", host, machine="aarch64", hwcap=(1 << 9) | (1 << 10) | 0xff)
    a72 = read_traits("CPU", host, machine="aarch64", hwcap=0xff)
    assert candidates(n1) == ["f16", "f32"] and candidates(a72) == ["f32"]
    assert n1.cpu_model != a72.cpu_model  # their gate verdicts are cached apart
    pi5 = tmp_path / "pi5"
    pi5.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp\n"
                   "CPU part\t: 0xd0b\n")
    assert read_traits("CPU", pi5, machine="aarch64", hwcap=0).cpu_model == "arm-part-0xd0b"  # a real cpuinfo
    x86 = read_traits("CPU", host, machine="x86_64", hwcap=(1 << 9) | (1 << 10))
    assert candidates(x86) == ["f32"]  # HWCAP bits mean nothing off aarch64
