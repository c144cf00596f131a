"""A real Triton Inference Server for tests and the bench: PyTriton in a venv of its own (scripts/triton-venv.sh).

``TritonServer(directory, model_onnx, name).start()`` runs ``triton_serve.py`` with that
venv's Python on free loopback ports and waits until the model answers on gRPC;
``kill()`` is a SIGKILL of the whole process group (Python and tritonserver), the way a
crash looks to a client; ``start()`` again brings it back on the same ports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from edged.testing.broker import free_port
from edged.testing.venvs import cached_venv, ready

PYTRITON = "0.7.0"


def triton_venv() -> Path:
    return cached_venv(f"pytriton-{PYTRITON}", "EDGED_TRITON_VENV")


def triton_available() -> bool:
    return ready(triton_venv())


class TritonServer:
    def __init__(self, directory: Path, model: Path, name: str) -> None:
        self.directory = directory
        self.model = model
        self.name = name
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "triton.log"

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 120.0) -> TritonServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        script = Path(__file__).with_name("triton_serve.py")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.process = subprocess.Popen(
            [str(triton_venv() / "bin" / "python"), str(script), "--model", str(self.model), "--name", self.name,
             "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
             "--metrics-port", str(self.metrics_port)],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Triton exited ({self.process.returncode}): {self.tail()}")
            if self.ready():
                return self
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"Triton did not serve {self.name} within {timeout:g} s: {self.tail()}")

    def ready(self) -> bool:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        try:
            client = grpcclient.InferenceServerClient(self.url)
            try:
                return bool(client.is_model_ready(self.name, client_timeout=1.0))
            finally:
                client.close()
        except InferenceServerException:
            return False

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, the whole group: a crash, not a shutdown."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
