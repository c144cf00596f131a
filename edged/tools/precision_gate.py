"""The precision gate: a float precision is used only once it agrees with f32 on this device.

The same held-out comparison ``edged calibrate`` runs for INT8 (mAP@0.5 against the
f32 boxes, recall per class, mean IoU, speed in the same run), for bf16 and f16: both
the reference (f32) and the candidate are compiled exactly as the daemon compiles
them, on the same device, and run on the same frames. A NaN or inf anywhere in the
candidate's raw output fails the gate outright (it is never "no detections").

Results are kept beside the model (``gates/<device key>-<precision>.json``): the
device key names the device, the CPU model and the OpenVINO version, so a result
never carries over to other hardware or another runtime. ``choose`` is what the
daemon calls for ``inference_precision: auto``; it runs a missing gate in a child
process so the daemon never holds the extra compiled models.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edged.artifacts.info import ModelInfo, load_model_info
from edged.artifacts.meta import file_digest
from edged.config.models import AnyEngineConfig, Config, OpenVinoConfig
from edged.engines.base import Engine
from edged.engines.precision import DeviceTraits, candidates, read_traits, why
from edged.engines.registry import create_engine
from edged.errors import EdgedError
from edged.models.agreement import compare
from edged.models.yolo import Detections, Letterbox
from edged.tools.enginebench import detect_frames, infer_once, throughput

log = logging.getLogger(__name__)

MIN_MAP = 0.95  # float precisions: mAP@0.5 against f32 at least this
SPEED_SECONDS = 2.0
MIN_BOXES = 3  # fewer objects found by f32 on the gate frames: inconclusive, tried again at the next start


@dataclass
class GateResult:
    precision: str  # the candidate asked for
    compiled: str  # what the compiled candidate reports (INFERENCE_PRECISION_HINT, read back)
    passed: bool
    reason: str
    device_key: str
    model: str
    model_digest: str
    frames: int
    map50: float | None
    mean_iou: float | None
    reference_boxes: int
    recall: dict[str, float] = field(default_factory=dict)
    finite: bool = True
    reference_fps: float = 0.0
    candidate_fps: float = 0.0
    min_map: float = MIN_MAP
    when: str = ""

    @property
    def speed_ratio(self) -> float:
        return self.candidate_fps / self.reference_fps if self.reference_fps else 0.0

    def line(self) -> str:
        figures = (f"mAP@0.5 {self.map50:.3f} and mean IoU {self.mean_iou:.3f} against f32 on {self.frames} frames"
                   if self.map50 is not None and self.mean_iou is not None else f"{self.frames} frames")
        speed = f", {self.speed_ratio:.2f}x the speed of f32" if self.reference_fps else ""
        verdict = "passed" if self.passed else f"FAILED ({self.reason})"
        return f"{self.precision}: {figures}{speed}: {verdict}"


def gate_path(model: ModelInfo, cache: Path, device_key: str, precision: str) -> Path:
    """Beside the model when it lives in the cache; else under the cache, by the model's digest."""
    try:
        model.path.resolve().relative_to(cache.resolve())
        root = model.path.parent / "gates"
    except ValueError:
        root = cache / "gates" / f"{model.path.stem}-{file_digest(model.path)[:12]}"
    return root / f"{model.path.stem}-{device_key}-{precision}.json"


def ov_version() -> str:
    from edged.engines.ov import version  # not at import: a Jetson with only TensorRT has no OpenVINO

    return version()


def gate_file(config: OpenVinoConfig, cache: Path, traits: DeviceTraits, precision: str) -> tuple[Path, str]:
    """Where the verdict for ``precision`` of this model on this device is kept, and the model's digest."""
    model = load_model_info(config, cache)
    return gate_path(model, cache, traits.key(ov_version()), precision), file_digest(model.path)


def load_result(path: Path, digest: str) -> GateResult | None:
    try:
        data = json.loads(path.read_text())
        result = GateResult(**data)
    except (OSError, ValueError, TypeError):
        return None
    return result if result.model_digest == digest else None


def finite_outputs(engine: Engine, model: ModelInfo, frames: list[np.ndarray]) -> bool:
    """Whether every raw output on ``frames`` is finite (decoding would hide a NaN as "no detections")."""
    for frame in frames:
        box = Letterbox.fit(frame.shape[1], frame.shape[0], model.width, model.height, resize=model.resize)
        box.apply(frame, engine.input_buffer(0)[0])
        if not np.isfinite(infer_once(engine, 0)).all():
            return False
    return True


