"""The moving parts: cameras, the scheduler, the engine's batches, the result stage and its sinks, as one
``Pipeline``. The bench imports only what is named here. The names load on first use, so a module that needs one
part (``edged.pipeline.stats``) does not load the whole pipeline."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edged.pipeline.batch import frame_fit
    from edged.pipeline.cpu import NATIVE
    from edged.pipeline.pipeline import Pipeline

__all__ = ["NATIVE", "Pipeline", "frame_fit"]
_HOMES = {"NATIVE": "edged.pipeline.cpu", "Pipeline": "edged.pipeline.pipeline", "frame_fit": "edged.pipeline.batch"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'edged.pipeline' has no attribute {name!r}")
