"""How ``engine.model`` is read: a bare model name in the cache, or a path to a model file."""

from __future__ import annotations

MODEL_SUFFIXES = (".onnx", ".xml", ".engine", ".plan")


def is_model_name(spec: str) -> bool:
    """A bare name (``yolov3-tiny``) rather than a path to a model file."""
    return "/" not in spec and not spec.endswith(MODEL_SUFFIXES) and not spec.endswith((".cfg", ".pt"))
