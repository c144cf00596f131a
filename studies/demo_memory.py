"""Resident memory of ``edged demo`` once it runs (one-off work must not stay in the process).

    python -m studies.demo_memory [--seconds 25]

Starts the demo as a child for ``--seconds`` (``--cold``: with an empty cache, so the model
build and media come first), samples its RSS each second, and prints the median of the
last ten seconds and the peak. Never fails on size.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Read here, not from edged, so the same script measures any commit (PYTHONPATH=other/checkout)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise OSError("no VmRSS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--cold", action="store_true", help="an empty cache: the model is built, media made, first")
    args = parser.parse_args()
    command = [sys.executable, "-m", "edged", "demo", "--duration", str(args.seconds), "--port", str(free_port())]
    with tempfile.TemporaryDirectory(prefix="edged-demo-memory-") as tmp:
        if args.cold:
            command += ["--cache-dir", tmp]
        return measure(command)


def measure(command: list[str]) -> int:
    """RSS of the demo process each second; the figure is the median of its last ten seconds (steady state,
    after any one-off work), and the peak over the whole run."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[float] = []
    while proc.poll() is None:
        time.sleep(1.0)
        try:
            samples.append(rss_mb(proc.pid))
        except OSError:
            break
    proc.wait()
    if len(samples) < 12:
        print("the demo exited before it could be measured")
        return 1
    print(f"edged demo RSS: {statistics.median(samples[-10:]):.0f} MB over its last ten seconds, "
          f"peak {max(samples):.0f} MB ({len(samples)} samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
