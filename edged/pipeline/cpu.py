"""Where the process's CPU goes, stage by stage, read when asked (``/metrics``, the bench).

Each thread of the daemon does one job, so the kernel's CPU time per thread
(``/proc/self/task/*/stat``) says what each stage costs without a clock on the hot
path: camera threads read and decode, the scheduler thread forms batches, letterboxes
and decodes boxes, paho's thread writes to the network, the spool's thread writes
SQLite and the looks thread runs second looks. Threads that Python did not start (the
engine's, FFmpeg's) are one figure.
The scheduler thread clocks its own steps with the thread's CPU clock: letterbox,
box decode, and the result stage's track/events, serialise and publish; the rest of
it is scheduling and hand-offs. The event loop's thread is telemetry, HTTP, the
spool's bookkeeping and paho's callbacks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

# Thread name prefix -> stage. The first match wins.
ROLES: tuple[tuple[str, str], ...] = (
    ("camera-", "decode"),
    ("scheduler", "scheduling"),
    ("MainThread", "event_loop"),
    ("paho-mqtt", "mqtt_network"),
    ("spool", "spool"),
    ("openvino-wait", "engine_handoff"),
    ("jpeg", "jpeg"),
    ("looks", "looks"),
)
NATIVE = "engine_and_native"  # threads Python did not start: the engine's, FFmpeg's decoder threads
OTHER = "other_python"


def _thread_seconds(tid: int, ticks: int) -> float | None:
    try:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    except OSError:  # the thread ended meanwhile, or no /proc (not Linux)
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of the live threads, by stage (empty where /proc is missing).

    A thread that ended took its time with it, so compare two reads only while the
    threads live (a camera that reconnects keeps its thread).
    """
    root = Path("/proc/self/task")
    if not root.is_dir():
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    names = {thread.native_id: thread.name for thread in threading.enumerate() if thread.native_id is not None}
    out = dict.fromkeys([stage for _, stage in ROLES] + [OTHER, NATIVE], 0.0)
    for entry in os.listdir(root):
        seconds = _thread_seconds(int(entry), ticks)
        if seconds is None:
            continue
        name = names.get(int(entry))
        stage = NATIVE if name is None else next((s for prefix, s in ROLES if name.startswith(prefix)), OTHER)
        out[stage] += seconds
    return out


def by_stage(timed: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Every stage's CPU seconds: the threads', each split into the steps it clocked itself.

    ``timed``: thread stage -> {step: CPU seconds}; the thread keeps what is left over.
    """
    out = thread_cpu()
    for thread, steps in timed.items():
        if thread in out:
            out[thread] = max(0.0, out[thread] - sum(steps.values()))
        out.update(steps)
    return out
