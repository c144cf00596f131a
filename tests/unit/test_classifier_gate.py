"""The classifier precision gate's judgement and crops (the gate on a real compiled classifier: integration)."""

from __future__ import annotations

import numpy as np

from edged.tools.classifier_gate import MIN_AGREE, ClassifierVerdict, gate_crops, judge


def test_a_candidate_passes_only_finite_and_agreeing() -> None:
    reference = np.eye(4, dtype=np.float32)[[0, 1, 2, 3] * 10]
    assert judge(reference, reference + 0.01)[:2] == (True, 1.0)
    flipped = reference.copy()
    flipped[:3] = np.eye(4, dtype=np.float32)[[1, 2, 3]]  # 3 of 40 disagree: 92.5 %
    passed, agree, reason = judge(reference, flipped)
    assert not passed and agree == 0.925 and agree < MIN_AGREE and "agreement" in reason
    broken = reference.copy()
    broken[5, 2] = np.nan
    assert judge(reference, broken) == (False, 0.0, "a score was NaN or inf")


def test_crops_are_the_centre_and_quarters_of_each_frame_at_the_input_size() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[:100, :150] = (0, 0, 255)  # the top-left quarter is red
    crops = gate_crops([frame, np.zeros((10, 10, 3), np.uint8)], 24, 32)  # the tiny frame gives none
    assert crops.shape == (5, 24, 32, 3) and crops.dtype == np.uint8
    assert (crops[1] == (0, 0, 255)).all()  # the top-left quarter's square
    assert gate_crops([frame] * 20, 8, 8, limit=12).shape[0] == 12
    assert gate_crops([], 8, 8).shape == (0, 8, 8, 3)


def test_the_verdict_reads_as_one_line() -> None:
    verdict = ClassifierVerdict("bf16", True, "agrees with f32", "key", "digest", 40, 0.975, 2.0, 1.1)
    assert verdict.line() == "bf16: best class as f32's on 97.5 % of 40 crops, 1.10 against 2.00 ms a crop: " \
                             "passed (agrees with f32)"
