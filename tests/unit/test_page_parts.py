"""Discovery payloads, controls, snapshots (best frames, the encoder's bounds), pictures, HTTP auth settings."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edged.analytics.camera import Counted
from edged.analytics.tracker import Track, TrackUpdate
from edged.config.models import Config, DetectConfig, HttpConfig
from edged.models.yolo import Detections
from edged.pipeline.jpeg import JpegEncoder, crop_around
from edged.pipeline.lanes import CameraLane
from edged.pipeline.pictures import CameraPictures, LiveFrame, PictureRing
from edged.pipeline.snapshots import BestFrames as Best
from edged.pipeline.snapshots import BufferPool, Job
from edged.publish.contract import Topics
from edged.publish.homeassistant import Discovery, configuration_url, slug
from edged.service.controls import Controls
from edged.sources.demand import Demand
from edged.sources.slot import FrameInfo, FrameSlot


def config(**extra: Any) -> Config:
    return Config.model_validate({"device_id": "dev 1", "engine": {"model": "m"},
                                  "cameras": {"gate": {"url": "rtsp://h/s"}}, **extra})


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.handlers: dict[str, Any] = {}

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        assert qos == 1 and retain
        self.sent.append((topic, payload))
        return True

    def subscribe(self, topic_filter: str, handler: Any) -> None:
        self.handlers[topic_filter] = handler


def discovery(cfg: Config, counted: dict[str, Counted]) -> tuple[Discovery, FakePublisher]:
    pub = FakePublisher()
    found = Discovery(config=cfg, topics=Topics("edged", cfg.device_id), publisher=pub, counted=lambda: counted,
                      engine="openvino CPU", url=None)
    return found, pub


def test_slugs_are_stable_and_keep_different_names_apart() -> None:
    assert slug("edged", "gate", "all", "person") == "edged_gate_all_person"
    assert slug("cell phone") != slug("cell_phone") and slug("cell phone").startswith("cell_phone_")
    assert slug("cell phone") == slug("cell phone")


def test_discovery_entities_read_edgeds_own_topics() -> None:
    counted = {"gate": Counted({"all": frozenset({"person"}), "yard": frozenset({"person", "car"}),
                                "lawn": frozenset({"person"})}, {"door": frozenset({"person"})}, frozenset({"yard"}))}
    found, pub = discovery(config(mqtt={"controls": True}), counted)
    found.start()
    configs = {topic: json.loads(payload) for topic, payload in pub.sent}
    node = "edged_dev_1_" + slug("dev 1").split("_")[-1]
    count = configs[f"homeassistant/sensor/{node}/gate_yard_car_count/config"]
    assert count["state_topic"] == "edged/dev 1/gate/yard/car"
    assert count["unique_id"] == f"edged_{slug('dev 1')}_gate_yard_car_count"
    assert count["availability"][0]["topic"] == "edged/dev 1/status"
    assert count["device"]["identifiers"] == [node]
    occupancy = configs[f"homeassistant/binary_sensor/{node}/gate_all_person_occupancy/config"]
    assert occupancy["device_class"] == "occupancy" and occupancy["state_topic"] == "edged/dev 1/gate/all/person"
    assert configs[f"homeassistant/image/{node}/gate_car_snapshot/config"]["image_topic"] == \
        "edged/dev 1/gate/car/snapshot"
    assert configs[f"homeassistant/switch/{node}/gate_detect/config"]["command_topic"] == "edged/dev 1/gate/detect/set"
    assert configs[f"homeassistant/sensor/{node}/gate_door_person_in/config"]["state_class"] == "total_increasing"
    assert f"homeassistant/sensor/{node}/temperature/config" in configs
    dwell = configs[f"homeassistant/sensor/{node}/gate_lawn_person_dwell/config"]
    assert dwell["state_topic"] == "edged/dev 1/gate/lawn/person/dwell" and dwell["unit_of_measurement"] == "s"
    speed = configs[f"homeassistant/sensor/{node}/gate_yard_car_speed/config"]
    assert speed["device_class"] == "speed" and speed["value_template"] == "{{ value_json.median_kmh }}"
    assert f"homeassistant/sensor/{node}/gate_lawn_person_speed/config" not in configs  # no speed reference there
    assert f"homeassistant/sensor/{node}/gate_all_person_dwell/config" not in configs  # the whole frame: no stays
    assert set(pub.handlers) == {"homeassistant/status", f"homeassistant/+/{node}/+/config"}
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)


def test_discovery_resends_removes_and_cleans_up() -> None:
    counted = {"gate": Counted({"all": frozenset({"person"})}, {})}
    found, pub = discovery(config(), counted)
    found.start()
    first = len(pub.sent)
    pub.handlers["homeassistant/status"]("homeassistant/status", b"offline")
    assert len(pub.sent) == first
    pub.handlers["homeassistant/status"]("homeassistant/status", b"online")
    assert len(pub.sent) == 2 * first
    # A retained config from an earlier run that nobody wants: cleared; our own echo: left alone.
    node = found.node
    own = next(topic for topic, _ in pub.sent)
    pub.handlers[f"homeassistant/+/{node}/+/config"](own, b"{}")
    old = f"homeassistant/sensor/{node}/gone_all_person_count/config"
    pub.handlers[f"homeassistant/+/{node}/+/config"](old, b"{}")
    assert pub.sent[-1] == (old, b"")
    # The camera goes away: its configs are cleared, the device's stay.
    counted.clear()
    pub.sent.clear()
    found.refresh()
    assert pub.sent and all(payload == b"" and "/gate_" in topic for topic, payload in pub.sent)
    pub.sent.clear()
    found.refresh()
    assert pub.sent == []


def test_configuration_url_only_where_reachable() -> None:
    assert configuration_url(config(), 9108) is None  # loopback
    off = config(http={"listen": "192.168.1.5:9108", "token": "0123456789abcdef0123"})
    assert configuration_url(off, 9108) == "http://192.168.1.5:9108/"
    assert configuration_url(config(homeassistant={"configuration_url": "https://x/"}), 1) == "https://x/"


class Target:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def set_control(self, camera: str, setting: str, on: bool) -> bool:
        self.calls.append((camera, setting, on))
        return camera == "gate"


def test_controls_take_on_and_off_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    target = Target()
    controls = Controls("edged/dev", target)
    assert controls.filters() == ["edged/dev/+/detect/set", "edged/dev/+/motion/set"]
    with caplog.at_level(logging.WARNING):
        controls.handle("edged/dev/gate/detect/set", b"OFF")
        controls.handle("edged/dev/gate/motion/set", b"ON")
        for junk in (b"off", b"1", b"\xff\xfe" * 40, b""):
            controls.handle("edged/dev/gate/detect/set", junk)
        controls.handle("edged/dev/other/detect/set", b"OFF")
    assert target.calls == [("gate", "detect", False), ("gate", "motion", True), ("other", "detect", False)]
    assert controls.applied == 2 and controls.ignored == 5
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "only ON or OFF" in lines[0] and "no running camera 'other'" in lines[1]


def test_http_off_loopback_needs_credentials() -> None:
    with pytest.raises(ValidationError, match="reachable from other machines"):
        HttpConfig(listen="0.0.0.0:9108")
    with pytest.raises(ValidationError, match="at least 16"):
        HttpConfig(listen="0.0.0.0:9108", token="short")
    assert HttpConfig(listen="0.0.0.0:9108", auth={"username": "u", "password": "p"}).auth is not None
    assert HttpConfig(listen="[::1]:9108").auth is None


def info(seq: int, ts: float, width: int = 1280, height: int = 720) -> FrameInfo:
    return FrameInfo(seq, ts, time.monotonic(), width, height)


def test_the_picture_ring_shrinks_and_is_only_used_while_wanted() -> None:
    ring = PictureRing(640, 3)
    camera = CameraPictures(ring, Demand())
    assert not camera.demand.pictures(time.monotonic())
    camera.want_live()
    assert camera.demand.pictures(time.monotonic()) and camera.demand.wants("live", time.monotonic())
    camera.demand.want_until("live", 0.0)
    camera.demand.want_until("snapshots", float("inf"))  # objects followed: pictures for their snapshots
    assert camera.demand.pictures(time.monotonic()) and not camera.demand.wants("live", time.monotonic())
    frame = np.full((720, 1280, 3), 7, np.uint8)
    pictures = [ring.take(frame, info(i, float(i))) for i in range(4)]
    assert pictures[0].image.shape == (360, 640, 3) and int(pictures[0].image.mean()) == 7
    # None given back (results that never came): the ring comes round, nothing new is allocated.
    assert pictures[3].image is pictures[0].image and ring.held == 3
    small = np.zeros((240, 320, 3), np.uint8)
    assert ring.take(small, info(5, 5.0, 320, 240)).image.shape == (240, 320, 3)


def test_a_picture_given_back_takes_the_next_copy_so_a_camera_holds_few_buffers() -> None:
    ring = PictureRing(640, 4)
    frame = np.full((720, 1280, 3), 7, np.uint8)
    first = ring.take(frame, info(1, 1.0))
    ring.done(first)
    for seq in range(2, 20):  # each result handled before the next picture: one buffer
        picture = ring.take(frame, info(seq, float(seq)))
        assert picture.image is first.image
        ring.done(picture)
    assert ring.held == 1
    out = [ring.take(frame, info(seq, float(seq))) for seq in (20, 21)]  # two in flight: a second buffer
    assert ring.held == 2 and out[0].image is not out[1].image
    ring.done(out[1])
    assert ring.take(frame, info(22, 22.0)).image is out[1].image and ring.held == 2
    ring.done(first)  # given back twice: its buffer holds frame 20 now, which is still out
    assert ring.take(frame, info(23, 23.0)).image is not out[0].image and ring.held == 3


def test_the_result_stage_gives_a_frame_s_picture_back() -> None:
    from edged.pipeline.decoding import Result
    from edged.pipeline.results import ResultStage

    ring = PictureRing(64, 4)
    lane = CameraLane("cam", FrameSlot("cam"), 10.0, DetectConfig(min_score=0.4), None, pictures=ring)
    seen: list[int] = []

    class Held:  # a sink that sees how many buffers the ring holds while the frame is handled
        name = "held"

        def __call__(self, result: Any, outcome: Any) -> None:
            seen.append(ring.held)

    results = ResultStage(started_mono=0.0, sinks=[Held()], cpu={})
    frame = np.zeros((48, 64, 3), np.uint8)
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    for seq in range(1, 6):
        picture = ring.take(frame, info(seq, float(seq), 64, 48))
        results(Result(lane, info(seq, float(seq), 64, 48), empty, {}, seq, picture=picture))
    assert seen == [1, 1, 1, 1, 1] and ring.held == 1


def track(track_id: int, score: float, ts: float, confirmed: bool = True) -> Track:
    t = Track(track_id, 0, np.array([0.1, 0.1, 0.3, 0.5], np.float32), score, 0.0, ts)
    t.confirmed = confirmed
    return t


def test_best_frames_keep_the_highest_score_and_snapshot_when_due() -> None:
    ring = PictureRing(64, 4)
    best = Best("gate", ["person"], BufferPool(limit=4))
    frame = np.zeros((48, 64, 3), np.uint8)

    def picture(seq: int, ts: float, value: int) -> Any:
        frame[:] = value
        return ring.take(frame, info(seq, ts, 64, 48))

    t = track(1, 0.5, 1.0, confirmed=False)
    assert best.step(picture(1, 1.0, 10), [t], TrackUpdate()) == []  # tentative: kept, no snapshot
    t.confirmed, t.score, t.last_ts = True, 0.55, 2.0
    jobs = best.step(picture(2, 2.0, 20), [t], TrackUpdate(started=[t]))
    assert len(jobs) == 1 and jobs[0].seq == 1 and int(jobs[0].image.mean()) == 10  # 0.55 < 0.5 + margin... kept #1
    jobs[0].done()
    time.sleep(0.55)
    t.score, t.last_ts = 0.9, 3.0
    assert best.step(picture(3, 3.0, 30), [t], TrackUpdate()) == []  # better, but no event: kept for later
    jobs = best.step(None, [], TrackUpdate(ended=[t]))
    assert len(jobs) == 1 and jobs[0].score == 0.9 and int(jobs[0].image.mean()) == 30
    assert not best.following  # the object has gone: its buffer went back


def test_the_encoder_is_bounded_and_the_latest_snapshot_wins() -> None:
    published: list[tuple[str, str, bytes]] = []
    encoder = JpegEncoder(quality=70, max_per_s=2.0, crop=True, boxes=True,
                          publish=lambda c, label, jpeg: published.append((c, label, jpeg)))
    pool = BufferPool(limit=8)
    for index in range(5):  # five snapshots of one label at once: only the newest is encoded
        image = pool.take((120, 160, 3))
        assert image is not None
        image[:] = 40 * index
        encoder.submit(Job("gate", "person", index, 0.8, np.array([0.2, 0.2, 0.4, 0.8]), image, index, 0.0, pool))
    assert encoder.stats.replaced == 4
    encoder.start()
    live = LiveFrame()
    ring = PictureRing(160, 2)
    live.offer(ring.take(np.zeros((120, 160, 3), np.uint8), info(9, 9.0, 160, 120)), np.zeros((0, 4)), (),
               np.zeros(0))
    try:
        deadline = time.monotonic() + 5
        while not published and time.monotonic() < deadline:
            time.sleep(0.05)
        first = encoder.live("gate", live).result(5)
        again = [encoder.live("gate", live).result(5) for _ in range(20)]  # the same frame: no new encode
    finally:
        encoder.stop()
    assert [p[:2] for p in published] == [("gate", "person")]
    assert published[0][2][:2] == b"\xff\xd8" and encoder.store.of_track("gate", 4) is not None
    assert first is not None and all(a is first for a in again)
    assert encoder.stats.snapshots + encoder.stats.live == 2
    assert pool.allocated == 2  # a replaced job gave its buffer back at once, and the next snapshot took it


def test_pictures_kept_as_planes_are_shown_and_encoded_in_colour() -> None:
    bgr = np.zeros((720, 1280, 3), np.uint8)
    bgr[:, :, 2] = 200  # red
    planes = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    ring = PictureRing(640, 2)
    picture = ring.take(planes, info(1, 1.0))
    assert picture.image.shape == (540, 640)  # 640x360 as planes
    live = LiveFrame()
    live.offer(picture, np.zeros((0, 4)), (), np.zeros(0))
    got = live.read(None)
    assert got is not None and got[0].shape == (360, 640, 3)
    assert abs(int(got[0][..., 2].mean()) - 200) <= 3 and int(got[0][..., :2].max()) <= 3
    published: list[bytes] = []
    encoder = JpegEncoder(quality=90, max_per_s=10.0, crop=False, boxes=False,
                          publish=lambda c, label, jpeg: published.append(jpeg))
    pool = BufferPool(limit=2)
    image = pool.take(picture.image.shape)
    assert image is not None
    np.copyto(image, picture.image)
    encoder.submit(Job("gate", "person", 1, 0.8, np.array([0.2, 0.2, 0.4, 0.8]), image, 1, 1.0, pool))
    encoder.start()
    try:
        deadline = time.monotonic() + 5
        while not published and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        encoder.stop()
    decoded = cv2.imdecode(np.frombuffer(published[0], np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (360, 640, 3) and abs(int(decoded[..., 2].mean()) - 200) <= 4
    assert pool.take(picture.image.shape) is image  # the planes went back to the pool once converted


def test_crop_stays_inside_the_picture() -> None:
    x, y, w, h = crop_around(np.array([0.9, 0.9, 1.0, 1.0]), 640, 360)
    assert x + w <= 640 and y + h <= 360 and w >= 160


def test_the_page_heading_shows_the_precision_in_use_not_the_files_variant() -> None:
    from edged.engines.registry import engine_heading

    info = {"backend": "openvino", "version": "2026.4.1", "device": "CPU", "model": "yolov3-tiny fp32",
            "precision": "bf16", "streams": 2}
    assert engine_heading(info) == "openvino on CPU: yolov3-tiny fp32, running bf16"
    chained = info | {"chain": ["kserve", "openvino:CPU"], "in_use": "openvino:CPU"}
    assert engine_heading(chained).endswith("running bf16 (in use: openvino:CPU)")
    assert engine_heading({"backend": "kserve", "model": "yolov3-tiny"}) == "kserve: yolov3-tiny"


def test_unique_ids_tell_apart_names_that_join_alike() -> None:
    counted = {"front": Counted({"door_left": frozenset({"person"})}, {}),
               "front_door": Counted({"left": frozenset({"person"})}, {})}
    found, pub = discovery(config(cameras={"front": {"url": "rtsp://h/a"}, "front_door": {"url": "rtsp://h/b"}}),
                           counted)
    found.start()
    configs = [json.loads(payload) for topic, payload in pub.sent if "_count/" in topic]
    ids = {c["unique_id"] for c in configs}
    assert len(configs) == 2 and len(ids) == 2, ids
    topics = [topic for topic, _ in pub.sent]
    assert len(set(topics)) == len(topics)  # every entity has a config topic of its own


def test_a_name_outside_the_bmp_is_one_character_in_the_template() -> None:
    counted = {"cam\U0001F600": Counted({"all": frozenset({"person"})}, {})}
    found, pub = discovery(config(cameras={"cam\U0001F600": {"url": "rtsp://h/a"}}), counted)
    found.start()
    fps = next(json.loads(payload) for topic, payload in pub.sent if topic.endswith("_fps/config"))
    template = fps["value_template"]
    assert '"cam\U0001F600"' in template and "\\ud83d" not in template
    import subprocess

    from edged.testing.homeassistant import ha_venv
    from edged.testing.venvs import ready

    if not ready(ha_venv()):
        return  # Home Assistant's own Jinja below, where its venv is built (scripts/ha-venv.sh, run by test.sh)
    ha = ha_venv() / "bin" / "python"

    script = ("import jinja2, json, sys; t = jinja2.Environment().from_string(sys.argv[1]); "
              "print(t.render(value_json=json.loads(sys.argv[2])))")
    telemetry = json.dumps({"cameras": {"cam\U0001F600": {"processed_fps": 7.5}}})
    done = subprocess.run([str(ha), "-c", script, template, telemetry], capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "7.5"


def test_a_flood_of_home_assistant_online_is_two_resends(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from edged.publish import homeassistant

    monkeypatch.setattr(homeassistant, "RESEND_S", 0.3)
    counted = {"gate": Counted({"all": frozenset({"person"})}, {})}
    found, pub = discovery(config(), counted)

    async def flood() -> None:
        found.start()
        pub.sent.clear()
        for _ in range(1000):
            pub.handlers["homeassistant/status"]("homeassistant/status", b"online")
        await asyncio.sleep(0.5)
        found.stop()

    with caplog.at_level(logging.INFO):
        asyncio.run(flood())
    per_resend = len(found.entities())
    assert len(pub.sent) == 2 * per_resend  # one at once, one at the end of the window: not 1,000
    lines = [r.getMessage() for r in caplog.records if "discovery sent again" in r.getMessage()]
    assert len(lines) == 2 and "for 999 'online' messages" in lines[1]


def test_a_retained_set_message_is_never_obeyed(caplog: pytest.LogCaptureFixture) -> None:
    target = Target()
    controls = Controls("edged/dev", target)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # at start, and again at each reconnect: the broker's old copy
            controls.handle("edged/dev/gate/detect/set", b"OFF", True)
        controls.handle("edged/dev/gate/detect/set", b"OFF", False)  # a live command is obeyed
    assert target.calls == [("gate", "detect", False)]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "a retained message on 'edged/dev/gate/detect/set'" in lines[0]
