"""Every output layout with real weights: the real YOLOv3-tiny rewritten by ONNX graph surgery into each layout
(edged.testing.layouts), exported with `edged export` (which must say what it found), run by the real OpenVINO
engine, and compared box for box with the raw path on the same frames; then each through `edged run` to MQTT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edged.artifacts.info import load_model_info
from edged.config.models import AnyEngineConfig, KServeConfig, OnnxRuntimeConfig, OpenVinoConfig
from edged.engines.registry import create_engine
from edged.models.agreement import box_iou
from edged.models.labels import COCO80
from edged.models.yolo import Detections
from edged.testing.broker import Mosquitto
from edged.testing.layouts import FUSED, LAYOUTS, rewrite, rewrite_fused
from edged.testing.media import make_clip
from edged.testing.triton import TritonServer, triton_available
from edged.tools.enginebench import detect_frames
from edged.tools.remote import write_remote_model
from tests.support.frames import write_frames
from tests.support.types import MakeDaemon, Media, Subscribe

pytestmark = pytest.mark.integration

FOUND = {"end2end": "end-to-end, 300 boxes, no NMS needed, 80 labels from the model's metadata, letterbox, RGB 0..1",
         "rtdetr": "Ultralytics RT-DETR, 300 boxes, no NMS needed, 80 labels from the model's metadata, stretched "
                   "to the input, RGB 0..1",
         "detr": "DETR queries, 300 boxes, no NMS needed, 80 labels from the model's metadata, stretched to the "
                 "input, RGB 0..1",
         "yolox": "raw YOLOX grid (strides 8, 16, 32), 3549 boxes, 80 labels from the model's metadata, letterbox "
                  "in the top-left corner, BGR 0..255",
         "dfine": "D-FINE/DEIM/RT-DETRv2 (orig_target_sizes fed as the input size): end-to-end, 300 boxes, no NMS "
                  "needed, 80 labels from the model's metadata, stretched to the input, RGB 0..1",
         "rfdetr": "RF-DETR (ImageNet mean/std folded in, COCO's 91 ids mapped to 80): DETR queries, 300 boxes, no "
                   "NMS needed, 80 labels from the model's metadata, stretched to the input, RGB 0..1",
         "hf-detr": "Hugging Face DETR-family (logits and pred_boxes into DETR queries): DETR queries, 300 boxes, no "
                    "NMS needed, 80 labels from the model's metadata, stretched to the input, RGB 0..1",
         "yolonas-raw": "YOLO-NAS without NMS (boxes and scores into the YOLOv8 layout): raw YOLOv8-style head, 2535 "
                        "boxes, 80 labels from the model's metadata, letterbox, RGB 0..1",
         "yolonas-flat": "YOLO-NAS with NMS inside (flat [K, 7], one image): end-to-end, 300 boxes, no NMS needed, 80 "
                         "labels from the model's metadata, letterbox, RGB 0..1",
         "yolonas-batched": "YOLO-NAS with NMS inside (batched: rows past num_predictions scored 0): end-to-end, 300 "
                            "boxes, no NMS needed, 80 labels from the model's metadata, letterbox, RGB 0..255 (UINT8 "
                            "input, scaled inside the model)"}


def square(image: np.ndarray | None) -> np.ndarray:
    """The middle square: there a stretch (DETR's feed) and a letterbox put the same pixels in the input."""
    assert image is not None
    h, w = image.shape[:2]
    s = min(h, w)
    return np.ascontiguousarray(image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s])


@pytest.fixture(scope="module")
def frames(media: Media) -> list[np.ndarray]:
    out = [square(cv2.imread(str(media[name]))) for name in ("bus.jpg", "zidane.jpg")]
    capture = cv2.VideoCapture(str(media["street.mp4"]))
    for index in range(60):
        ok, frame = capture.read()
        if ok and index % 6 == 0:
            out.append(square(frame))
    capture.release()
    return out


