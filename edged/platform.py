"""Which board edged runs on, read when asked (never at import): the device-tree model string."""

from __future__ import annotations

from pathlib import Path


def device_model(root: Path = Path("/")) -> str:
    """'Raspberry Pi 5 Model B Rev 1.0', 'NVIDIA Jetson Orin Nano Developer Kit', or '' (not a device-tree board)."""
    try:
        return (root / "proc/device-tree/model").read_bytes().rstrip(b"\x00").decode(errors="replace").strip()
    except OSError:
        return ""


def board_kind(root: Path = Path("/")) -> str:
    """'jetson', 'raspberry-pi' or 'generic': which systemd drop-in and install mode fit."""
    model = device_model(root)
    if (root / "etc/nv_tegra_release").exists() or "Jetson" in model or "NVIDIA" in model:
        return "jetson"
    if "Raspberry Pi" in model:
        return "raspberry-pi"
    return "generic"
