"""A local RabbitMQ with its MQTT plugin (Debian's 3.10 speaks MQTT 3.1.1 only), started as a plain process
from a directory of its own: config, enabled plugins, Mnesia, node name, Erlang distribution and epmd ports.
For the tests: a broker other than mosquitto, as some users run. Never used by the daemon itself."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edged.testing.broker import BrokerError, free_port, wait_listening
from edged.testing.children import track

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def available() -> bool:
    return Path(SERVER).is_file() and bool(_epmd())


def _epmd() -> str | None:
    found = shutil.which("epmd") or sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@dataclass
class RabbitMq:
    """One RabbitMQ node; MQTT on 127.0.0.1:``port`` (anonymous clients are the guest user)."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    epmd_port: int = 0

    def _environment(self) -> dict[str, str]:
        d = self.directory
        amqp, dist = free_port(), free_port()
        self.epmd_port = self.epmd_port or free_port()
        (d / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (d / "rabbitmq.conf").write_text("\n".join([
            f"listeners.tcp.default = 127.0.0.1:{amqp}",
            f"mqtt.listeners.tcp.default = 127.0.0.1:{self.port}",
            "mqtt.allow_anonymous = true",
            "loopback_users = none",
            "log.console = true", "log.console.level = warning", "log.file = false", ""]))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return env | {
            "HOME": str(d), "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"), "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"), "RABBITMQ_NODENAME": f"edged{self.port}@localhost",
            "RABBITMQ_DIST_PORT": str(dist), "ERL_EPMD_PORT": str(self.epmd_port),
        }

    def start(self, timeout: float = 90.0) -> RabbitMq:
        if not available():
            raise BrokerError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        env = self._environment()
        log = (self.directory / "rabbitmq.log").open("ab")
        self.process = track(subprocess.Popen([SERVER], env=env, cwd=self.directory, stdout=log, stderr=log,
                                              start_new_session=True))
        if wait_listening(self.process, self.port, timeout, "rabbitmq-server", self.directory / "rabbitmq.log"):
            return self
        self.stop()
        raise BrokerError(f"RabbitMQ's MQTT listener was not up on port {self.port} within {timeout:g} s")

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        epmd = _epmd()
        if epmd and self.epmd_port:  # the node's epmd daemonised itself: end it too
            subprocess.run([epmd, "-port", str(self.epmd_port), "-kill"], capture_output=True, timeout=10,
                           check=False)