def _run(config: OpenVinoConfig, cache: Path, frames: list[np.ndarray], precision: str,
         speed_seconds: float) -> tuple[list[Detections], bool, float, str]:
    """Detections on every frame, whether every raw output was finite, frames/s, the read-back precision."""
    engine_config = config.model_copy(update={"inference_precision": precision, "num_requests": 2, "batch": 1})
    info = load_model_info(engine_config, cache)
    engine = create_engine(engine_config, info, cache)
    engine.start()
    try:
        info = info.with_output(engine.output_shape)
        compiled = str(engine.describe().get("precision", precision))
        detections = detect_frames(engine, info, frames, min_score=0.01, iou=config.iou)
        finite = finite_outputs(engine, info, frames[:4])
        fps = statistics.median(throughput(engine, speed_seconds / 2).fps for _ in range(2)) if speed_seconds else 0.0
    finally:
        engine.close()
    return detections, finite, fps, compiled


def run_gate(config: OpenVinoConfig, cache: Path, frames: list[np.ndarray], precision: str, *,
             threshold: float, min_map: float = MIN_MAP, speed_seconds: float = SPEED_SECONDS,
             traits: DeviceTraits | None = None) -> GateResult:
    """Compare ``precision`` with f32 on ``frames`` on this device, and keep the verdict beside the model."""
    traits = traits or read_traits(config.device)
    path, digest = gate_file(config, cache, traits, precision)
    model = load_model_info(config, cache)
    reference, _, reference_fps, _ = _run(config, cache, frames, "f32", speed_seconds)
    candidate, finite, candidate_fps, compiled = _run(config, cache, frames, precision, speed_seconds)
    labels = list(model.labels or ())
    if not labels:
        labels = [str(i) for i in range(int(max((int(d.classes.max()) for d in reference if len(d)), default=0)) + 1)]
    agreement = compare(reference, candidate, labels, threshold)
    boxes = agreement.reference_boxes
    map50 = None if boxes == 0 or np.isnan(agreement.map50) else round(float(agreement.map50), 4)
    if not finite:
        passed, reason = False, "the candidate's output holds NaN or inf"
    elif map50 is None or boxes < MIN_BOXES:
        passed, reason = False, (f"f32 found {boxes} object(s) on the {len(frames)} gate frame(s), too few to judge "
                                 f"(at least {MIN_BOXES})")
    elif map50 < min_map:
        passed, reason = False, f"mAP@0.5 {map50:.3f} is under the gate's {min_map:.2f}"
    else:
        passed, reason = True, ""
    result = GateResult(
        precision=precision, compiled=compiled, passed=passed, reason=reason, device_key=traits.key(ov_version()),
        model=str(model.path), model_digest=digest, frames=len(frames), map50=map50,
        mean_iou=round(float(agreement.mean_iou), 4) if boxes else None, reference_boxes=boxes,
        recall={c.label: round(c.recall, 3) for c in agreement.per_class if c.reference},
        finite=finite, reference_fps=round(reference_fps, 1), candidate_fps=round(candidate_fps, 1),
        min_map=min_map, when=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    if (map50 is not None and boxes >= MIN_BOXES) or not finite:  # an inconclusive gate is tried again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(result), indent=1))
    return result


@dataclass
class Choice:
    precision: str  # what to ask the engine for
    reason: str  # one line for the log, telemetry and the bench
    results: list[GateResult] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        passed = next((r for r in self.results if r.passed and r.precision == self.precision), None)
        out: dict[str, Any] = {"precision_policy": self.reason}
        if passed is not None and passed.map50 is not None:
            out["precision_gate_map50"] = passed.map50
        return out


FrameSource = Any  # a callable returning frames, called only when a gate has to run


def choose(config: OpenVinoConfig, cache: Path, frames: FrameSource, *, threshold: float,
           traits: DeviceTraits | None = None, in_child: bool = True, rerun: bool = False) -> Choice:
    """``inference_precision: auto``: the first candidate for this device that passes its gate and is
    faster than f32 here (bf16 on an INT8 model, whose float layers are few, may not be)."""
    traits = traits or read_traits(config.device)
    failed: list[str] = []
    results: list[GateResult] = []
    loaded: list[np.ndarray] | None = None
    for precision in candidates(traits):
        if precision == "f32":
            note = f"; {'; '.join(failed)}" if failed else ""
            return Choice("f32", f"auto: f32 ({why(traits)}{note})", results)
        path, digest = gate_file(config, cache, traits, precision)
        result = None if rerun else load_result(path, digest)
        if result is None:
            loaded = loaded if loaded is not None else list(frames())
            if not loaded:
                failed.append(f"{precision} not gated: no frames to compare on")
                continue
            log.info("precision gate: comparing %s with f32 on %d frames on this device (first use)",
                     precision, len(loaded))
            result = (_gate_in_child(config, cache, loaded, precision, threshold) if in_child
                      else run_gate(config, cache, loaded, precision, threshold=threshold, traits=traits))
        results.append(result)
        log.info("precision gate: %s", result.line())
        if result.passed and result.reference_fps and result.speed_ratio < 1.0:
            failed.append(f"{precision} agrees with f32 but is not faster here ({result.speed_ratio:.2f}x)")
            continue
        if result.passed:
            return Choice(precision, f"auto: {precision} ({why(traits)}; gate {result.line()})", results)
        failed.append(f"{precision} not used: {result.reason}")
    return Choice("f32", f"auto: f32 ({'; '.join(failed)})", results)


def child_main() -> None:
    """In the child: ``python -c 'from edged.tools.precision_gate import child_main; child_main()' WORK_DIR``."""
    work = Path(sys.argv[1])
    request = json.loads((work / "request.json").read_text())
    with np.load(work / "frames.npz") as data:
        frames = [data[key] for key in sorted(data.files)]
    try:
        result = run_gate(OpenVinoConfig.model_validate(request["config"]), Path(request["cache"]), frames,
                          request["precision"], threshold=request["threshold"])
        (work / "result.json").write_text(json.dumps(asdict(result)))
    except EdgedError as exc:
        (work / "result.json").write_text(json.dumps({"error": str(exc)}))


def _gate_in_child(config: OpenVinoConfig, cache: Path, frames: list[np.ndarray], precision: str,
                   threshold: float) -> GateResult:
    """run_gate in a child process: its compiled models and buffers leave with it, and no helper
    process (as multiprocessing's resource tracker would be) stays behind."""
    with tempfile.TemporaryDirectory(prefix="edged-gate-") as tmp:
        work = Path(tmp)
        np.savez(work / "frames.npz", *frames)
        (work / "request.json").write_text(json.dumps({
            "config": config.model_dump(mode="json"), "cache": str(cache), "precision": precision,
            "threshold": threshold}))
        command = [sys.executable, "-c", "from edged.tools.precision_gate import child_main; child_main()", str(work)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        result_file = work / "result.json"
        data = json.loads(result_file.read_text()) if result_file.is_file() else {}
    if "error" in data or done.returncode != 0 or not data:
        detail = data.get("error") or (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise EdgedError(f"the precision gate for {precision} failed: {detail}")
    return GateResult(**data)


def frames_for(config: Config, cache: Path, per_camera: int = 8, duration_s: float = 5.0) -> list[np.ndarray]:
    """Frames to gate on: those ``edged calibrate`` kept from this device's cameras, else a few
    captured from the configured cameras now (kept under the cache for the next gate)."""
    import cv2

    from edged.tools.calibration import CalibrationSet, capture

    stored = cache / "calibration" / config.device_id
    if (stored / "manifest.json").is_file():
        kept = CalibrationSet.load(stored)
    else:
        cameras = {name: camera for name, camera in config.cameras.items() if camera.enabled}
        if not cameras:
            return []
        log.info("precision gate: capturing up to %d frames from each of %d camera(s)", per_camera, len(cameras))
        kept = capture(cameras, cache / "gate-frames" / config.device_id, per_camera, duration_s)
    paths = kept.paths("held_out") + kept.paths("calibration")
    frames = [cv2.imread(str(path)) for path in paths[:64]]
    return [frame for frame in frames if frame is not None]


def settle(config: Config, cache: Path,
           engine: AnyEngineConfig | None = None) -> tuple[AnyEngineConfig, dict[str, Any]]:
    """The engine config (``config.engine`` unless given) with ``inference_precision: auto`` settled for this
    device, and how it was. In a chain, an engine that cannot be settled (its device is missing) stays as it
    is: the chain finds out at start, and falls back."""
    engine = engine or config.engine
    if not isinstance(engine, OpenVinoConfig) or engine.inference_precision != "auto":
        return engine, {}
    if config.fallbacks:
        try:
            choice = choose(engine, cache, lambda: frames_for(config, cache), threshold=config.detect.min_score)
        except (EdgedError, RuntimeError) as exc:  # OpenVINO says a device is missing with a RuntimeError
            log.warning("precision: engine on %s not settled (%s); the chain will find out at start", engine.device,
                        exc)
            return engine, {}
    else:
        choice = choose(engine, cache, lambda: frames_for(config, cache), threshold=config.detect.min_score)
    log.info("precision: %s", choice.reason)
    return engine.model_copy(update={"inference_precision": choice.precision}), choice.settings()
