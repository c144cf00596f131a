"""Shared fixtures. Integration tests start real parts themselves, on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edged.paths import default_cache_dir
from edged.tools.export import build_catalogue


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The project cache (built models, sample media), shared with `edged demo`."""
    path = default_cache_dir(dict(os.environ))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def media(cache_dir: Path) -> dict[str, Path]:
    from edged.testing.media import prepare_media

    return prepare_media(cache_dir / "media")


@pytest.fixture(scope="session")
def built_model(cache_dir: Path):  # type: ignore[no-untyped-def]

    return build_catalogue("yolov3-tiny", cache_dir)


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "telemetry"


@pytest.fixture(scope="session")
def telemetry_fixtures() -> Path:
    """Telemetry recorded from real Jetsons and Raspberry Pis (see SOURCES.md there)."""
    if not FIXTURES.is_dir():
        pytest.fail(f"telemetry fixtures missing: {FIXTURES}")
    return FIXTURES


def make_thermal_tree(root: Path, table: str) -> Path:
    """A /sys/class/thermal tree from a fixture table (zone, type, temp; '-' = absent)."""
    for line in table.splitlines()[1:]:
        if not line.strip():
            continue
        zone, kind, temp = line.split("\t")
        directory = root / "sys" / "class" / "thermal" / zone
        directory.mkdir(parents=True, exist_ok=True)
        if kind != "-":
            (directory / "type").write_text(kind + "\n")
        if temp != "-":
            (directory / "temp").write_text(temp + "\n")
    return root
