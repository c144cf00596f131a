"""The camera thread's analytics in ``edged bench``: tamper alerts on tampered and normal footage, and what the
motion gate costs per 720p frame against the colour conversion a gated frame saves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edged.analytics import CameraGate
from edged.bench.replay import camera, tamper_run
from edged.testing.media import (
    fixed_clip,
    long_clip,
    still_clip,
    stop_and_go_clip,
    tamper_clip,
    walk_in_clip,
)

# -- tamper ---------------------------------------------------------------------------------------------------


def tamper_case(media: Path, normal_s: float = 600.0) -> dict[str, Any]:
    """Each tamper clip (normal, then tampered from 20 s to 35 s, then normal) and ``normal_s`` of normal footage."""
    out: dict[str, Any] = {"clips": {}, "normal": {}}
    for kind, expected in (("covered", "covered"), ("blurred", "defocused"), ("moved", "moved")):
        found = tamper_run(tamper_clip(media, kind, 20.0, 35.0, 60.0))
        fired = [(t, x) for t, x in found if x.firing]
        resolved = [(t, x) for t, x in found if not x.firing]
        out["clips"][kind] = {
            "expected": f"camera_{expected}", "raised": [f"camera_{x.kind}" for _, x in fired],
            "fired_after_s": round(fired[0][0] - 20.0, 1) if fired else None,
            "resolved_after_s": round(resolved[0][0] - 35.0, 1) if resolved else None,
            "reason": fired[0][1].reason if fired else "",
            "right": [x.kind for _, x in fired] == [expected] and len(resolved) == 1,
        }
    for name, clip in (("fixed street camera", fixed_clip(media, normal_s)),
                       ("still scene (zidane.jpg, sensor noise)", still_clip(media, "zidane.jpg", 120.0)),
                       ("traffic stopping and going", stop_and_go_clip(media)),
                       ("a walker passing a parked bicycle", walk_in_clip(media))):
        started = time.process_time()
        found = tamper_run(clip)
        seconds = _duration(clip)
        out["normal"][name] = {"seconds": round(seconds), "alerts": [f"camera_{x.kind}" for _, x in found if x.firing],
                               "cpu_s": round(time.process_time() - started, 1)}
    return out


def _duration(clip: Path) -> float:
    import av

    with av.open(str(clip)) as container:
        return float(container.duration or 0) / 1e6


# -- the gate's cost on the camera thread ----------------------------------------------------------------------


def gate_cost_case(media: Path, frames_n: int = 300) -> dict[str, Any]:
    """CPU per 720p frame of the camera's gate (grey copy from the luma plane, motion, tamper twice a second),
    against the colour conversion a gated frame saves; decoded by PyAV as the daemon does."""
    import av

    from edged.analytics import grey_shape
    from edged.sources.pyav import luma_into

    gate = CameraGate("cost", camera(), lambda _c, _t: None)
    grey = np.empty(grey_shape(1280, 720, 320), np.uint8)
    bgr = np.empty((720, 1280, 3), np.uint8)
    spent = {"grey": 0.0, "gate": 0.0, "colour": 0.0}
    n = 0
    clock = time.thread_time
    with av.open(str(long_clip(media / "street-720p30.mp4"))) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for n, frame in enumerate(container.decode(stream), start=1):
            started = clock()
            luma_into(frame, grey)
            grey_done = clock()
            gate.decide(grey, n / 30.0)
            gate.after(grey, n / 30.0)
            gate_done = clock()
            converted: Any = frame.reformat(format="bgr24").planes[0]
            rows = np.frombuffer(converted, np.uint8).reshape(720, converted.line_size)
            np.copyto(bgr, rows[:, : 1280 * 3].reshape(720, 1280, 3))
            spent["grey"] += grey_done - started
            spent["gate"] += gate_done - grey_done
            spent["colour"] += clock() - gate_done
            if n >= frames_n:
                break
    return {"frames": n, **{f"{step}_ms": round(1e3 * seconds / n, 3) for step, seconds in spent.items()}}
