"""The pieces that measure the pipeline's own cost: per-thread CPU by stage, the stand-in engine, the engine cases."""

from __future__ import annotations

import threading
import time

import numpy as np

from edged.bench.harness import EngineFigures
from edged.bench.sizes import USUAL, pick_cases
from edged.bench.standin import StandInEngine
from edged.engines.base import InputSpec
from edged.pipeline.cpu import NATIVE, by_stage, thread_cpu


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_threads_cpu_is_counted_under_the_stage_its_name_says() -> None:
    before = thread_cpu()
    done = threading.Event()

    def work() -> None:
        _burn(0.3)
        done.wait(5)  # stay alive until read: a thread that ended took its time with it

    thread = threading.Thread(target=work, name="camera-test")
    thread.start()
    time.sleep(0.05)
    while thread.is_alive() and thread_cpu()["decode"] - before["decode"] < 0.25:
        time.sleep(0.05)
    after = thread_cpu()
    done.set()
    thread.join()
    assert after["decode"] - before["decode"] >= 0.25
    assert after["scheduling"] - before["scheduling"] < 0.1
    assert set(after) >= {"decode", "scheduling", "event_loop", "mqtt_network", "spool", NATIVE}


def test_steps_a_thread_clocks_itself_are_taken_out_of_that_threads_figure() -> None:
    stages = by_stage({"event_loop": {"serialise": 0.0}})
    loop = stages["event_loop"]
    timed = by_stage({"event_loop": {"serialise": loop / 2, "publish": loop / 4}})
    assert abs(timed["event_loop"] - loop / 4) < 0.05 and timed["serialise"] == loop / 2
    assert timed["publish"] == loop / 4


def test_the_stand_in_engine_returns_each_recorded_output_in_turn_at_once() -> None:
    outputs = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    engine = StandInEngine(outputs, InputSpec(2, 32, 32))
    engine.start()
    assert engine.output_shape == (2, 6, 7) and engine.input_buffer(1).shape == (2, 32, 32, 3)
    got: list[np.ndarray] = []
    for slot in (0, 1, 0):
        engine.submit(slot, got.append)  # type: ignore[arg-type]
    assert len(got) == 3  # answered within submit, on the caller's thread
    assert np.array_equal(got[0], outputs[0:2]) and np.array_equal(got[1], outputs[2:4])
    assert np.array_equal(got[2], outputs[0:2])  # 5 outputs make two whole batches, then it starts again
    assert got[0].base is not None  # views of the recording, nothing copied per frame


def _fig(fps: float) -> EngineFigures:
    return EngineFigures(fps, 1000 / fps, 1000 / fps, 100, {})


def test_engine_cases_are_found_by_measuring_sizes_until_one_qualifies() -> None:
    speeds = {320: 150.0, 256: 230.0, 192: 400.0, 608: 90.0, 832: 52.0, 1024: 30.0}
    built: list[int] = []

    def build(size: int) -> str:
        built.append(size)
        return f"m{size}"

    fast, slow, tried = pick_cases(lambda model: _fig(speeds[int(model[1:])]), build, _fig(120.0))
    assert fast is not None and (fast.size, fast.model, fast.bare.fps) == (256, "m256", 230.0)
    assert slow is not None and slow.size == 832
    assert built == [320, 256, 608, 832]  # stops at the first that qualifies
    assert tried == {USUAL: 120.0, 320: 150.0, 256: 230.0, 608: 90.0, 832: 52.0}


def test_the_usual_size_is_the_fast_case_where_it_is_fast_enough() -> None:
    fast, slow, _ = pick_cases(lambda model: _fig(10.0), lambda size: f"m{size}", _fig(240.0))
    assert fast is not None and fast.size == USUAL
    assert slow is not None and slow.size == 608  # the first slower size already runs under 60
    fast, slow, _ = pick_cases(lambda model: _fig(100.0), lambda size: f"m{size}", _fig(140.0))
    assert fast is None and slow is None  # nothing qualifies here: no case, and the bench says so
