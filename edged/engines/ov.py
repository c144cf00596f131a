"""Import OpenVINO without its usage telemetry.

``import openvino`` sends a usage event through the ``openvino_telemetry`` package,
which forks the whole process to make an HTTPS request and terminates the fork
after a timeout. In a daemon that is three bugs at once: it phones home from an
edge box, it leaves forks of the daemon hanging where there is no network (they
deadlock on an import lock), and the fork inherits asyncio's signal wake-up
socket, so terminating it delivered a phantom SIGTERM to the daemon itself.
OpenVINO falls back to its own no-op stub when the package cannot be imported;
every edged module imports OpenVINO from here so that fallback is always taken.
"""

from __future__ import annotations

import sys

if "openvino" not in sys.modules:
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]

import openvino

__all__ = ["openvino", "version"]


def version() -> str:
    """OpenVINO's release, without its build suffix: '2026.4.1'."""
    return str(openvino.get_version().split("-")[0])
