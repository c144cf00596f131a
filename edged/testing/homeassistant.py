"""A real Home Assistant Core for tests: its own venv (scripts/ha-venv.sh), its own config dir, our broker.

``HomeAssistant(directory, broker_port).start()`` writes a configuration (the
recorder on SQLite, committing at once; HTTP on a free loopback port) and an MQTT
config entry in ``.storage/core.config_entries`` (what the UI's setup would store),
starts ``python -m homeassistant --skip-pip``, and waits until its MQTT client is
subscribed to discovery. ``states()`` reads the latest state of every entity from the
recorder's database; ``registry()`` reads the entity registry (written by Home
Assistant on its own schedule, and at stop).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.testing.broker import free_port
from edged.testing.venvs import cached_venv, ready

HA_VERSION = "2025.4.4"


def ha_venv() -> Path:
    return cached_venv(f"homeassistant-{HA_VERSION}", "EDGED_HA_VENV")


def ha_available() -> bool:
    return ready(ha_venv())


_CONFIGURATION = """\
homeassistant:
  name: edged test
  latitude: 50.85
  longitude: 4.35
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: BE
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {http_port}
recorder:
  db_url: sqlite:///{db}
  commit_interval: 0
logger:
  default: warning
  logs:
    homeassistant.components.mqtt.client: info  # "birth message sent": connected and subscribed
"""


@dataclass
class State:
    entity_id: str
    state: str
    attributes: dict[str, Any]


class HomeAssistant:
    def __init__(self, directory: Path, broker_port: int, discovery_prefix: str = "homeassistant") -> None:
        self.directory = directory
        self.broker_port = broker_port
        self.discovery_prefix = discovery_prefix
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "home-assistant.out"

    @property
    def db(self) -> Path:
        return self.directory / "home-assistant_v2.db"

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "configuration.yaml").write_text(
            _CONFIGURATION.format(http_port=self.http_port, db=self.db))
        storage = self.directory / ".storage"
        storage.mkdir(exist_ok=True)
        now = "2026-01-01T00:00:00+00:00"
        entry: dict[str, Any] = {
            "created_at": now, "modified_at": now, "data": {"broker": "127.0.0.1", "port": self.broker_port},
            "discovery_keys": {}, "disabled_by": None, "domain": "mqtt", "entry_id": uuid.uuid4().hex,
            "minor_version": 2, "options": {"discovery": True, "discovery_prefix": self.discovery_prefix},
            "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user", "subentries": [],
            "title": f"127.0.0.1:{self.broker_port}", "unique_id": None, "version": 1,
        }
        (storage / "core.config_entries").write_text(json.dumps(
            {"version": 1, "minor_version": 5, "key": "core.config_entries", "data": {"entries": [entry]}}))

    def start(self, timeout: float = 180.0) -> HomeAssistant:
        self._write_config()
        log = self.log_path.open("ab")
        python = ha_venv() / "bin" / "python"
        self.process = subprocess.Popen(
            [str(python), "-m", "homeassistant", "-c", str(self.directory), "--skip-pip", "--log-file",
             str(self.directory / "home-assistant.log")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Home Assistant exited ({self.process.returncode}): {self.tail()}")
            if self.db.exists() and "birth message sent" in self.read_log():
                return self
            time.sleep(0.5)
        raise RuntimeError(f"Home Assistant did not start within {timeout:g} s: {self.tail()}")

    def read_log(self) -> str:
        parts = []
        for path in (self.log_path, self.directory / "home-assistant.log"):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.read_log().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    # -- what Home Assistant knows -------------------------------------------------------

    def states(self, prefix: str = "") -> dict[str, State]:
        """The latest recorded state of every entity whose id starts with ``prefix``."""
        if not self.db.exists():
            return {}
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as db:
            try:
                rows = db.execute(
                    "SELECT m.entity_id, s.state, a.shared_attrs FROM states s "
                    "JOIN states_meta m ON s.metadata_id = m.metadata_id "
                    "LEFT JOIN state_attributes a ON s.attributes_id = a.attributes_id "
                    "WHERE s.state_id IN (SELECT MAX(state_id) FROM states GROUP BY metadata_id) "
                    "AND m.entity_id LIKE ?", (prefix + "%",)).fetchall()
            except sqlite3.OperationalError:  # the recorder has not made its tables yet
                return {}
        return {entity: State(entity, state, json.loads(attrs) if attrs else {}) for entity, state, attrs in rows}

    def live_entities(self) -> set[str]:
        """Entities in Home Assistant's state machine now (a removed one's last recorded state is empty)."""
        return {entity for entity, state in self.states().items() if state.state}

    def history(self, entity_id: str) -> list[str]:
        """Every state the recorder wrote for ``entity_id``, oldest first."""
        if not self.db.exists():
            return []
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT s.state FROM states s JOIN states_meta m ON s.metadata_id = m.metadata_id "
                              "WHERE m.entity_id = ? ORDER BY s.state_id", (entity_id,)).fetchall()
        return [row[0] for row in rows]

    def registry(self) -> dict[str, Any]:
        """The entity and device registries, as Home Assistant last wrote them."""
        storage = self.directory / ".storage"
        out: dict[str, Any] = {}
        for name in ("core.entity_registry", "core.device_registry"):
            path = storage / name
            out[name] = json.loads(path.read_text())["data"] if path.exists() else {}
        return out
