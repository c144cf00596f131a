"""Start and control a local RTSP server (rtsp_server.py, GStreamer) as a child process:
for the tests, the benchmarks and anyone who wants to try edged against a real stream."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edged.testing.children import track

SCRIPT = Path(__file__).with_name("rtsp_server.py")


def gi_python() -> str | None:
    """A Python that can import GstRtspServer: this one, else Debian's."""
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if candidate and subprocess.run([candidate, "-c", probe], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@dataclass
class RtspServer:
    streams: dict[str, Path]
    port: int = 0
    process: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)

    def start(self, timeout: float = 15.0) -> RtspServer:
        python = gi_python()
        if python is None:
            raise RuntimeError(
                "no Python with PyGObject and GstRtspServer (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0)"
            )
        specs = [f"{name}={path}" for name, path in self.streams.items()]
        self.process = track(subprocess.Popen(
            [python, str(SCRIPT), "--port", str(self.port), *specs],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
