"""Which floating-point precision an OpenVINO device should run, fastest first.

``inference_precision: auto`` tries these in order and takes the first that passes
the accuracy gate against f32 on this device (``edged.tools.precision_gate``):

- an x86 CPU with AMX or AVX-512 BF16: bf16, then f32 (bf16 runs on the matrix units;
  a 2-core Xeon with AMX ran YOLOv3-tiny 5.1x faster in bf16 than in f32);
- an x86 CPU without them: f32 only (bf16 would be emulated, f16 is not native);
- an ARM CPU with half-precision arithmetic (Cortex-A76 in a Raspberry Pi 5, the
  Neoverse/Carmel/A78AE cores of Jetsons): f16, then f32; OpenVINO's own default there
  is f16, which returned NaN for every output of YOLOv3-tiny on an emulated Neoverse-N1,
  so f16 is used only once the gate has seen it agree with f32 on this device;
- an ARM CPU without it (Raspberry Pi 4's Cortex-A72): f32;
- a GPU or NPU (Intel iGPU, Arc, Core Ultra NPU, NCS2): f16, then f32.

f32 is the reference and always passes. Device traits are read from text the caller
passes in (``/proc/cpuinfo``), so this stays testable on any machine.
"""

from __future__ import annotations

import ctypes
import platform
import re
from dataclasses import dataclass
from pathlib import Path

FLOAT_PRECISIONS = ("bf16", "f16", "f32")
X86_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
ARM_FP16_FLAGS = frozenset({"fphp", "asimdhp"})


@dataclass(frozen=True)
class DeviceTraits:
    device: str  # OpenVINO device name: CPU, GPU, GPU.1, NPU, MYRIAD, AUTO:...
    machine: str  # x86_64, aarch64, ...
    cpu_model: str
    flags: frozenset[str]

    @property
    def kind(self) -> str:
        """"cpu" or "accelerator"; AUTO/MULTI/HETERO count as their first device."""
        name = self.device.upper()
        if name.startswith(("AUTO", "MULTI", "HETERO")):
            name = name.partition(":")[2] or "CPU"
        return "cpu" if name.startswith("CPU") else "accelerator"

    @property
    def arm(self) -> bool:
        return self.machine.lower() in ("aarch64", "arm64") or self.machine.lower().startswith("armv")

    def key(self, runtime_version: str) -> str:
        """Names a gate result: the device, the CPU model, the runtime. A different one gates again."""
        cpu = re.sub(r"[^a-z0-9]+", "-", self.cpu_model.lower()).strip("-")[:64] or "unknown-cpu"
        device = re.sub(r"[^a-z0-9]+", "-", self.device.lower()).strip("-")
        runtime = re.sub(r"[^a-z0-9.]+", "-", runtime_version.lower()).strip("-")
        return f"{device}-{self.machine}-{cpu}-ov{runtime}"


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(CPU model name, feature flags) from /proc/cpuinfo on x86 ("flags") or ARM ("Features")."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    if not model:
        part = re.search(r"^CPU part\s*:\s*(\S+)", text, flags=re.M)
        model = f"arm-part-{part.group(1)}" if part else ""
    return model, frozenset(flags)


AT_HWCAP = 16
ARM_HWCAP_BITS = {9: "fphp", 10: "asimdhp"}  # the kernel's HWCAP_FPHP and HWCAP_ASIMDHP on aarch64


def arm_hwcap() -> int | None:
    """The kernel's AT_HWCAP for this process (getauxval), or None where libc has none."""
    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return None
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return int(getauxval(AT_HWCAP))


def read_traits(device: str, cpuinfo: Path = Path("/proc/cpuinfo"), machine: str | None = None,
                hwcap: int | None = None) -> DeviceTraits:
    """On aarch64 the half-precision flags come from AT_HWCAP too: what the kernel (or qemu-user, whose
    /proc/cpuinfo is the host's) says this CPU does, even where /proc/cpuinfo is hidden or another CPU's."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    model, flags = parse_cpuinfo(text)
    machine = machine or platform.machine()
    if machine in ("aarch64", "arm64"):
        value = arm_hwcap() if hwcap is None else hwcap
        if value is not None:
            flags = flags | {name for bit, name in ARM_HWCAP_BITS.items() if value & (1 << bit)}
            if not re.search(r"^Features\s*:", text, flags=re.M):
                model = f"arm-hwcap-{value:x}"  # /proc/cpuinfo describes another CPU: name this one by its caps
    return DeviceTraits(device=device, machine=machine, cpu_model=model, flags=flags)


def candidates(traits: DeviceTraits) -> list[str]:
    """Float precisions to try on this device, fastest first; always ends with f32."""
    if traits.kind != "cpu":
        return ["f16", "f32"]
    if traits.arm:
        return ["f16", "f32"] if traits.flags & ARM_FP16_FLAGS else ["f32"]
    return ["bf16", "f32"] if traits.flags & X86_BF16_FLAGS else ["f32"]


def why(traits: DeviceTraits) -> str:
    """One line: why these candidates on this device."""
    if traits.kind != "cpu":
        return f"{traits.device} computes in f16 natively"
    if traits.arm:
        return ("this ARM CPU has half-precision arithmetic (fphp/asimdhp)" if traits.flags & ARM_FP16_FLAGS
                else "this ARM CPU has no half-precision arithmetic")
    found = sorted(traits.flags & X86_BF16_FLAGS)
    return (f"this x86 CPU has {' and '.join(found)}" if found
            else "this x86 CPU has neither AMX nor AVX-512 BF16")
