"""``edged model remote NAME --out DIR``: a model repository entry for a KServe v2 server (Triton, OVMS).

Writes ``DIR/NAME/1/model.onnx`` (the built model wrapped to take what edged sends:
UINT8 ``[batch, H, W, 3]`` BGR, converted and scaled inside the graph, giving the raw
head) and ``DIR/NAME/config.pbtxt`` for Triton's ONNX Runtime backend. Point the
server at ``DIR`` and an ``engine: {backend: kserve, url: ..., model: NAME}`` at the
server: pre- and post-processing stay edged's.
"""

from __future__ import annotations

from pathlib import Path

from edged.artifacts import zoo
from edged.artifacts.meta import read_sidecar
from edged.artifacts.onnx_wrap import wrap_u8_bgr
from edged.errors import ModelError


def write_remote_model(name: str, cache: Path, out: Path, batch: int = 1) -> tuple[Path, Path]:
    path = zoo.resolve(name, cache, "onnxruntime", "fp32")
    meta = read_sidecar(path)
    if meta is None:
        raise ModelError(f"{path}: no sidecar; build the model with 'edged model build' or 'edged export'")
    wrapped = wrap_u8_bgr(path, batch, meta.input.color, meta.input.scale)
    model_dir = out / meta.name / "1"
    model_dir.mkdir(parents=True, exist_ok=True)
    model = model_dir / "model.onnx"
    model.write_bytes(wrapped)
    h, w = meta.input.height, meta.input.width
    config = out / meta.name / "config.pbtxt"
    config.write_text(
        f'name: "{meta.name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
        f'input [{{ name: "frames_bgr_u8" data_type: TYPE_UINT8 dims: [ {batch}, {h}, {w}, 3 ] }}]\n')
    return model, config
