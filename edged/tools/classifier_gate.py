"""The precision gate for classifiers: ``inference_precision: auto`` on a classifier settles as the detector's does.

For each OpenVINO classifier a camera uses with ``auto``, the device's candidates (``engines.precision``: bf16 on
an x86 CPU with AMX or AVX-512 BF16, f16 on ARM with half-precision arithmetic and on GPUs and NPUs, f32
otherwise) are tried fastest first: the classifier is compiled at f32 and at the candidate, exactly as the looks
thread compiles it, and both run on the same crops of real frames from this device's cameras (those ``edged
calibrate`` kept, else a few captured now, as the detector's gate takes them): the candidate is used when every
score is finite, its best class agrees with f32's on at least ``MIN_AGREE`` of the crops, and it is faster than
f32 here; else f32, with the reason in the log. Verdicts are kept under the cache, by the model's digest and the
device key (device, CPU model, OpenVINO version), so a gate runs once per model and machine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edged.artifacts.meta import file_digest
from edged.config.looks import ClassifierConfig
from edged.config.models import Config
from edged.engines.precision import DeviceTraits, candidates, read_traits, why
from edged.looks.classifier import Classifier
from edged.tools.precision_gate import frames_for, ov_version

log = logging.getLogger(__name__)

MIN_AGREE = 0.95  # the candidate's best class is f32's on at least this share of the crops
MAX_CROPS = 64
MIN_CROPS = 8  # fewer: not gated (f32), tried again at the next start


@dataclass
class ClassifierVerdict:
    precision: str
    passed: bool
    reason: str
    device_key: str
    model_digest: str
    crops: int
    agree: float | None
    reference_ms: float | None  # per crop, in batches of the classifier's ``batch``
    candidate_ms: float | None

    def line(self) -> str:
        figures = (f"best class as f32's on {100 * self.agree:.1f} % of {self.crops} crops, "
                   f"{self.candidate_ms:.2f} against {self.reference_ms:.2f} ms a crop"
                   if self.agree is not None and self.candidate_ms is not None and self.reference_ms is not None
                   else f"{self.crops} crops")
        return f"{self.precision}: {figures}: {'passed' if self.passed else 'failed'} ({self.reason})"


def gate_crops(frames: list[np.ndarray], height: int, width: int, limit: int = MAX_CROPS) -> np.ndarray:
    """Crops as the looks thread takes them (uint8 BGR ``[n, H, W, 3]``): from each frame its centre and four
    quarters, squares of half its shorter side, resized to the classifier's input."""
    crops: list[np.ndarray] = []
    for frame in frames:
        rows, cols = frame.shape[:2]
        side = min(rows, cols) // 2
        if side < 8:
            continue
        for cy, cx in ((rows // 2, cols // 2), (rows // 4, cols // 4), (rows // 4, 3 * cols // 4),
                       (3 * rows // 4, cols // 4), (3 * rows // 4, 3 * cols // 4)):
            y, x = max(0, cy - side // 2), max(0, cx - side // 2)
            crops.append(cv2.resize(frame[y:y + side, x:x + side], (width, height), interpolation=cv2.INTER_AREA))
            if len(crops) >= limit:
                return np.stack(crops)
    return np.stack(crops) if crops else np.zeros((0, height, width, 3), np.uint8)


def judge(reference: np.ndarray, candidate: np.ndarray) -> tuple[bool, float, str]:
    """Whether the candidate's scores stand in for f32's: all finite, the same best class on ``MIN_AGREE``."""
    if not np.isfinite(candidate).all():
        return False, 0.0, "a score was NaN or inf"
    agree = float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))
    if agree < MIN_AGREE:
        return False, agree, f"agreement under {100 * MIN_AGREE:.0f} %"
    return True, agree, "agrees with f32"


def _scores(classifier: Classifier, crops: np.ndarray) -> tuple[np.ndarray, float]:
    """Scores on every crop and the time a crop took (the second of two passes), in batches as the thread runs."""
    size = classifier.config.batch
    out: list[np.ndarray] = []
    elapsed = 0.0
    for _ in range(2):
        out = []
        started = time.perf_counter()
        for first in range(0, len(crops), size):
            out.append(classifier.infer(np.ascontiguousarray(crops[first:first + size])))
        elapsed = time.perf_counter() - started
    return np.concatenate(out), elapsed * 1e3 / len(crops)


def run_gate(name: str, config: ClassifierConfig, cache: Path, crops: np.ndarray, precision: str,
             traits: DeviceTraits) -> ClassifierVerdict:
    """Compile the classifier at f32 and at ``precision`` and compare them on ``crops``."""
    runs = {}
    for each in ("f32", precision):
        classifier = Classifier(name, config.model_copy(update={"inference_precision": each}), cache)
        classifier.start()
        runs[each] = _scores(classifier, crops)
        del classifier
    (reference, reference_ms), (candidate, candidate_ms) = runs["f32"], runs[precision]
    passed, agree, reason = judge(reference, candidate)
    if passed and candidate_ms >= reference_ms:
        passed, reason = False, f"agrees with f32 but is not faster here ({candidate_ms / reference_ms:.2f}x its time)"
    return ClassifierVerdict(precision, passed, reason, traits.key(ov_version()), file_digest(config.model),
                             len(crops), round(agree, 4), round(reference_ms, 3), round(candidate_ms, 3))


def verdict_path(config: ClassifierConfig, cache: Path, device_key: str, precision: str) -> Path:
    return cache / "gates" / "classifiers" / f"{config.model.stem}-{file_digest(config.model)[:12]}" / \
        f"{device_key}-{precision}.json"


def _load(path: Path) -> ClassifierVerdict | None:
    try:
        return ClassifierVerdict(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def choose(name: str, config: ClassifierConfig, cache: Path, frames: Callable[[], list[np.ndarray]],
           traits: DeviceTraits | None = None) -> tuple[str, str]:
    """The precision for classifier ``name`` and why, in one line."""
    traits = traits or read_traits(config.device)
    failed: list[str] = []
    for precision in candidates(traits):
        if precision == "f32":
            return "f32", f"auto: f32 ({why(traits)}{'; ' if failed else ''}{'; '.join(failed)})"
        path = verdict_path(config, cache, traits.key(ov_version()), precision)
        verdict = _load(path)
        if verdict is None:
            crops = gate_crops(frames(), *_input_size(name, config, cache))
            if len(crops) < MIN_CROPS:
                failed.append(f"{precision} not gated: {len(crops)} crops to compare on")
                continue
            log.info("classifier %s: comparing %s with f32 on %d crops on this device (first use)", name, precision,
                     len(crops))
            verdict = run_gate(name, config, cache, crops, precision, traits)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(asdict(verdict)))
        log.info("classifier %s: precision gate: %s", name, verdict.line())
        if verdict.passed:
            return precision, f"auto: {precision} ({why(traits)}; gate {verdict.line()})"
        failed.append(f"{precision} not used: {verdict.reason}")
    return "f32", f"auto: f32 ({'; '.join(failed)})"


def _input_size(name: str, config: ClassifierConfig, cache: Path) -> tuple[int, int]:
    classifier = Classifier(name, config, cache)
    classifier.inspect()
    return classifier.height, classifier.width


def settle_classifiers(config: Config, cache: Path, frames: Callable[[], list[np.ndarray]] | None = None) -> Config:
    """``config`` with every used OpenVINO classifier's ``inference_precision: auto`` settled for this device;
    ``frames``: where gate crops come from (the detector gate's frames by default, read only if a gate runs)."""
    if frames is None:
        kept: list[list[np.ndarray]] = []

        def frames() -> list[np.ndarray]:
            if not kept:
                kept.append(frames_for(config, cache))
            return kept[0]

    used = sorted({look.classifier for camera in config.cameras.values() if camera.enabled
                   for look in camera.classify})
    settled = dict(config.classifiers)
    for name in used:
        classifier = settled[name]
        if classifier.backend != "openvino" or classifier.inference_precision != "auto":
            continue
        precision, reason = choose(name, classifier, cache, frames)
        log.info("classifier %s: precision %s", name, reason)
        settled[name] = classifier.model_copy(update={"inference_precision": precision})
    return config.model_copy(update={"classifiers": settled}) if settled != config.classifiers else config
