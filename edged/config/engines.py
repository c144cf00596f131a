"""The inference engines: OpenVINO, ONNX Runtime, TensorRT and a KServe v2 server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (
    Field,
)

from edged.config.base import Strict, TlsConfig


class _EngineBase(Strict):
    model: str = Field(min_length=1, description="a model name built by 'edged model build', or a path")
    labels: Path | None = Field(None, description="class names, one a line, for a model without a sidecar")
    batch: int = Field(1, ge=1, le=64)
    batch_window_ms: float = Field(5.0, ge=0, le=1000)
    num_requests: int | None = Field(
        None, ge=1, le=16,
        description="input buffers and requests in flight; unset: OpenVINO's optimum plus one being prepared, else 2",
    )
    iou: float = Field(0.45, gt=0, le=1)
    max_detections: int = Field(100, ge=1, le=1000)
    hang_timeout_s: float = Field(30.0, ge=1, le=3600, description="a batch that takes longer means the engine hung")
    timeout_s: float = Field(2.0, gt=0, le=600, description="in a chain: a batch not back within this long fails "
                                                           "this engine over to the next")


class OpenVinoConfig(_EngineBase):
    backend: Literal["openvino"]
    device: str = "CPU"
    precision: Literal["auto", "fp32", "fp16", "int8"] = Field(
        "auto", description="which model variant to load; auto: INT8 where one is installed (it passed its gate), "
                            "else FP32")
    inference_precision: Literal["auto", "f32", "f16", "bf16"] = Field(
        "auto", description="precision of float layers (OpenVINO's INFERENCE_PRECISION_HINT); auto: the fastest "
                            "one that passes the accuracy gate against f32 on this device (see README)"
    )
    performance_hint: Literal["latency", "throughput"] = "throughput"
    num_streams: int | None = Field(None, ge=1, le=64)
    num_threads: int | None = Field(None, ge=1, le=256)
    cache_dir: Path | None = None


class OnnxRuntimeConfig(_EngineBase):
    backend: Literal["onnxruntime"]
    precision: Literal["fp32"] = "fp32"
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    num_threads: int | None = Field(None, ge=1, le=256)


class TensorRtConfig(_EngineBase):
    backend: Literal["tensorrt"]
    precision: Literal["fp32", "fp16", "int8"] = Field("int8", description="which engine to load")
    gpu: int = Field(0, ge=0, le=16, description="CUDA device index")


class KServeConfig(_EngineBase):
    """A remote server speaking KServe v2 / the Open Inference Protocol over gRPC (Triton, OpenVINO Model Server,
    KServe, MLServer). ``model`` is the local model edged decodes for (its labels, head and input size)."""

    backend: Literal["kserve"]
    url: str = Field(min_length=1, pattern=r"^[^/\s]+:\d+$",
                     description="host:port of the server's gRPC endpoint (Triton's is 8001)")
    model_name: str | None = Field(None, min_length=1, description="the model's name on the server; unset: "
                                                                    "the local model's name")
    model_version: str = Field("", pattern=r"^\d*$", description="'' : the server's choice (its latest)")
    precision: Literal["fp32"] = Field("fp32", description="the local model edged reads labels and shapes from")
    tls: TlsConfig | None = Field(None, description="gRPC over TLS: the server's CA, a client certificate")


EngineConfig = Annotated[Union[OpenVinoConfig, OnnxRuntimeConfig, TensorRtConfig, KServeConfig],
                         Field(discriminator="backend")]
AnyEngineConfig = Union[OpenVinoConfig, OnnxRuntimeConfig, TensorRtConfig, KServeConfig]
