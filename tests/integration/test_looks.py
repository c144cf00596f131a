"""A second look at each object with real parts: the verifier (the real detector on an enlarged crop), a classifier
on OpenVINO and ONNX Runtime, and the whole chain in the daemon, published over a real broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edged.config.looks import VerifierConfig
from edged.looks.crops import rect
from edged.looks.verifier import Verifier
from edged.testing.broker import Mosquitto
from edged.testing.classifiers import LABELS, dominant_channel
from tests.support.types import MakeDaemon, Media, Subscribe

pytestmark = pytest.mark.integration


def test_the_verifier_confirms_people_and_rejects_a_box_on_the_road(media: Media, cache_dir: Path,
                                                                     built_model: Any) -> None:
    image = cv2.imread(str(media["bus.jpg"]))
    assert image is not None
    height, width = image.shape[:2]
    verifier = Verifier(VerifierConfig(inference_precision="f32"), "yolov3-tiny", cache_dir)
    verifier.start()
    try:
        person = verifier.labels.index("person")
        buffer = np.zeros((verifier.size[1], verifier.size[0], 3), np.uint8)

        def verdict(box: tuple[float, float, float, float]) -> bool:
            normalised = np.array(box, np.float32)
            where = rect(normalised, width, height, 3.0)
            assert where is not None
            fit = verifier.fit(where, width, height)
            x, y, w, h = where
            fit.apply(image[y:y + h, x:x + w], buffer)
            return verifier.check(buffer, fit, person, normalised, 0.3, 0.3).confirmed

        # bus.jpg (810x1080): the man on the left, and the man in the middle, by their boxes.
        assert verdict((0.06, 0.37, 0.30, 0.81))
        assert verdict((0.27, 0.38, 0.43, 0.80))
        # The road under the bus: no person there, however it is cropped.
        assert not verdict((0.45, 0.86, 0.55, 0.98))
        # A person's box shifted onto the bus's side: the detector finds no person where the box is.
        assert not verdict((0.55, 0.30, 0.70, 0.60))
    finally:
        verifier.close()


def test_sub_labels_colours_and_verdicts_reach_the_events_topic(tmp_path: Path, media: Media, broker: Mosquitto,
                                                                subscribe: Subscribe, daemon: MakeDaemon) -> None:
    model = dominant_channel(tmp_path / "dominant.onnx")
    cfg: dict[str, Any] = {
        "device_id": "looks", "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 0},
        "classifiers": {"dominant": {"model": str(model), "labels": list(LABELS), "mean": [0, 0, 0],
                                     "std": [1, 1, 1], "backend": "onnxruntime"}},
        "cameras": {"pitch": {
            "url": str(media["zidane.mp4"]), "loop": True, "fps": 5,
            "classify": [{"classifier": "dominant", "labels": ["person"], "every_s": 0.2, "attempts": 3,
                          "min_score": 0.34}],
            "verify": {"person": {}},
            "colors": {"labels": ["person"], "every_s": 0.2, "attempts": 3},
        }},
    }
    sub = subscribe(broker.port, "edged/looks/pitch/events")
    daemon(cfg)
    first = sub.wait_for(lambda m: m.json()["event"] == "new" and m.json()["label"] == "person", 90).json()
    assert first["verified"] is True  # the two men of zidane.jpg: the second look finds each where he stands
    looked = sub.wait_for(lambda m: m.json()["event"] == "update" and "sub_label" in m.json()
                          and "attributes" in m.json(), 60).json()
    sub_label = looked["sub_label"]
    assert sub_label["attempts"] >= 3 and sub_label["agree"] >= 0.6
    assert sub_label["label"] in LABELS and 0.34 <= sub_label["score"] <= 1.0
    assert set(looked["attributes"]["colors"]) <= {"black", "white", "grey", "red", "orange", "yellow", "green",
                                                   "blue", "purple", "pink", "brown"}
    assert looked["attributes"]["colors"]


def test_edged_check_names_a_classifier_that_does_not_match_its_labels(tmp_path: Path, cache_dir: Path,
                                                                      built_model: Any, media: Media,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from edged.cli import main

    good, bad = dominant_channel(tmp_path / "good.onnx"), dominant_channel(tmp_path / "bad.onnx", classes=4)
    head = ("engine: {model: yolov3-tiny, batch: 2}\nmqtt: {spool: " + str(tmp_path / "spool.db") + "}\n"
            "classifiers:\n  good: {model: " + str(good) + ", labels: [red, green, blue]}\n"
            "  bad: {model: " + str(bad) + ", labels: [red, green, blue]}\n")
    path = tmp_path / "edged.yaml"
    gate = "cameras:\n  gate: {url: " + str(media["zidane.mp4"])
    path.write_text(head + gate + ", detect: {labels: [person, car]}, classify: [{classifier: good, labels: "
                                  "[person]}], verify: {person: {}}, colors: {labels: [car]}, tiles: true}\n")
    assert main(["check", "-c", str(path), "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert "second looks: classify person with good" in out and "two tiles a frame" in out
    path.write_text(head + gate + ", detect: {labels: [person]}, classify: [{classifier: bad, labels: [person]}], "
                                  "verify: {car: {}}}\n")
    assert main(["check", "-c", str(path), "--cache-dir", str(cache_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in "\n".join(err), err
    assert "cameras.gate.verify: 'car' is not among the labels this camera detects" in err[0]
    assert "classifiers.bad.model" in err[1] and "the output has 4 classes but 3 labels are given" in err[1]


def test_the_classifier_precision_gate_settles_auto_on_this_device_once(tmp_path: Path, media: Media) -> None:
    from edged.config.looks import ClassifierConfig
    from edged.engines.precision import candidates, read_traits
    from edged.tools.classifier_gate import MIN_AGREE, choose, gate_crops, verdict_path
    from edged.tools.precision_gate import ov_version

    model = dominant_channel(tmp_path / "dominant.onnx")
    config = ClassifierConfig(model=model, labels=list(LABELS), mean=(0, 0, 0), std=(1, 1, 1))
    frames = [cv2.imread(str(media[name])) for name in ("bus.jpg", "zidane.jpg")]
    crops = gate_crops([f for f in frames if f is not None], 32, 32)
    assert crops.shape == (10, 32, 32, 3)
    asked: list[int] = []

    def frames_once() -> list[np.ndarray]:
        asked.append(1)
        return [f for f in frames if f is not None]

    traits = read_traits("CPU")
    cache = tmp_path / "cache"
    precision, reason = choose("dominant", config, cache, frames_once, traits)
    first = candidates(traits)[0]
    if first == "f32":  # no faster float precision on this CPU: nothing to gate
        assert precision == "f32" and not asked and "auto: f32" in reason
        return
    verdict = verdict_path(config, cache, traits.key(ov_version()), first)
    assert asked == [1] and verdict.is_file(), reason
    kept = json.loads(verdict.read_text())
    assert kept["crops"] == len(crops) and kept["precision"] == first
    # The classifier names the dominant primary: a float precision agrees with f32 on real crops.
    assert kept["agree"] >= MIN_AGREE, kept
    assert precision == (first if kept["passed"] else "f32"), (precision, kept)
    # The verdict is kept: the next start decides without frames.
    assert choose("dominant", config, cache, frames_once, traits) == (precision, reason) and asked == [1]
