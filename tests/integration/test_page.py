"""The web page in a real headless Chromium, snapshots over MQTT and HTTP, auth, and a burst of requests."""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edged.testing.broker import Mosquitto
from edged.testing.daemon_process import DaemonProcess
from edged.testing.media import fixed_clip, still_clip
from edged.testing.rtsp import RtspServer
from tests.support.poll import until
from tests.support.types import MakeDaemon, Media, Subscribe

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
USER, PASSWORD = "viewer", "page-pass-4f9c2e"
CAMERA_SECRET = "cam-secret-77a1"


def get(port: int, path: str, auth: bool = True, timeout: float = 10) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


@pytest.fixture
def page_daemon(media: Media, broker: Mosquitto, daemon: MakeDaemon) -> Any:
    directory = media["zidane.mp4"].parent
    rtsp = RtspServer({"street": fixed_clip(directory, 60.0)}).start()
    url = rtsp.url("street").replace("rtsp://", f"rtsp://admin:{CAMERA_SECRET}@")
    config = {
        "device_id": "page", "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "engine": {"model": "yolov3-tiny"}, "telemetry": {"interval_s": 1},
        "http": {"listen": "127.0.0.1:0", "auth": {"username": USER, "password": "${PAGE_PASSWORD}"}},
        "cameras": {
            "street": {"url": url, "fps": 10, "motion": {}, "colors": {"labels": ["person", "car"], "every_s": 0.3}},
            "zidane": {"url": str(still_clip(directory, "zidane.jpg", 60.0)), "loop": True, "fps": 5,
                       "motion": {"refresh_s": 1}, "colors": {"labels": ["person"], "every_s": 0.5}},
            "bus": {"url": str(still_clip(directory, "bus.jpg", 60.0)), "loop": True, "fps": 5,
                    "motion": {"refresh_s": 1}},
        },
    }
    proc = daemon(config, env={"PAGE_PASSWORD": PASSWORD})
    port = until(proc.http_port, 60, "the HTTP port in the log")
    try:
        yield proc, port
    finally:
        rtsp.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (scripts/bootstrap.sh --test installs it)")
def test_the_page_shows_every_camera_in_chromium(page_daemon: tuple[DaemonProcess, int], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    proc, port = page_daemon
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                          http_credentials={"username": USER, "password": PASSWORD})
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(
                "() => { const cards = document.querySelectorAll('.camera'); return cards.length === 3 && "
                "[...cards].every(c => c.querySelector('img').naturalWidth > 0 && "
                "c.querySelector('.state').textContent === 'online'); }", timeout=60_000)
            page.wait_for_function("() => document.querySelectorAll('.chart polyline').length >= 3",
                                   timeout=30_000)
            page.wait_for_function("() => document.querySelector('.events img') !== null", timeout=30_000)
            # A second look in the event list: the colours edged named for an object (a person on zidane, a car or
            # a person in the street).
            page.wait_for_function(
                "() => [...document.querySelectorAll('#events li')].some(li => "
                "/: (person|car) [a-z]+(\\/[a-z]+)? #\\d+ /.test(li.textContent))", timeout=30_000)
            looked = page.eval_on_selector_all("#events li", "nodes => nodes.map(n => n.textContent)")
            summary = page.text_content("#summary") or ""
            names = page.eval_on_selector_all(".camera .name", "nodes => nodes.map(n => n.textContent)")
            rates = page.eval_on_selector_all(".camera .info .tag", "nodes => nodes.map(n => n.textContent)")
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            html = page.content()
        finally:
            browser.close()
    assert sorted(names) == ["bus", "street", "zidane"]
    colours = {"black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown"}
    shown = [re.search(r": (?:person|car) ([a-z/]+) #", text) for text in looked]
    assert any(m and set(m.group(1).split("/")) <= colours for m in shown), looked
    # The model file and the precision the engine reports it runs at (the start-up line's), not the file's variant.
    running = re.search(r"openvino \S+ on CPU, (\w+),", proc.log())
    assert running is not None and f"openvino on CPU: yolov3-tiny fp32, running {running.group(1)}" in summary, summary
    assert any(r.endswith("fps") and not r.startswith("–") for r in rates), rates
    assert shot.stat().st_size > 20_000
    assert problems == []
    assert CAMERA_SECRET not in html and PASSWORD not in html
    assert "Traceback" not in proc.log()
    print(f"screenshot: {shot}")