@pytest.fixture(scope="module")
def exported(built_model: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Each layout rewritten and exported into a cache of its own; what `edged export` printed for each."""
    directory = tmp_path_factory.mktemp("layouts")
    cache = directory / "cache"
    printed = {}
    for layout in (*LAYOUTS, *FUSED):
        make = rewrite if layout in LAYOUTS else rewrite_fused
        source = make(built_model.path("onnx"), directory / f"y3-{layout}.onnx", layout, list(COCO80))
        done = subprocess.run([sys.executable, "-m", "edged", "export", str(source), "--name", f"y3-{layout}",
                               "--cache-dir", str(cache)], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        printed[layout] = done.stdout
    return cache, printed


def detect(model: str, cache: Path, frames: list[np.ndarray]) -> list[Detections]:
    return detect_with(OpenVinoConfig(backend="openvino", model=model, inference_precision="f32"), cache, frames)


def detect_with(config: AnyEngineConfig, cache: Path, frames: list[np.ndarray]) -> list[Detections]:
    """Each frame's detections as the daemon letterboxes and decodes them, on the engine ``config`` makes."""
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    try:
        return detect_frames(engine, info.with_output(engine.output_shape), frames, 0.1)
    finally:
        engine.close()


@pytest.mark.parametrize("layout", [*LAYOUTS, *FUSED])
def test_each_layout_matches_the_raw_path_box_for_box(layout: str, exported: tuple[Path, dict[str, str]],
                                                      frames: list[np.ndarray], cache_dir: Path) -> None:
    cache, printed = exported
    assert f"found: {FOUND[layout]}" in printed[layout]
    listed = subprocess.run([sys.executable, "-m", "edged", "model", "list", "--cache-dir", str(cache)],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert f"layout: {FOUND[layout]}" in listed
    boxes = same_boxes(detect("yolov3-tiny", cache_dir, frames), detect(f"y3-{layout}", cache, frames))
    print(f"{layout}: {boxes} boxes on {len(frames)} frames, each IoU >= 0.99 with the raw path")


def same_boxes(raw: list[Detections], got: list[Detections]) -> int:
    """Box for box: the same count, classes and scores per frame, each pair IoU >= 0.99; the boxes compared."""
    boxes = 0
    for frame, (a, b) in enumerate(zip(raw, got, strict=True)):
        assert len(a) == len(b), (frame, len(a), len(b))
        oa, ob = np.argsort(-a.scores, kind="stable"), np.argsort(-b.scores, kind="stable")
        assert a.classes[oa].tolist() == b.classes[ob].tolist()
        if len(a):
            assert np.diag(box_iou(a.boxes[oa], b.boxes[ob])).min() >= 0.99
            assert np.allclose(a.scores[oa], b.scores[ob], atol=1e-3)
        boxes += len(a)
    assert boxes >= 15, boxes  # enough objects to mean something
    return boxes


@pytest.mark.parametrize("layout", ["dfine", "yolonas-batched", "yolox"])
def test_onnx_runtime_reads_the_exported_layouts_as_openvino_does(layout: str, exported: tuple[Path, dict[str, str]],
                                                                  frames: list[np.ndarray], cache_dir: Path) -> None:
    """The other local engine on the fused graphs (NMS, TopK, CumSum inside) and on YOLOX's corner letterbox."""
    cache, _ = exported
    got = detect_with(OnnxRuntimeConfig(backend="onnxruntime", model=f"y3-{layout}"), cache, frames)
    same_boxes(detect("yolov3-tiny", cache_dir, frames), got)


@pytest.mark.skipif(not triton_available(), reason="no PyTriton venv: scripts/triton-venv.sh builds it")
def test_a_fused_layout_served_by_a_real_triton_decodes_as_locally(exported: tuple[Path, dict[str, str]],
                                                                   frames: list[np.ndarray], cache_dir: Path,
                                                                   tmp_path: Path) -> None:
    """The KServe server gets the model `edged model remote` writes from the fused export (D-FINE's two inputs and
    three outputs made one output; the pixels' conversion inside); edged decodes its answers."""
    cache, _ = exported
    served = write_remote_model("y3-dfine", cache, tmp_path / "repo")[0]
    server = TritonServer(tmp_path / "triton", served, "y3-dfine").start()
    try:
        got = detect_with(KServeConfig(backend="kserve", model="y3-dfine", url=server.url), cache, frames)
    finally:
        server.stop()
    boxes = same_boxes(detect("yolov3-tiny", cache_dir, frames), got)
    print(f"dfine through Triton: {boxes} boxes, each IoU >= 0.99 with the raw path run locally")


def test_a_model_of_no_known_layout_is_one_line(built_model: Any, tmp_path: Path) -> None:
    """A second input and a second output of no family edged knows (D-FINE's three outputs are fused; these are
    not its): refused, naming every shape."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(built_model.path("onnx")))
    model.graph.input.append(helper.make_tensor_value_info("orig_target_sizes", TensorProto.INT64, [1, 2]))
    model.graph.node.append(helper.make_node("Identity", ["orig_target_sizes"], ["sizes_out"]))
    model.graph.output.append(helper.make_tensor_value_info("sizes_out", TensorProto.INT64, [1, 2]))
    source = tmp_path / "two.onnx"
    onnx.save(model, str(source))
    done = subprocess.run([sys.executable, "-m", "edged", "export", str(source), "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "inputs images [batch, 3, 416, 416], orig_target_sizes [1, 2]; outputs output [batch, 2535, 85], " \
           "sizes_out [1, 2]" in lines[0] and "end-to-end [N, K, 6]" in lines[0]


@pytest.mark.parametrize("layout", ["end2end", "rtdetr", "yolox"])
def test_each_layout_through_edged_run_to_mqtt(layout: str, exported: tuple[Path, dict[str, str]], media: Media,
                                               tmp_path: Path, broker: Mosquitto, subscribe: Subscribe,
                                               daemon: MakeDaemon, cache_dir: Path) -> None:
    cache, _ = exported
    photo = tmp_path / "bus-square.jpg"
    cv2.imwrite(str(photo), square(cv2.imread(str(media["bus.jpg"]))))
    clip = make_clip(photo, tmp_path / "bus-square.mp4", 20.0)
    capture = cv2.VideoCapture(str(clip))
    ok, first = capture.read()
    capture.release()
    assert ok
    [expected] = detect("yolov3-tiny", cache_dir, [first])  # the raw path on the clip's own pixels
    sub = subscribe(broker.port, "edged/lay/#")
    daemon({"device_id": "lay", "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "engine": {"backend": "openvino", "model": f"y3-{layout}", "inference_precision": "f32"},
            "cameras": {"bus": {"url": str(clip), "loop": True, "fps": 5, "detect": {"min_score": 0.3}}}},
           cache=cache)
    payload = sub.wait_count("edged/lay/bus/detections", 3, timeout=90)[-1].json()
    published = [(d["label"], np.array(d["box"]), d["score"]) for d in payload["detections"]]
    wanted = [(COCO80[int(c)], b, float(s)) for c, b, s in zip(expected.classes, expected.boxes, expected.scores,
                                                               strict=True)]
    assert sum(1 for _, _, s in wanted if s >= 0.45) >= 3  # the bus and people

    def found(item: tuple[str, np.ndarray, float], among: list[tuple[str, np.ndarray, float]]) -> bool:
        return any(label == item[0] and box_iou(box[None], item[1][None])[0, 0] >= 0.95 for label, box, _ in among)

    # A decoder (PyAV here, OpenCV above) may round a pixel differently: compare with a margin on the score.
    assert all(found(w, published) for w in wanted if w[2] >= 0.45), (published, wanted)
    assert all(found(p, wanted) for p in published if p[2] >= 0.45), (published, wanted)


def test_the_bench_rows_per_layout(built_model: Any, cache_dir: Path, media: Media, tmp_path: Path) -> None:
    """`edged bench`'s layout section, short: a row per layout with the bare engine, edged on 4 cameras and the
    decode cost; what the figures are is the bench's business, that each was measured is this test's."""
    from edged.artifacts.zoo import copy_base
    from edged.bench.layouts import markdown, run_layouts

    cache = tmp_path / "cache"
    copy_base(built_model, cache)
    notes: list[str] = []
    section = run_layouts(media["street.mp4"].parent, cache, {"backend": "openvino", "model": "yolov3-tiny",
                                                               "inference_precision": "f32"}, 1.0, 2.0, notes.append)
    assert {row.split(" (")[0] for row in section["rows"]} == {"yolov5", *LAYOUTS, *FUSED}
    assert "yolonas-raw (yolov8)" in section["rows"] and "dfine (end2end)" in section["rows"]
    for layout, row in section["rows"].items():
        assert row["bare_fps"] > 0 and row["edged_fps"] > 0 and row["decode_core_ms"] > 0, (layout, row)
        assert row["boxes_per_frame"] > 0, (layout, row)
    boxes = {row["boxes_per_frame"] for row in section["rows"].values()}
    assert len(boxes) == 1, section["rows"]  # the same network: the same objects, whatever the layout
    text = "\n".join(markdown(section))
    assert "| end2end | [1, 300, 6] |" in text and "Decoding cost against the raw head" in text
    assert len(notes) == len(section["rows"])


@pytest.mark.parametrize("layout", ["dfine", "yolonas-flat"])
def test_int8_and_its_gate_on_a_fused_layout(layout: str, exported: tuple[Path, dict[str, str]], media: Media,
                                             tmp_path: Path) -> None:
    """INT8 through NNCF and the agreement gate, which compares decoded detections whatever the layout: a DETR-style
    end-to-end model (NMS and TopK inside the graph) and a YOLO-NAS NMS-inside one are quantised and gated."""
    from edged.artifacts import zoo
    from edged.artifacts.meta import read_sidecar

    cache, _ = exported
    frames = write_frames(media["street.mp4"], tmp_path / "frames", 240, 8, square)
    built = zoo.find_built(f"y3-{layout}", cache)
    assert built is not None
    done = subprocess.run([sys.executable, "-m", "edged", "export", str(built.onnx), "--name", f"y3-{layout}-q",
                           "--int8", "--calibration", str(frames), "--cache-dir", str(cache)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    quantised = zoo.find_built(f"y3-{layout}-q", cache)
    assert quantised is not None and quantised.has("int8")
    meta = read_sidecar(quantised.path("int8"))
    assert meta is not None and meta.calibration is not None and not meta.calibration.forced
    assert meta.calibration.map50 >= 0.9 and meta.head == quantised.meta.head
    report = json.loads((quantised.directory / "int8-report.json").read_text())
    # A DETR-family model (D-FINE's, fed stretched) is quantised both as a CNN and as a transformer; the gate kept one
    assert len(report["tried"]) == (2 if layout == "dfine" else 1), report["tried"]
    assert report["preset"] in report["tried"] and report["tried"][report["preset"]] == max(report["tried"].values())
    print(f"{layout}: INT8 mAP@0.5 against FP32 {meta.calibration.map50:.3f}; tried {report['tried']}")
