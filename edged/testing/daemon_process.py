"""Run ``edged run`` as a real subprocess, the way systemd would (tests, benchmarks)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edged.testing.children import track


def http_port_in(log_text: str) -> int | None:
    """The port an edged's HTTP server took, from its start-up line in ``log_text``; None before it says."""
    found = re.search(r"HTTP: [^\n]* on http://[\d.]+:(\d+)", log_text)
    return int(found.group(1)) if found else None


@dataclass
class DaemonProcess:
    config: dict[str, Any]
    workdir: Path
    cache_dir: Path
    env: dict[str, str] | None = None
    entry: tuple[str, ...] = ("-m", "edged", "run")  # what runs it: python ENTRY --cache-dir ... -c ...
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "edged.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "edged.yaml"

    def start(self) -> DaemonProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Several daemons may run at once: never the fixed default port.
        self.config.setdefault("http", {"listen": "127.0.0.1:0"})
        self.config.setdefault("mqtt", {}).setdefault("spool", str(self.workdir / "spool.db"))
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.process = track(subprocess.Popen(
            [sys.executable, *self.entry, "--cache-dir", str(self.cache_dir), "-c", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        ))
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def http_port(self) -> int | None:
        """The port its HTTP server took (from its log); None before it says."""
        return http_port_in(self.log())

    def signal(self, sig: int) -> None:
        """Send ``sig``; a daemon that has already exited is left be (its exit is what the caller reports)."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def wait_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the daemon's log within {timeout:g} s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
