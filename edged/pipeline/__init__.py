"""The moving parts: cameras, the scheduler, the engine's batches, the result stage and its sinks, as one
``Pipeline``. The bench imports only what is named here."""

from edged.pipeline.batch import frame_fit
from edged.pipeline.cpu import NATIVE
from edged.pipeline.pipeline import Pipeline

__all__ = ["NATIVE", "Pipeline", "frame_fit"]
