"""Calibration frames from the user's own cameras, stored on disk with a manifest.

Frames are spread over time (files: evenly over the clip; live sources: evenly over
a capture window), de-duplicated with a small grey thumbnail so a static scene does
not give 300 copies of one frame, and split per camera into calibration frames and
held-out frames (every k-th kept frame) that the accuracy gate uses and
quantization never sees.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edged.config.models import CameraConfig
from edged.errors import InputError
from edged.sources.opencv import OpenCvSource, SourceError
from edged.tools.progress import Progress

log = logging.getLogger(__name__)

THUMB = (32, 18)


@dataclass
class FrameRecord:
    camera: str
    file: str
    ts: float
    split: str  # "calibration" | "held_out"


@dataclass
class CameraSummary:
    seen: int = 0
    kept: int = 0
    duplicates: int = 0
    error: str = ""


@dataclass
class CalibrationSet:
    root: Path
    frames: list[FrameRecord] = field(default_factory=list)
    cameras: dict[str, CameraSummary] = field(default_factory=dict)

    def paths(self, split: str) -> list[Path]:
        return [self.root / f.file for f in self.frames if f.split == split]

    def digest(self) -> str:
        h = hashlib.sha256()
        for record in self.frames:
            h.update(record.file.encode())
            h.update((self.root / record.file).read_bytes())
        return h.hexdigest()

    def save(self) -> None:
        manifest = {"frames": [asdict(f) for f in self.frames],
                    "cameras": {k: asdict(v) for k, v in self.cameras.items()}}
        (self.root / "manifest.json").write_text(json.dumps(manifest, indent=1))

    @classmethod
    def load(cls, root: Path) -> CalibrationSet:
        data = json.loads((root / "manifest.json").read_text())
        return cls(root, [FrameRecord(**f) for f in data["frames"]],
                   {k: CameraSummary(**v) for k, v in data["cameras"].items()})

    @classmethod
    def from_directory(cls, root: Path, held_out_every: int = 5) -> CalibrationSet:
        """A directory of images (``edged export --calibration DIR``), split the same way."""
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
        if len(images) < 2:
            raise InputError(f"{root}: need at least 2 images for calibration and a held-out check")
        frames = [FrameRecord(p.parent.name if p.parent != root else "images", str(p.relative_to(root)), 0.0,
                              "held_out" if (i % held_out_every) == held_out_every - 1 else "calibration")
                  for i, p in enumerate(images)]
        return cls(root, frames, {})


def thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)


class Deduplicator:
    """Keeps a frame only if its thumbnail differs from every kept one by ``threshold`` (0..255)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.kept: list[np.ndarray] = []

    def is_new(self, image: np.ndarray) -> bool:
        thumb = thumbnail(image)
        for other in self.kept:
            if float(np.abs(thumb - other).mean()) < self.threshold:
                return False
        self.kept.append(thumb)
        return True


def split_every(count: int, every: int) -> list[str]:
    """Every ``every``-th frame held out (at least one when there are two or more)."""
    splits = ["held_out" if (i % every) == every - 1 else "calibration" for i in range(count)]
    if count >= 2 and "held_out" not in splits:
        splits[-1] = "held_out"
    return splits


def _capture_file(source: OpenCvSource, want: int, dedup: Deduplicator, summary: CameraSummary,
                  stop: threading.Event) -> list[np.ndarray]:
    source.open()
    total = source.frame_count()
    candidates = want * 3
    if total <= 0:
        total = candidates
    picks = set(np.linspace(0, max(0, total - 1), min(total, candidates)).round().astype(int).tolist())
    kept: list[np.ndarray] = []
    index = 0
    while not stop.is_set() and len(kept) < want and source.grab():
        if index in picks:
            frame = source.retrieve()
            summary.seen += 1
            if frame is not None:
                if dedup.is_new(frame):
                    kept.append(frame.copy())
                else:
                    summary.duplicates += 1
        index += 1
    return kept


def _capture_live(source: OpenCvSource, want: int, duration_s: float, dedup: Deduplicator,
                  summary: CameraSummary, stop: threading.Event) -> list[np.ndarray]:
    source.open()
    interval = duration_s / (want * 1.5)
    kept: list[np.ndarray] = []
    deadline = time.monotonic() + duration_s
    next_pick = time.monotonic()
    while not stop.is_set() and len(kept) < want and time.monotonic() < deadline:
        if not source.grab():
            raise SourceError("the stream stopped while capturing calibration frames")
        if time.monotonic() < next_pick:
            continue
        next_pick += interval
        frame = source.retrieve()
        summary.seen += 1
        if frame is None:
            continue
        if dedup.is_new(frame):
            kept.append(frame.copy())
        else:
            summary.duplicates += 1
    return kept


def capture(cameras: dict[str, CameraConfig], root: Path, frames_per_camera: int, duration_s: float,
            held_out_every: int = 5, dedup_threshold: float = 2.5) -> CalibrationSet:
    """Capture from every camera at once (live sources need real time); returns the stored set."""
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*/*.jpg"):
        old.unlink()
    result = CalibrationSet(root)
    captured: dict[str, list[np.ndarray]] = {}
    stop = threading.Event()
    total = frames_per_camera * len(cameras)
    progress = Progress("capturing calibration frames", total)
    lock = threading.Lock()

    def run(name: str, camera: CameraConfig) -> None:
        summary = CameraSummary()
        source = OpenCvSource(camera)
        dedup = Deduplicator(dedup_threshold)
        try:
            if camera.kind == "file":
                frames = _capture_file(source, frames_per_camera, dedup, summary, stop)
            else:
                frames = _capture_live(source, frames_per_camera, duration_s, dedup, summary, stop)
        except SourceError as exc:
            summary.error = exc.reason
            frames = []
        except Exception as exc:  # one camera's failure must not lose the others' frames
            log.exception("camera %s: capture failed", name)
            summary.error = f"capture failed: {exc}"
            frames = []
        finally:
            source.close()
        summary.kept = len(frames)
        with lock:
            captured[name] = frames
            result.cameras[name] = summary
            progress.update(len(frames), note=name)

    threads = [threading.Thread(target=run, args=(n, c), daemon=True) for n, c in cameras.items()]
    with progress:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for name, frames in captured.items():
        (root / name).mkdir(exist_ok=True)
        for i, (frame, split) in enumerate(zip(frames, split_every(len(frames), held_out_every))):
            rel = f"{name}/{i:04d}.jpg"
            cv2.imwrite(str(root / rel), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            result.frames.append(FrameRecord(name, rel, time.time(), split))
    result.save()
    for name, summary in result.cameras.items():
        level = logging.WARNING if summary.error or not summary.kept else logging.INFO
        log.log(level, "camera %s: kept %d of %d sampled frames (%d duplicates)%s", name, summary.kept,
                summary.seen, summary.duplicates, f"; {summary.error}" if summary.error else "")
    return result
