"""A local mosquitto broker, started from a generated config: for the demo, the
tests and the bench. Never used by the daemon itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from edged.errors import EdgedError
from edged.testing.children import track


class BrokerError(EdgedError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float, what: str, log: Path) -> bool:
    """Until ``process`` listens on 127.0.0.1:``port`` (True) or ``timeout`` passes (False); BrokerError if it
    exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"{what} exited with {process.returncode}; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


@dataclass
class Mosquitto:
    """One mosquitto process listening on 127.0.0.1:``port``."""

    directory: Path
    port: int = 0
    tls: TlsFiles | None = None
    users: dict[str, str] = field(default_factory=dict)  # user -> password; empty: anonymous
    persistence: bool = False
    require_certificate: bool = False  # TLS: clients must present a certificate signed by the CA
    acl: str = ""  # mosquitto acl_file text ("user NAME" / "topic readwrite edged/#" lines); empty: none
    extra: str = ""  # more mosquitto.conf lines (a bridge: "connection ...", "address ...", "topic ...")
    process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1"]
        if os.geteuid() == 0:
            lines.append("user root")  # stay root so it can read the files we wrote
        if self.users:
            pw_file = self.directory / "passwords"
            pw_file.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw_file), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.cert}", f"keyfile {self.tls.key}"]
            if self.require_certificate:
                lines.append("require_certificate true")
        if self.acl:
            acl_file = self.directory / "acl"
            acl_file.write_text(self.acl)
            lines.append(f"acl_file {acl_file}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.directory}/", "autosave_interval 1"]
        lines += ["log_dest stderr", "log_type error", "log_type warning", "log_type notice"]
        if self.extra:
            lines += self.extra.strip().splitlines()
        conf = self.directory / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> Mosquitto:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
        if not self.port:
            self.port = free_port()
        conf = self._write_config()
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = track(subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log))
        if wait_listening(self.process, self.port, timeout, "mosquitto", self.directory / "mosquitto.log"):
            return self
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout:g} s")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False, qos: int = 1,
                username: str | None = None, password: str | None = None) -> None:
        """One message, as another client would send it (mosquitto_pub); QoS 1 waits for the broker."""
        # An empty payload is a null message (-n): that is what clears a retained topic.
        command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-q", str(qos), "-t", topic,
                   "-s" if payload else "-n"]
        if retain:
            command.append("-r")
        if username is not None:
            command += ["-u", username, "-P", password or ""]
        subprocess.run(command, input=(payload.encode() if isinstance(payload, str) else payload) or None, check=True,
                       timeout=10, capture_output=True)
