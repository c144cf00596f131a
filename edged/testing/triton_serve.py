"""Serve an edged model on a real Triton Inference Server with PyTriton (run by the Triton venv's Python).

    python triton_serve.py --model model.onnx --name yolov3-tiny --grpc-port P --http-port Q --metrics-port R

The model is the one ``edged model export --remote`` writes: UINT8 ``[H, W, 3]`` BGR in,
the raw head out, run by OpenVINO on the CPU inside the Python callable PyTriton binds.
Standalone on purpose: it imports numpy, openvino and pytriton only (PyTriton pins
numpy<2, so it lives in a venv of its own: scripts/triton-venv.sh), never edged.
"""

from __future__ import annotations

import argparse

import numpy as np
import openvino as ov
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    args = parser.parse_args()
    compiled = ov.Core().compile_model(args.model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    height, width = (int(d) for d in compiled.input(0).shape[1:3])
    out_shape = tuple(int(d) for d in compiled.output(0).shape[1:])
    request = compiled.create_infer_request()

    @batch
    def infer(frames_bgr_u8: np.ndarray) -> dict[str, np.ndarray]:
        outs = [request.infer({0: frame[None]})[compiled.output(0)][0] for frame in frames_bgr_u8]
        return {"output": np.stack(outs).astype(np.float32)}

    config = TritonConfig(grpc_port=args.grpc_port, http_port=args.http_port, metrics_port=args.metrics_port,
                          log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(model_name=args.name, infer_func=infer,
                    inputs=[Tensor(name="frames_bgr_u8", dtype=np.uint8, shape=(height, width, 3))],
                    outputs=[Tensor(name="output", dtype=np.float32, shape=out_shape)],
                    config=ModelConfig(max_batch_size=8))
        print(f"serving {args.name} ({height}x{width} -> {out_shape}) on gRPC port {args.grpc_port}", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
