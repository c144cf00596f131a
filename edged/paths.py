"""Where edged keeps things: the model cache and the QoS 1 spool.

Each function takes the environment as a mapping (never reads ``os.environ`` itself),
so callers decide and tests can pass their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """--cache-dir, else $EDGED_CACHE_DIR, systemd's $CACHE_DIRECTORY, $XDG_CACHE_HOME/edged, ~/.cache/edged."""
    if env.get("EDGED_CACHE_DIR"):
        return Path(env["EDGED_CACHE_DIR"])
    if env.get("CACHE_DIRECTORY"):
        return Path(env["CACHE_DIRECTORY"].split(":")[0])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "edged"


def default_spool_path(env: Mapping[str, str], device_id: str) -> Path:
    """systemd's $STATE_DIRECTORY, else $XDG_STATE_HOME/edged, else ~/.local/state/edged."""
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0]) / f"spool-{device_id}.db"
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "edged" / f"spool-{device_id}.db"
