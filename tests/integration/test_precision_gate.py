"""The precision gate with the real OpenVINO engine and detector on this machine's CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import helper as oh
from onnx import numpy_helper

from edged.config.models import OpenVinoConfig
from edged.engines.precision import candidates, read_traits
from edged.tools.precision_gate import choose, gate_file, run_gate
from tests.support.types import Media


def sample_frames(media: Media, count: int = 12) -> list[np.ndarray]:
    frames = [cv2.imread(str(media["bus.jpg"])), cv2.imread(str(media["zidane.jpg"]))]
    capture = cv2.VideoCapture(str(media["street.mp4"]))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    for index in np.linspace(0, total - 1, count).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = capture.read()
        if ok:
            frames.append(frame)
    capture.release()
    return [f for f in frames if f is not None]


def test_auto_takes_the_fastest_precision_that_passes_and_keeps_the_verdict(private_cache: Path,
                                                                           media: Media) -> None:
    config = OpenVinoConfig(backend="openvino", model="yolov3-tiny")
    for kept in private_cache.rglob("gates"):  # verdicts that came with the copied model
        shutil.rmtree(kept)
    traits = read_traits("CPU")
    frames = sample_frames(media)
    asked: list[int] = []

    def provide() -> list[np.ndarray]:
        asked.append(len(frames))
        return frames

    first = choose(config, private_cache, provide, threshold=0.4)
    fastest = candidates(traits)[0]
    if fastest == "f32":  # a CPU without bf16: nothing to gate, no frames needed
        assert first.precision == "f32" and first.results == [] and asked == []
        assert "neither AMX nor AVX-512 BF16" in first.reason
        return
    [result] = first.results
    assert result.precision == fastest and result.compiled == fastest  # read back from the compiled model
    assert result.passed and result.map50 is not None and result.map50 >= 0.95 and result.finite
    assert result.reference_boxes >= 5 and result.candidate_fps > 0 and result.reference_fps > 0
    assert first.precision == fastest and asked == [len(frames)]
    kept = json.loads(gate_path_for(config, private_cache, fastest).read_text())
    assert kept["passed"] and kept["map50"] == result.map50
    again = choose(config, private_cache, provide, threshold=0.4)  # the kept verdict: no frames, no gate
    assert again.precision == fastest and asked == [len(frames)]


def gate_path_for(config: OpenVinoConfig, cache: Path, precision: str) -> Path:
    return gate_file(config, cache, read_traits("CPU"), precision)[0]


def nan_model(path: Path) -> Path:
    """A YOLO-shaped model ([1, 10, 7]: 2 classes) whose every output is NaN."""
    nodes = [
        oh.make_node("ReduceSum", ["images"], ["total"], keepdims=1),
        oh.make_node("Reshape", ["total", "shape"], ["one"]),
        oh.make_node("Mul", ["one", "zero"], ["nothing"]),
        oh.make_node("Add", ["nothing", "nan"], ["output0"]),
    ]
    inits = [numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape"),
             numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero"),
             numpy_helper.from_array(np.full((1, 10, 7), np.nan, np.float32), "nan")]
    graph = oh.make_graph(nodes, "nan", [oh.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
                          [oh.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, [1, 10, 7])], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_nan_output_fails_the_gate_and_is_never_no_detections(tmp_path: Path, media: Media) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    config = OpenVinoConfig(backend="openvino", model=str(nan_model(tmp_path / "nan.onnx")), labels=labels)
    result = run_gate(config, tmp_path / "cache", sample_frames(media, 2), "f32", threshold=0.4, speed_seconds=0)
    assert not result.passed and not result.finite
    assert result.reason == "the candidate's output holds NaN or inf"