def test_snapshots_auth_and_a_request_burst(page_daemon: tuple[DaemonProcess, int], broker: Mosquitto,
                                           subscribe: Subscribe) -> None:
    import cv2

    proc, port = page_daemon
    sub = subscribe(broker.port, "edged/page/#")
    # Without credentials: 401 everywhere but /healthz.
    assert get(port, "/api/state", auth=False)[0] == 401
    # A track id that Python calls a digit but int() does not take ('²'): a 404, not a 500.
    assert get(port, "/api/cameras/zidane/tracks/%C2%B2.jpg")[0] == 404
    assert get(port, "/", auth=False)[0] == 401
    assert get(port, "/healthz", auth=False)[0] in (200, 503)  # not 401: health needs no credentials
    # A snapshot on the retained topic: a JPEG of a person, the same picture over HTTP.
    snap = sub.wait_for(lambda m: m.topic == "edged/page/zidane/person/snapshot" and bool(m.payload), 60,
                        "a person snapshot")
    picture = cv2.imdecode(np.frombuffer(snap.payload, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape[1] == 640  # zidane.jpg is 1280 wide: halved to fit snapshots.width
    status, body, headers = get(port, "/api/cameras/zidane/person/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    events = until(lambda: [e for e in json.loads(get(port, "/api/events")[1]) if "snapshot" in e],
                   30, "an event with its snapshot")
    assert get(port, events[0]["snapshot"])[0] == 200
    # The live picture: 204 until the camera's next look, then a JPEG with boxes.
    def live() -> dict[str, str] | None:
        status, _, headers = get(port, "/api/cameras/street/live.jpg")
        return headers if status == 200 else None

    assert until(live, 30, "a live picture")["Content-Type"] == "image/jpeg"
    # The RTSP camera's pictures are kept as the decoder's planes: the JPEG is still the colour picture, 640x360.
    shown = cv2.imdecode(np.frombuffer(get(port, "/api/cameras/street/live.jpg")[1], np.uint8), cv2.IMREAD_UNCHANGED)
    assert shown is not None and shown.shape == (360, 640, 3)
    assert float(np.abs(shown[..., 0].astype(np.int16) - shown[..., 2]).mean()) > 1.0  # not grey
    assert get(port, "/api/cameras/nope/live.jpg")[0] == 404
    assert get(port, "/api/cameras/street/tracks/99999999999999.jpg")[0] == 404

    # A burst: 8 clients asking for pictures and state as fast as they can; detections keep coming.
    def rate(seconds: float) -> float:
        before = len(sub.on("edged/page/street/detections"))
        time.sleep(seconds)
        return (len(sub.on("edged/page/street/detections")) - before) / seconds

    calm = rate(4.0)
    stop = time.monotonic() + 5.0
    served = [0]

    def client(index: int) -> None:
        paths = ["/api/cameras/street/live.jpg", "/api/state", "/api/cameras/bus/live.jpg", "/", "/api/events"]
        while time.monotonic() < stop:
            if get(port, paths[index % len(paths)], timeout=5)[0] in (200, 204, 503):
                served[0] += 1

    with ThreadPoolExecutor(8) as pool:
        burst = pool.submit(rate, 4.0)
        for index in range(8):
            pool.submit(client, index)
        during = burst.result()
    print(f"detections/s calm {calm:.1f}, during the burst {during:.1f}; {served[0]} requests served")
    assert served[0] > 50 and during > 0
    log = proc.log()
    assert "Traceback" not in log and CAMERA_SECRET not in log and PASSWORD not in log
    for path in ("/api/state", "/api/events", "/metrics", "/"):
        assert CAMERA_SECRET.encode() not in get(port, path)[1]
