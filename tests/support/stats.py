"""Typed stats snapshots for unit tests of the readers (health rules, alerts, metrics)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edged.pipeline.stats import CameraStats, EngineStats, Percentiles, PipelineStats, Snapshot
from edged.publish.stats import PublisherStats, SpoolStats
from edged.sources.state import CameraState, WorkerStats


def worker(state: CameraState = CameraState.ONLINE, **kw: Any) -> WorkerStats:
    base = WorkerStats(
        state=state, reason="", frames_read=0, frames_decoded=0, frames_skipped=0, frames_dropped=0, reconnects=0,
        stalls=0, flapping=False, heartbeat_age_s=0.0, stale_after_s=7.0, stall_limit_s=7.0, thread_alive=True,
        thread_idle_s=0.0, thread_limit_s=19.0,
    )
    return replace(base, **kw)


def camera(name: str, age_p95: float | None = None, **kw: Any) -> CameraStats:
    return CameraStats(name=name, worker=worker(**kw), frames_processed=0, target_fps=None, governed_fps=None,
                       age_ms=Percentiles(p95=age_p95))


def pipeline(*cameras: CameraStats, infer_p95: float | None = None, **engine: Any) -> PipelineStats:
    return PipelineStats(cameras={c.name: c for c in cameras},
                         engine=EngineStats({}, infer_ms=Percentiles(p95=infer_p95), **engine), uptime_s=1.0)


def snapshot(*cameras: CameraStats, connected: bool = True, spool_dropped: int = 0, **engine: Any) -> Snapshot:
    mqtt = PublisherStats("mqtt://127.0.0.1:1883", connected, 0, 0, 0, 0, SpoolStats(0, 0, spool_dropped, 0, 0))
    return Snapshot(pipeline(*cameras, **engine), mqtt)
