"""How long edged takes to recover from each fault, measured with real parts.

    python -m studies.faults

- camera server killed (-9) and restarted: restart -> first detection again;
- camera server frozen (SIGSTOP) for 8 s: freeze -> reported; SIGCONT -> detections again;
- broker stopped for 6 s: broker back -> reconnected, -> every spooled event delivered;
- daemon killed (-9) during a broker outage and restarted: -> spooled events delivered;
- SIGTERM: signal -> process exited.
Read timeout 2 s, reconnect backoff 0.5..2 s. Prints one line per fault and writes
out/studies/faults.json. Never fails on time.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edged.bench.harness import workspace
from edged.testing.broker import Mosquitto
from edged.testing.daemon_process import DaemonProcess
from edged.testing.rtsp import RtspServer
from edged.testing.subscriber import Message, Subscriber


def until(sub: Subscriber, predicate: Callable[[Message], bool], timeout: float = 90) -> float:
    """Seconds until a message matching ``predicate`` arrives, counting from now."""
    start, since = time.monotonic(), time.time()
    sub.wait_for(lambda m: m.received >= since and predicate(m), timeout)
    return time.monotonic() - start


def main() -> int:
    out = Path("out/studies")
    ws = workspace(out)
    cache = ws.cache
    clip = ws.long_clip("zidane.mp4")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edged-faults-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker", persistence=True).start()
        server = RtspServer({"cam": clip}).start()
        sub = Subscriber(broker.port, "edged/faults/#", client_id="faults-bench", persistent=True)
        config = {"device_id": "faults", "log": {"level": "warning"}, "telemetry": {"interval_s": 0},
                  "mqtt": {"host": "127.0.0.1", "port": broker.port, "spool": str(work / "spool.db")},
                  "engine": {"model": "yolov3-tiny"},
                  "cameras": {
                      "rtsp": {"url": server.url("cam"), "fps": 5, "read_timeout_s": 2, "open_timeout_s": 3,
                               "reconnect": {"min_s": 0.5, "max_s": 2}},
                      "street": {"url": str(ws.media["street.mp4"]), "loop": True, "fps": 10},
                  }}
        proc = DaemonProcess(config, work / "d1", cache).start()
        detection = lambda m: m.topic == "edged/faults/rtsp/detections"  # noqa: E731
        until(sub, detection)

        server.kill()
        time.sleep(3)
        server.start()
        results["rtsp_killed_restarted_s"] = until(sub, detection)

        server.signal(signal.SIGSTOP)
        results["rtsp_freeze_detected_s"] = until(sub, lambda m: m.topic == "edged/faults/rtsp/status"
                                                  and m.json()["state"] == "reconnecting")
        time.sleep(8 - results["rtsp_freeze_detected_s"])
        server.signal(signal.SIGCONT)
        results["rtsp_resumed_s"] = until(sub, detection)

        def events() -> list[dict[str, Any]]:
            return [m.json() for m in sub.on("edged/faults/street/events")]

        broker.stop()
        time.sleep(6)
        broker.start()
        start = time.monotonic()
        until(sub, lambda m: m.topic == "edged/faults/status" and m.text == "online")
        results["broker_back_reconnected_s"] = time.monotonic() - start
        run = events()[-1]["run"]
        newest = max(e["seq"] for e in events() if e["run"] == run) + 3
        while {e["seq"] for e in events() if e["run"] == run} < set(range(1, newest)):
            time.sleep(0.05)
        results["broker_back_spool_drained_s"] = time.monotonic() - start

        broker.stop()
        time.sleep(4)
        proc.signal(signal.SIGKILL)
        proc.wait(10)
        with sqlite3.connect(work / "spool.db") as db:
            spooled = max(json.loads(p)["seq"] for (p,) in db.execute(
                "SELECT payload FROM outbox WHERE topic = 'edged/faults/street/events'"))
        broker.start()
        start = time.monotonic()
        proc = DaemonProcess(config, work / "d2", cache).start()
        until(sub, detection)
        results["daemon_restart_first_detection_s"] = time.monotonic() - start
        while {e["seq"] for e in events() if e["run"] == run} < set(range(1, spooled + 1)):
            time.sleep(0.05)
        results["daemon_restart_spool_delivered_s"] = time.monotonic() - start

        start = time.monotonic()
        proc.signal(signal.SIGTERM)
        proc.wait(60)
        results["sigterm_exit_s"] = time.monotonic() - start
        sub.close()
        server.stop()
        broker.stop()
    (out / "faults.json").write_text(json.dumps(results, indent=2))
    for key, value in results.items():
        print(f"{key:36} {value:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
