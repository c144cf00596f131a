"""The real engines with the real detector: agreement, steady-state allocation, errors."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edged.artifacts.info import load_model_info
from edged.config.models import OnnxRuntimeConfig, OpenVinoConfig
from edged.engines import registry
from edged.engines.registry import create_engine
from edged.errors import EngineUnavailable, ModelError
from edged.models.heads.raw import RawYoloDecoder
from edged.models.yolo import Letterbox
from edged.tools.enginebench import infer_once
from edged.tools.export import build_catalogue
from tests.integration.reference import ZIDANE_PEOPLE, iou
from tests.support.types import read_image

CONFIGS = [
    OpenVinoConfig(backend="openvino", model="yolov3-tiny", batch=2),
    OnnxRuntimeConfig(backend="onnxruntime", model="yolov3-tiny", batch=2),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.backend)
def test_engine_finds_the_reference_people_and_allocates_nothing_per_frame(
    config: Any, built_model: Any, cache_dir: Path, media: dict[str, Path]
) -> None:
    info = load_model_info(config, cache_dir)
    engine = create_engine(config, info, cache_dir)
    engine.start()
    try:
        info = info.with_output(engine.output_shape)
        assert info.labels is not None and info.head == "yolov5" and engine.output_shape == (2, 2535, 85)
        decoder = RawYoloDecoder(info.head, len(info.labels), 2535)
        image = read_image(media["zidane.jpg"])
        box = Letterbox.fit(image.shape[1], image.shape[0], info.width, info.height)
        buffers = [engine.input_buffer(s) for s in range(engine.num_slots)]

        def one_frame(slot: int) -> Any:
            box.apply(image, engine.input_buffer(slot)[1])  # batch item 1 of 2
            out = infer_once(engine, slot, timeout=30)
            return decoder.decode(out[1], box, 0.5)

        dets = one_frame(0)
        people = [b for b, c in zip(dets.boxes, dets.classes) if info.labels[c] == "person"]
        for ref, _ in ZIDANE_PEOPLE:
            assert max(iou(ref, b) for b in people) >= 0.9

        one_frame(1)
        tracemalloc.start()
        for i in range(20):
            one_frame(i % engine.num_slots)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tensor_bytes = 416 * 416 * 3
        assert peak < tensor_bytes // 4, f"{peak} bytes allocated at peak in steady state"
        assert all(engine.input_buffer(s) is buffers[s] for s in range(engine.num_slots))
        assert engine.describe()["backend"] == config.backend
    finally:
        engine.close()


def test_openvino_and_onnxruntime_agree(built_model: Any, cache_dir: Path, media: dict[str, Path]) -> None:
    image = read_image(media["bus.jpg"])
    outputs = []
    for config in (OpenVinoConfig(backend="openvino", model="yolov3-tiny", precision="fp32",
                                  inference_precision="f32"),
                   OnnxRuntimeConfig(backend="onnxruntime", model="yolov3-tiny")):
        info = load_model_info(config, cache_dir)
        engine = create_engine(config, info, cache_dir)
        engine.start()
        box = Letterbox.fit(image.shape[1], image.shape[0], info.width, info.height)
        box.apply(image, engine.input_buffer(0)[0])
        outputs.append(infer_once(engine, 0, timeout=30)[0].copy())
        engine.close()
    np.testing.assert_allclose(outputs[0], outputs[1], atol=2e-3)


def test_missing_runtime_is_named(monkeypatch: pytest.MonkeyPatch, built_model: Any, cache_dir: Path) -> None:
    monkeypatch.setitem(registry.BACKENDS, "openvino",
                        registry.Backend("edged.engines.openvino", "OpenVinoEngine", ("openvino_not_here",),
                                         "pip install 'edged[openvino]'"))
    config = OpenVinoConfig(backend="openvino", model="yolov3-tiny")
    expected = r"needs the 'openvino_not_here' package.*pip install 'edged\[openvino\]'"
    with pytest.raises(EngineUnavailable, match=expected):
        create_engine(config, load_model_info(config, cache_dir), cache_dir)


def test_unbuilt_model_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model 'yolov3-tiny' is not built .*run: edged model build yolov3-tiny"):
        load_model_info(OpenVinoConfig(backend="openvino", model="yolov3-tiny"), tmp_path)


def test_rebuild_is_skipped_when_nothing_changed(built_model: Any, cache_dir: Path) -> None:
    from edged.artifacts import zoo

    again = build_catalogue("yolov3-tiny", cache_dir)
    assert again.directory == built_model.directory and again.meta.created == built_model.meta.created
    listed = {m.name: m for m in zoo.list_built(cache_dir)}
    assert listed["yolov3-tiny"].meta.source.sha256 == built_model.meta.source.sha256


def test_a_slot_resubmitted_during_its_own_callback_still_completes(built_model: Any, cache_dir: Path) -> None:
    """The loop may restart a slot while OpenVINO is still running that slot's last callback
    (the callback thread can lose the GIL right after handing the result over)."""
    config = OpenVinoConfig(backend="openvino", model="yolov3-tiny")
    engine = create_engine(config, load_model_info(config, cache_dir), cache_dir)
    engine.start()
    second = threading.Event()
    resubmitted = threading.Event()

    def first_done(_: Any) -> None:  # runs on OpenVINO's callback thread
        def resubmit() -> None:
            engine.submit(0, lambda _: second.set())
            resubmitted.set()

        threading.Thread(target=resubmit).start()
        time.sleep(0.3)  # still inside the callback when the restart arrives

    try:
        engine.submit(0, first_done)
        assert second.wait(15), "the resubmitted request never completed"
        assert resubmitted.is_set()
    finally:
        engine.close()


def _as_yolov8_export(source: Path, target: Path, labels: list[str]) -> None:
    """Rewrite the real detector's [N, boxes, 5+C] head into Ultralytics' [N, 4+C, boxes]
    layout (class scores already multiplied by objectness), with the class names in the
    ONNX metadata the way an Ultralytics export stores them."""
    import onnx
    import onnx.helper as oh

    model = onnx.load(str(source))
    graph = model.graph
    out = graph.output[0]
    graph.node.extend([
        oh.make_node("Split", ["output", "v8_sizes"], ["v8_box", "v8_obj", "v8_cls"], axis=2),
        oh.make_node("Mul", ["v8_cls", "v8_obj"], ["v8_scores"]),
        oh.make_node("Concat", ["v8_box", "v8_scores"], ["v8_rows"], axis=2),
        oh.make_node("Transpose", ["v8_rows"], ["output0"], perm=[0, 2, 1]),
    ])
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([4, 1, len(labels)], np.int64), "v8_sizes"))
    graph.output.remove(out)
    graph.output.append(oh.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, ["batch", 4 + len(labels), 2535]))
    model.metadata_props.add(key="names", value=repr(dict(enumerate(labels))))
    onnx.save(model, str(target))


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_yolov8_layout_gives_the_same_detections(backend: str, built_model: Any, cache_dir: Path,
                                                 media: dict[str, Path], tmp_path: Path) -> None:
    v8_path = tmp_path / "yolov8-style.onnx"
    _as_yolov8_export(built_model.onnx, v8_path, list(built_model.meta.labels))
    image = read_image(media["bus.jpg"])
    found = []
    for model in ("yolov3-tiny", str(v8_path)):
        cls = OpenVinoConfig if backend == "openvino" else OnnxRuntimeConfig
        config = cls(backend=backend, model=model)
        info = load_model_info(config, cache_dir)
        engine = create_engine(config, info, cache_dir)
        engine.start()
        info = info.with_output(engine.output_shape)
        box = Letterbox.fit(image.shape[1], image.shape[0], info.width, info.height)
        box.apply(image, engine.input_buffer(0)[0])
        decoder = RawYoloDecoder(info.head or "yolov5", len(info.labels or ()), max(engine.output_shape[1:]))
        dets = decoder.decode(infer_once(engine, 0, timeout=30)[0], box, 0.3)
        engine.close()
        found.append((info.head, [info.labels[c] for c in dets.classes] if info.labels else [], dets))
    (head5, labels5, dets5), (head8, labels8, dets8) = found
    assert (head5, head8) == ("yolov5", "yolov8")
    assert labels8 == labels5 and "person" in labels8
    np.testing.assert_allclose(dets8.boxes, dets5.boxes, atol=1e-3)
    np.testing.assert_allclose(dets8.scores, dets5.scores, atol=1e-3)


def test_a_wide_input_model_finds_the_reference_people(private_cache: Path, media: dict[str, Path],
                                                       tmp_path: Path) -> None:
    """A 16:9 camera on a 640x384 model: less padding to infer than 640x640, same people found."""
    import re
    import subprocess
    import sys

    from edged.artifacts import zoo

    cfg, weights, names = zoo.catalogue_files("yolov3-tiny")
    text = re.sub(r"(?m)^width=\d+", "width=640", cfg.read_text())
    wide = tmp_path / "wide.cfg"
    wide.write_text(re.sub(r"(?m)^height=\d+", "height=384", text))
    done = subprocess.run([sys.executable, "-m", "edged", "export", str(wide), "--weights", str(weights),
                           "--labels", str(names), "--name", "wide", "--cache-dir", str(private_cache)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    config = OpenVinoConfig(backend="openvino", model="wide")
    info = load_model_info(config, private_cache)
    assert (info.width, info.height) == (640, 384)
    engine = create_engine(config, info, private_cache)
    engine.start()
    try:
        info = info.with_output(engine.output_shape)
        image = read_image(media["zidane.jpg"])
        box = Letterbox.fit(image.shape[1], image.shape[0], info.width, info.height)
        assert (box.new_w, box.new_h) == (640, 360)
        box.apply(image, engine.input_buffer(0)[0])
        decoder = RawYoloDecoder(info.head or "yolov5", len(info.labels or ()), max(engine.output_shape[1:]))
        dets = decoder.decode(infer_once(engine, 0, timeout=30)[0], box, 0.5)
    finally:
        engine.close()
    assert info.labels is not None
    people = [b for b, c in zip(dets.boxes, dets.classes, strict=False) if info.labels[c] == "person"]
    for ref, _ in ZIDANE_PEOPLE:
        assert max(iou(ref, b) for b in people) >= 0.75
