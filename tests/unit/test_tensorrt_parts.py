"""The TensorRT path without TensorRT: batch feeding, the calibration cache, engine records,
the tensor API's I/O (with a fake trt module), and refusing an engine built for another device."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edged.artifacts.meta import InputMeta, ModelMeta, SourceMeta
from edged.artifacts.trt_meta import check_engine_matches, engine_name, pick_engine
from edged.artifacts.zoo import BuiltModel
from edged.engines.tensorrt import check_version, describe_io, numpy_dtype
from edged.errors import EngineError, ModelError
from edged.tools.tensorrt_build import CalibrationCache, CalibrationFeeder, engine_record, matching_calibration


def images(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        img = np.zeros((90, 160, 3), np.uint8)
        img[:, :, 0] = 10 * i  # blue grows with i
        cv2.imwrite(str(path), img)
        out.append(path)
    return out


def test_feeder_fills_one_buffer_in_full_batches(tmp_path: Path) -> None:
    feeder = CalibrationFeeder(images(tmp_path, 7), batch=3, height=32, width=32)
    assert feeder.batches == 2
    first = feeder.next_batch()
    assert first is not None and first.shape == (3, 32, 32, 3) and first.dtype == np.uint8
    buffer_id = id(first)
    assert first[1, 16, 16, 0] == 10  # the second image, BGR kept
    assert first[1, 0, 16, 0] == 114  # letterbox padding
    second = feeder.next_batch()
    assert second is not None and id(second) == buffer_id and second[0, 16, 16, 0] == 30
    assert feeder.next_batch() is None  # the 7th image would make a partial batch
    feeder.reset()
    assert feeder.next_batch() is not None


def test_feeder_float_layout_matches_the_model_input(tmp_path: Path) -> None:
    feeder = CalibrationFeeder(images(tmp_path, 2), batch=2, height=32, width=32, layout="nchw-f32")
    host = feeder.next_batch()
    assert host is not None and host.shape == (2, 3, 32, 32) and host.dtype == np.float32
    assert host[1, 2, 16, 16] == pytest.approx(10 / 255)  # blue lands in the last (RGB) channel
    assert host[1, 0, 16, 16] == 0.0


def test_calibration_cache_is_keyed_by_frames_and_model(tmp_path: Path) -> None:
    imgs = images(tmp_path, 3)
    cache = CalibrationCache(tmp_path, "model-a", imgs, "nhwc-u8")
    assert cache.read() is None
    cache.write(b"table")
    assert CalibrationCache(tmp_path, "model-a", imgs, "nhwc-u8").read() == b"table"
    assert CalibrationCache(tmp_path, "model-b", imgs, "nhwc-u8").path != cache.path
    assert CalibrationCache(tmp_path, "model-a", imgs[:2], "nhwc-u8").path != cache.path
    assert CalibrationCache(tmp_path, "model-a", imgs, "nchw-f32").path != cache.path


def meta() -> ModelMeta:
    return ModelMeta(name="yolov3-tiny", head="yolov5", labels=["person"], input=InputMeta(height=416, width=416),
                     output_shape=[-1, 2535, 6], precision="fp32",
                     source=SourceMeta(kind="darknet", files=["a.cfg"], sha256="abc"))


def test_engine_records_and_matching(tmp_path: Path) -> None:
    name = engine_name("int8", "8.7", "8.6.2.3")
    assert name == "trt-int8-sm87-trt8.6.engine"
    engine = tmp_path / name
    engine.write_bytes(b"serialized engine")
    record = engine_record(meta(), "int8", engine, "8.6.2.3", "Orin", "8.7", 2)
    record.write(engine.with_suffix(".json"))
    assert record.input.batch == 2 and record.runtime is not None and record.file_sha256
    check_engine_matches(engine, None, "8.6.2.3", "8.7", "Orin")
    # TensorRT promises an engine only to the exact version that built it: a patch release is refused too.
    with pytest.raises(ModelError, match=r"built with TensorRT 8\.6\.2\.3; this device has TensorRT 8\.6\.1.*rebuild"):
        check_engine_matches(engine, None, "8.6.1", "8.7")
    with pytest.raises(ModelError, match=r"built with TensorRT 8\.6\.2\.3; this device has TensorRT 10\.3.*rebuild"):
        check_engine_matches(engine, None, "10.3.0", "8.7")
    with pytest.raises(ModelError, match=r"compute capability 8\.7 \(Orin\); this GPU is 7\.2"):
        check_engine_matches(engine, None, "8.6.2.3", "7.2")
    with pytest.raises(ModelError, match=r"built on Orin; this GPU is Thor"):
        check_engine_matches(engine, None, "8.6.2.3", "8.7", "Thor")
    bare = tmp_path / "other.engine"
    bare.write_bytes(b"x")
    with pytest.raises(ModelError, match="no TensorRT build record"):
        check_engine_matches(bare, None, "8.6.2", "8.7")


def test_pick_engine_prefers_the_newest(tmp_path: Path) -> None:
    built = BuiltModel("yolov3-tiny", tmp_path, meta())
    with pytest.raises(ModelError, match="no TensorRT int8 engine"):
        pick_engine(built, "int8")
    old, new = tmp_path / "trt-int8-sm72-trt8.5.engine", tmp_path / "trt-int8-sm87-trt8.6.engine"
    old.write_bytes(b"a")
    new.write_bytes(b"b")
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert pick_engine(built, "int8") == new


class FakeTrt:
    TensorIOMode = SimpleNamespace(INPUT="in", OUTPUT="out")


class DataType:
    def __init__(self, name: str) -> None:
        self.name = name


def test_io_from_the_tensor_api_with_output_shapes_from_the_context() -> None:
    tensors = {"frames": ("in", (-1, 416, 416, 3), DataType("UINT8")),
               "output": ("out", (-1, -1, 85), DataType("FLOAT")), "aux": ("out", (-1, 3), DataType("HALF"))}
    set_shapes: dict[str, tuple[int, ...]] = {}

    def context_shape(name: str) -> tuple[int, ...]:
        batch = set_shapes["frames"][0]  # as TensorRT computes them once the input shape is set
        return {"output": (batch, 2535, 85), "aux": (batch, 3)}[name]

    context = SimpleNamespace(set_input_shape=set_shapes.__setitem__,
                              get_tensor_shape=context_shape)
    engine = SimpleNamespace(
        num_io_tensors=3, get_tensor_name=lambda i: list(tensors)[i],
        get_tensor_mode=lambda n: tensors[n][0], get_tensor_shape=lambda n: tensors[n][1],
        get_tensor_dtype=lambda n: tensors[n][2], create_execution_context=lambda: context,
    )
    io = describe_io(FakeTrt, engine, batch=4)
    assert [(t.name, t.is_input, t.shape, t.dtype) for t in io] == [
        ("frames", True, (4, 416, 416, 3), np.dtype(np.uint8)),
        ("output", False, (4, 2535, 85), np.dtype(np.float32)),  # not "-1 replaced by the batch": (4, 4, 85)
        ("aux", False, (4, 3), np.dtype(np.float16)),  # every output, not the first only
    ]
    with pytest.raises(EngineError, match=r"TensorRT 8\.6"):
        describe_io(FakeTrt, SimpleNamespace(num_bindings=2), batch=1)  # the binding API only: TensorRT < 8.5


def test_element_types_map_without_trt_nptype_and_old_tensorrt_is_refused() -> None:
    assert numpy_dtype(DataType("BOOL")) == np.dtype(np.bool_)  # trt.nptype read np.bool (TensorRT 8.5)
    assert numpy_dtype(DataType("INT64")) == np.dtype(np.int64)
    with pytest.raises(ModelError, match="BF16 tensor"):
        numpy_dtype(DataType("BF16"))
    check_version("8.6.2.3")
    check_version("10.3.0.30")
    with pytest.raises(EngineError, match=r"TensorRT 8\.5\.2\.2 is older than 8\.6: edged needs JetPack 6"):
        check_version("8.5.2.2")


def test_a_calibration_cache_is_handed_on_only_for_the_graph_it_was_made_for(tmp_path: Path) -> None:
    imgs = images(tmp_path, 3)
    other = CalibrationCache(tmp_path, "model-b", imgs, "nhwc-u8")
    other.write(b"table b")
    float_graph = CalibrationCache(tmp_path, "model-a", imgs, "nchw-f32")
    float_graph.write(b"table a float")
    (tmp_path / "trt-calibration-000000000000.cache").write_bytes(b"no record")  # graph unknown: never picked
    assert matching_calibration(tmp_path, "model-a", "nhwc-u8") is None
    mine = CalibrationCache(tmp_path, "model-a", imgs[:2], "nhwc-u8")
    mine.write(b"table a")
    assert matching_calibration(tmp_path, "model-a", "nhwc-u8") == mine.path
    assert matching_calibration(tmp_path, "model-a", "nchw-f32") == float_graph.path
