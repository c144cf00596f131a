"""TensorRT on the device it runs on. Skipped where TensorRT and pycuda are absent (they
cannot be installed on x86 development machines); on a Jetson these build real engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.types import read_image

pytest.importorskip("tensorrt", reason="TensorRT exists only on NVIDIA devices")
pytest.importorskip("pycuda.driver", reason="pycuda exists only on NVIDIA devices")

from edged.artifacts import zoo
from edged.artifacts.info import load_model_info
from edged.config.models import TensorRtConfig
from edged.engines.registry import create_engine
from edged.errors import ModelError
from edged.tools.calibration import capture
from edged.tools.enginebench import detect_frames
from edged.tools.tensorrt_build import build_for_device
from tests.integration.reference import BUS_PEOPLE, iou


def people_found(precision: str, cache: Path, media: dict[str, Path]) -> list[float]:
    config = TensorRtConfig(backend="tensorrt", model="yolov3-tiny", precision=precision)
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    try:
        info = info.with_output(engine.output_shape)
        [dets] = detect_frames(engine, info, [read_image(media["bus.jpg"])], 0.3)
    finally:
        engine.close()
    people = [b for b, c in zip(dets.boxes, dets.classes) if (info.labels or ())[c] == "person"]
    return [max((iou(ref, b) for b in people), default=0.0) for ref, _ in BUS_PEOPLE]


def test_fp16_engine_finds_the_reference_people(private_cache: Path, media: dict[str, Path]) -> None:
    built = zoo.find_built("yolov3-tiny", private_cache)
    assert built is not None
    build_for_device(built, "fp16", [], private_cache)
    assert min(people_found("fp16", private_cache, media)) >= 0.8


def test_int8_engine_from_calibration_frames_and_its_cache(private_cache: Path, media: dict[str, Path],
                                                          tmp_path: Path) -> None:
    from edged.config.models import CameraConfig

    frames = capture({"street": CameraConfig(url=str(media["street.mp4"]))}, tmp_path / "cal", 40, 30)
    built = zoo.find_built("yolov3-tiny", private_cache)
    assert built is not None
    build_for_device(built, "int8", frames.paths("calibration"), private_cache)
    caches = list(built.directory.glob("trt-calibration-*.cache"))
    assert len(caches) == 1
    build_for_device(built, "int8", frames.paths("calibration"), private_cache)  # reuses the cache
    assert list(built.directory.glob("trt-calibration-*.cache")) == caches
    assert min(people_found("int8", private_cache, media)) >= 0.5


def test_an_engine_from_another_tensorrt_is_refused(private_cache: Path) -> None:
    built = zoo.find_built("yolov3-tiny", private_cache)
    assert built is not None
    path = build_for_device(built, "fp16", [], private_cache)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(sidecar.read_text().replace('"version": "', '"version": "7.'))
    config = TensorRtConfig(backend="tensorrt", model="yolov3-tiny", precision="fp16")
    engine = create_engine(config, load_model_info(config, private_cache), private_cache)
    with pytest.raises(ModelError, match="rebuild it on this device"):
        engine.start()
