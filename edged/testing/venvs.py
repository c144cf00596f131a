"""Venvs of their own for real parts whose dependencies clash with edged's (Home Assistant on Python 3.13,
PyTriton with numpy<2): built once by a script in scripts/, cached under ~/.cache/edged/venvs."""

from __future__ import annotations

import os
from pathlib import Path


def cached_venv(name: str, override: str) -> Path:
    """``$<override>``, else ``$XDG_CACHE_HOME/edged/venvs/<name>`` (``~/.cache`` by default)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edged" / "venvs" / name
    return Path(os.environ.get(override, default))


def ready(venv: Path) -> bool:
    """The building script finished (it writes the marker last)."""
    return (venv / ".edged-ready").is_file()
