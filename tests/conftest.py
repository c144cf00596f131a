"""Shared fixtures. Integration tests start real parts themselves, on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edged.cli import default_cache_dir


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
    from edged.tools.media import prepare_media

    return prepare_media(cache_dir / "media")


@pytest.fixture(scope="session")
def built_model(cache_dir: Path):  # type: ignore[no-untyped-def]
    from edged.models import zoo

    return zoo.build("yolov3-tiny", cache_dir)
