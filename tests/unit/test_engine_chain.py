"""The engine chain with fake engines: load failures, errors, hangs, returns, and no batch lost."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from edged.engines.base import Done, InputSpec
from edged.engines.chain import Change, EngineChain
from edged.errors import EngineError


class Fake:
    def __init__(self, value: float, mode: str = "ok", shape: tuple[int, ...] = (1, 4, 6), loads: bool = True,
                 slots: int = 2) -> None:
        self.value = value
        self.mode = mode  # ok, error (the callback brings an exception), raise (submit raises), hang
        self.loads = loads
        self.input_spec = InputSpec(1, 8, 8)
        self.num_slots = slots
        self.output_shape = shape
        self.buffers = [np.zeros(self.input_spec.shape, np.uint8) for _ in range(slots)]
        self.closed = 0
        self.seen: list[int] = []  # the first byte of each batch submitted here
        self.starts = 0
        self.hung: list[Done] = []

    def start(self) -> None:
        self.starts += 1
        if not self.loads:
            raise RuntimeError("no such device")

    def input_buffer(self, slot: int) -> np.ndarray:
        return self.buffers[slot]

    def submit(self, slot: int, done: Done) -> None:
        if self.mode == "raise":
            raise RuntimeError("device lost")
        self.seen.append(int(self.buffers[slot].flat[0]))
        if self.mode == "hang":
            self.hung.append(done)
            return
        result: Any = RuntimeError("infer failed") if self.mode == "error" else np.full(self.output_shape, self.value)
        threading.Timer(0.01, done, (result,)).start()

    def describe(self) -> dict[str, Any]:
        return {"backend": "fake", "value": self.value}

    def close(self) -> None:
        self.closed += 1


def run(chain: EngineChain, frame: int, slot: int = 0, timeout: float = 5.0) -> np.ndarray | BaseException:
    chain.input_buffer(slot)[:] = frame
    got: list[np.ndarray | BaseException] = []
    answered = threading.Event()

    def done(result: np.ndarray | BaseException) -> None:
        got.append(result)
        answered.set()

    chain.submit(slot, done)
    assert answered.wait(timeout), "no answer"
    return got[0]


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def make(*engines: Fake, timeout_s: float = 0.3) -> tuple[EngineChain, list[Change]]:
    changes: list[Change] = []
    chain = EngineChain([(f"e{i}", e) for i, e in enumerate(engines)], timeout_s=timeout_s,
                        on_change=changes.append, probe_min_s=0.05, probe_max_s=0.2)
    chain.start()
    return chain, changes


def test_the_primary_runs_with_no_copy_and_the_fallback_stays_warm() -> None:
    primary, fallback = Fake(1.0), Fake(2.0)
    chain, changes = make(primary, fallback)
    try:
        assert chain.input_buffer(0) is primary.buffers[0]
        assert float(run(chain, 7).flat[0]) == 1.0  # type: ignore[union-attr]
        assert fallback.starts == 1 and fallback.seen == [] and changes == []
    finally:
        chain.close()


def test_an_error_fails_over_with_the_batch_and_the_primary_returns() -> None:
    primary, fallback = Fake(1.0, mode="error"), Fake(2.0)
    chain, changes = make(primary, fallback)
    try:
        result = run(chain, 9)
        assert isinstance(result, np.ndarray) and float(result.flat[0]) == 2.0
        assert fallback.seen == [9]  # the failed batch went to the fallback, copied into its buffer
        assert [(c.before, c.now, c.returned) for c in changes] == [("e0", "e1", False)]
        assert "infer failed" in changes[0].reason
        assert chain.describe()["in_use"] == "e1" and "e0" in chain.describe()["failed"]
        primary.mode = "ok"
        wait_until(lambda: len(changes) == 2)
        assert changes[1].returned and changes[1].now == "e0" and changes[1].down_s > 0
        assert float(run(chain, 3).flat[0]) == 1.0  # type: ignore[union-attr]
    finally:
        chain.close()


def test_a_hang_fails_over_within_the_timeout_and_late_answers_are_ignored() -> None:
    primary, fallback = Fake(1.0, mode="hang"), Fake(2.0)
    chain, changes = make(primary, fallback, timeout_s=0.2)
    try:
        result = run(chain, 5)
        assert isinstance(result, np.ndarray) and float(result.flat[0]) == 2.0
        # The chain's own hang rule moved the batch (its configured timeout, named), while the primary still held
        # it unanswered: behaviour, not the clock.
        assert changes[0].reason.endswith("no answer within 0.2 s (hung)") and len(primary.hung) == 1
        primary.hung[0](np.full(primary.output_shape, 1.0))  # the hung engine answers at last: nobody listens
        assert fallback.seen == [5]
    finally:
        chain.close()


def test_a_primary_that_cannot_load_is_loaded_again_later() -> None:
    primary, fallback = Fake(1.0, loads=False), Fake(2.0)
    chain, changes = make(primary, fallback)
    try:
        assert changes[0].before == "e0" and "no such device" in changes[0].reason
        result = run(chain, 4)
        assert isinstance(result, np.ndarray) and float(result.flat[0]) == 2.0
        primary.loads = True
        wait_until(lambda: any(c.returned for c in changes))
        assert primary.starts >= 2
    finally:
        chain.close()


def test_no_engine_left_is_an_error_for_the_batch() -> None:
    chain, _ = make(Fake(1.0, mode="raise"), Fake(2.0, mode="error"))
    try:
        result = run(chain, 1)
        assert isinstance(result, EngineError) and "no other engine" in str(result)
    finally:
        chain.close()


def test_engines_of_a_chain_must_agree_on_the_model() -> None:
    with pytest.raises(EngineError, match="same model"):
        make(Fake(1.0), Fake(2.0, shape=(1, 5, 6)))
    with pytest.raises(EngineError, match="no engine of the chain loaded"):
        make(Fake(1.0, loads=False), Fake(2.0, loads=False))


def test_a_chain_in_the_config(tmp_path: Any) -> None:
    from pathlib import Path

    from edged.config import load_config
    from edged.errors import ConfigError

    text = ("engine:\n  - {backend: openvino, model: yolov3-tiny, device: GPU, timeout_s: 1}\n"
            "  - {model: yolov3-tiny}\ncameras: {gate: {url: 'rtsp://h/s'}}\n")
    config = load_config(Path("chain.yaml"), {}, text=text)
    assert [e.backend for e in config.engines] == ["openvino", "openvino"]
    assert config.engine.device == "GPU" and config.fallbacks[0].device == "CPU"  # type: ignore[union-attr]
    bad = text.replace("{model: yolov3-tiny}", "{model: yolov3-tiny, devise: CPU}")
    with pytest.raises(ConfigError) as raised:
        load_config(Path("chain.yaml"), {}, text=bad)
    assert "chain.yaml:3: engine[1]" in str(raised.value) and "devise" in str(raised.value)
    with pytest.raises(ConfigError, match="empty list"):
        load_config(Path("chain.yaml"), {}, text="engine: []\ncameras: {gate: {url: 'rtsp://h/s'}}\n")


def test_a_remote_primary_down_at_start_returns_once_and_stays() -> None:
    """A KServe primary (2 requests) down at start, the OpenVINO fallback with 3: the chain runs 2 slots from the
    start, so the primary fits when it comes up: one failover, one return, no flapping."""
    primary, fallback = Fake(1.0, loads=False, slots=2), Fake(2.0, slots=3)
    chain, changes = make(primary, fallback)
    try:
        assert chain.num_slots == 2
        primary.loads = True
        wait_until(lambda: any(c.returned for c in changes))
        for n in range(20):
            assert float(run(chain, n, slot=n % chain.num_slots).flat[0]) == 1.0  # type: ignore[union-attr]
        time.sleep(0.5)  # probes would have run several times by now
        assert [(c.before, c.now, c.returned) for c in changes] == [("e0", "e1", False), ("e1", "e0", True)]
    finally:
        chain.close()


def test_an_engine_that_comes_up_unfit_is_said_once_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    primary, fallback = Fake(1.0, loads=False, shape=(1, 5, 6)), Fake(2.0)
    chain, changes = make(primary, fallback)
    try:
        primary.loads = True
        wait_until(lambda: primary.closed == 1)
        time.sleep(0.6)  # several probe periods (0.05 doubling to 0.2 s)
        assert primary.starts == 2 and len(changes) == 1 and not changes[0].returned
        assert float(run(chain, 1).flat[0]) == 2.0  # type: ignore[union-attr]
        assert caplog.text.count("cannot rejoin the chain") == 1
        assert "cannot rejoin" in chain.describe()["failed"]["e0"]
    finally:
        chain.close()
