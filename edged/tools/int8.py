"""INT8 that users can trust: quantize, compare with FP32 on held-out frames, gate, install.

A candidate INT8 IR is made from the calibration frames, then both it and the FP32
IR run (exactly as the daemon runs them) on held-out frames that quantization never
saw. The candidate is installed as the model's ``int8`` variant only if its mAP@0.5
against FP32 reaches the threshold, unless forced. Either way a report (JSON and a
table) is written next to the candidate, and the speed of both is measured in the
same run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged.artifacts import zoo
from edged.artifacts.info import load_model_info
from edged.artifacts.meta import CalibrationMeta, ModelMeta, file_digest, read_sidecar
from edged.config.models import OpenVinoConfig
from edged.engines.registry import create_engine
from edged.errors import InputError
from edged.models.agreement import Agreement, compare
from edged.models.heads.layout import detr_family
from edged.tools.calibration import CalibrationSet
from edged.tools.enginebench import detect_frames, throughput
from edged.tools.progress import Progress
from edged.tools.quantize import QuantizeResult, quantize

log = logging.getLogger(__name__)


@dataclass
class Int8Options:
    preset: str = "mixed"
    subset_size: int = 300
    min_map: float = 0.90
    force: bool = False
    threshold: float = 0.4  # operating score threshold: the reference's boxes above it are the truth
    speed_seconds: float = 4.0
    device: str = "CPU"


@dataclass
class Int8Report:
    model: str
    candidate: str
    installed: bool
    reason: str
    threshold: float
    min_map: float
    calibration_frames: int
    held_out_frames: int
    cameras: list[str]
    preset: str
    subset_size: int
    quantize_seconds: float
    capture_seconds: float
    fp32_fps: float
    int8_fps: float
    speed_ratio: float
    agreement: dict[str, Any] = field(default_factory=dict)
    per_camera: dict[str, dict[str, float]] = field(default_factory=dict)
    tried: dict[str, float] = field(default_factory=dict)  # mAP@0.5 of each quantisation tried (DETRs: two)

    def table(self) -> str:
        a = self.agreement
        verdict = "installed" if self.installed else "NOT installed"
        lines = [
            f"INT8 vs FP32 for {self.model}: {self.held_out_frames} held-out frames from "
            f"{len(self.cameras)} source(s), reference = FP32 boxes with score >= {self.threshold:g}",
            f"  mAP@0.5       {a['map50']:.3f}  (gate {self.min_map:.2f}: {verdict}"
            f"{'; ' + self.reason if self.reason else ''})",
            f"  mean IoU      {a['mean_iou']:.3f} over matched boxes ({a['reference_boxes']} reference boxes)",
            f"  speed         FP32 {self.fp32_fps:.1f} fps, INT8 {self.int8_fps:.1f} fps: x{self.speed_ratio:.2f} "
            f"(same run)",
            f"  calibration   {self.calibration_frames} frames, preset {self.preset}, subset {self.subset_size}; "
            f"capture {self.capture_seconds:.1f} s, quantize {self.quantize_seconds:.1f} s",
            f"  {'class':<16}{'ref boxes':>10}{'AP50':>8}{'recall':>8}",
        ]
        for c in a["per_class"]:
            lines.append(f"  {c['label']:<16}{c['reference']:>10}{c['ap50']:>8.3f}{c['recall']:>8.3f}")
        if len(self.per_camera) > 1:
            lines.append(f"  {'camera':<16}{'frames':>10}{'mAP@0.5':>8}{'IoU':>8}")
            for name, figures in sorted(self.per_camera.items()):
                lines.append(f"  {name:<16}{int(figures['frames']):>10}{figures['map50']:>8.3f}"
                             f"{figures['mean_iou']:>8.3f}")
        return "\n".join(lines)


def _engine_config(path: Path, precision: str, device: str) -> OpenVinoConfig:
    return OpenVinoConfig(backend="openvino", model=str(path), precision=precision,
                          inference_precision="f32", device=device, num_requests=2)


def _run(path: Path, precision: str, frames: list[np.ndarray], cache: Path, options: Int8Options,
         speed_rounds: int) -> tuple[list[Any], list[float], Any]:
    config = _engine_config(path, precision, options.device)
    info = load_model_info(config, cache)
    engine = create_engine(config, info, cache)
    engine.start()
    try:
        info = info.with_output(engine.output_shape)
        detections = detect_frames(engine, info, frames, min_score=0.01)
        speeds = [throughput(engine, options.speed_seconds / speed_rounds).fps for _ in range(speed_rounds)]
    finally:
        engine.close()
    return detections, speeds, info


def make_int8(built: zoo.BuiltModel, calibration: CalibrationSet, cache: Path, options: Int8Options,
              capture_seconds: float = 0.0) -> Int8Report:
    calib = calibration.paths("calibration")
    held = calibration.paths("held_out")
    if not calib or not held:
        raise InputError(
            f"{calibration.root}: need calibration and held-out frames (have {len(calib)} and {len(held)})"
        )
    if not built.has("fp32"):
        raise InputError(f"model '{built.name}' has no FP32 IR to quantize; rebuild it: edged export {built.name}")
    frames = []
    for path in held:
        image = cv2.imread(str(path))
        if image is None:
            raise InputError(f"{path}: not an image")
        frames.append(image)
    # The DETR family is quantised twice, as a CNN and with NNCF's transformer type: on random-weight RT-DETR-l and
    # RF-DETR the transformer type left less error, on D-FINE more (README), so the gate picks, per model and scene.
    kinds = (False, True) if detr_family(built.meta.head, built.meta.input.resize) else (False,)
    reference, fp32_speed, info = _run(built.path("fp32"), "fp32", frames, cache, options, 2)
    labels = list(info.labels or ())
    tried = []
    for transformer in kinds:
        candidate, meta, calibration_meta, result = _quantize(built, calibration, options, transformer)
        with Progress(f"comparing INT8 ({calibration_meta.preset}) with FP32 on held-out frames", 1) as progress:
            candidate_dets, int8_speed, _ = _run(candidate, "int8", frames, cache, options, 2)
            progress.update(note="INT8 done")
        agreement = compare(reference, candidate_dets, labels, options.threshold)
        tried.append(_Tried(candidate, meta, calibration_meta, result, candidate_dets, agreement,
                            statistics.median(int8_speed)))
        log.info("INT8 %s: mAP@0.5 %.3f against FP32", calibration_meta.preset, agreement.map50)
    best = max(tried, key=lambda t: (t.agreement.map50, t.fps))  # the better agreement; the faster on a tie
    candidate, meta, calibration_meta, result = best.path, best.meta, best.calibration, best.result
    candidate_dets, agreement, int8_fps = best.detections, best.agreement, best.fps
    per_camera: dict[str, dict[str, float]] = {}
    cameras_of = [f.camera for f in calibration.frames if f.split == "held_out"]
    for camera in sorted(set(cameras_of)):
        picks = [i for i, c in enumerate(cameras_of) if c == camera]
        sub = compare([reference[i] for i in picks], [candidate_dets[i] for i in picks], labels, options.threshold)
        per_camera[camera] = {"frames": len(picks), "map50": sub.map50, "mean_iou": sub.mean_iou,
                              "reference_boxes": sub.reference_boxes}
    fp32_fps = statistics.median(fp32_speed)
    passed = agreement.map50 >= options.min_map
    if passed:
        reason = ""
    else:
        reason = f"mAP@0.5 {agreement.map50:.3f} is under the {options.min_map:.2f} threshold"
        if options.force:
            reason += "; installed anyway (--force)"
    report = Int8Report(
        model=built.name, candidate=str(candidate), installed=passed or options.force, reason=reason,
        threshold=options.threshold, min_map=options.min_map, calibration_frames=len(calib),
        held_out_frames=len(held), cameras=calibration_meta.cameras, preset=calibration_meta.preset,
        subset_size=result.subset_size, quantize_seconds=result.seconds, capture_seconds=capture_seconds,
        fp32_fps=fp32_fps, int8_fps=int8_fps, speed_ratio=int8_fps / fp32_fps if fp32_fps else float("nan"),
        agreement=agreement.as_dict(), per_camera=per_camera,
        tried={t.calibration.preset: t.agreement.map50 for t in tried},
    )
    report_path = candidate.with_name("int8-report.json")
    report_path.write_text(json.dumps(asdict(report), indent=2))
    candidate.with_name("int8-report.txt").write_text(report.table() + "\n")
    meta = meta.model_copy(update={"calibration": calibration_meta.model_copy(update={
        "map50": agreement.map50, "forced": not passed and options.force})})
    meta.write(candidate.with_suffix(".json"))
    if report.installed:
        install(candidate, built)
    return report


@dataclass
class _Tried:
    """One quantisation of the model, gated: its files, sidecar, settings, and agreement with FP32."""

    path: Path
    meta: ModelMeta
    calibration: CalibrationMeta
    result: QuantizeResult
    detections: list[Any]
    agreement: Agreement
    fps: float


def _quantize(built: zoo.BuiltModel, calibration: CalibrationSet, options: Int8Options,
              transformer: bool) -> tuple[Path, ModelMeta, CalibrationMeta, QuantizeResult]:
    """One INT8 candidate (its files and sidecar, keyed by the frames and the settings), not yet gated."""
    calib, held = calibration.paths("calibration"), calibration.paths("held_out")
    preset = f"{options.preset}, transformer" if transformer else options.preset
    key = hashlib.sha256(f"{calibration.digest()}|{preset}|{options.subset_size}".encode()).hexdigest()
    candidate = built.directory / "candidates" / key[:12] / "int8.xml"
    result = quantize(built.path("fp32"), calib, built.meta.input, candidate, options.preset, options.subset_size,
                      transformer)
    calibration_meta = CalibrationMeta(
        frames=len(calib), held_out=len(held), cameras=sorted({f.camera for f in calibration.frames}),
        dataset_sha256=calibration.digest(), preset=preset, subset_size=result.subset_size,
        map50=float("nan"), min_map=options.min_map, report="int8-report.json",
    )
    meta = built.meta.model_copy(update={"precision": "int8", "file_sha256": file_digest(candidate),
                                         "calibration": calibration_meta, "created": time.time()})
    meta.write(candidate.with_suffix(".json"))
    return candidate, meta, calibration_meta, result


def install(candidate: Path, built: zoo.BuiltModel) -> None:
    """Copy a candidate into place as the model's int8 variant: files first, sidecar last."""
    target = built.path("int8")
    for suffix in (".bin", ".xml"):
        tmp = target.with_name(f".{target.stem}{suffix}.tmp")
        shutil.copyfile(candidate.with_suffix(suffix), tmp)
        tmp.replace(target.with_suffix(suffix))
    for extra in ("int8-report.json", "int8-report.txt"):
        shutil.copyfile(candidate.with_name(extra), built.directory / extra)
    meta = read_sidecar(candidate)
    assert meta is not None
    meta.write(target.with_suffix(".json"))
    log.info("installed %s as %s", candidate, target)
