"""Config loading: defaults, substitution, and one readable line per problem with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.cli import main
from edged.config import load_config
from edged.config.models import source_kind
from edged.errors import ConfigError

MINIMAL = """\
engine: {model: yolov3-tiny}
cameras:
  gate: {url: "rtsp://user:${CAM_PW}@10.0.0.7/stream1", fps: 10}
"""


def load(text: str, env: dict[str, str] | None = None, tmp: Path | None = None, creds: Path | None = None):  # type: ignore[no-untyped-def]
    return load_config(Path("edged.yaml"), env or {}, creds, text=text)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return info.value.problems


def test_minimal_config_gets_sensible_defaults() -> None:
    cfg = load(MINIMAL, {"CAM_PW": "pw"})
    assert cfg.engine.backend == "openvino" and cfg.engine.batch == 1 and cfg.engine.num_requests is None
    assert cfg.mqtt.host == "localhost" and cfg.mqtt.port == 1883 and cfg.mqtt.detections_qos == 0
    assert cfg.cameras["gate"].url == "rtsp://user:pw@10.0.0.7/stream1"
    assert cfg.cameras["gate"].kind == "stream"
    assert cfg.detect_for("gate").min_score == 0.4
    assert cfg.device_id  # the hostname


def test_substitution_defaults_escapes_and_credentials(tmp_path: Path) -> None:
    (tmp_path / "mqtt_password").write_text("from-systemd\n")
    text = MINIMAL + 'mqtt: {username: "${USER_NAME:-edged}", password: "${cred:mqtt_password}"}\n'
    text += 'device_id: "cost$$5"\n'
    cfg = load_config(Path("x.yaml"), {"CAM_PW": "pw"}, tmp_path, text=text)
    assert cfg.mqtt.username == "edged"
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "from-systemd"
    assert cfg.device_id == "cost$5"
    assert "from-systemd" not in repr(cfg)


def test_unset_variable_names_the_key_and_camera() -> None:
    [line] = problems(MINIMAL)
    assert line == "edged.yaml:3: cameras.gate.url: environment variable CAM_PW is not set " \
                   "(referenced as ${CAM_PW}) (camera 'gate')"


def test_malformed_yaml_gives_line_and_column() -> None:
    [line] = problems("engine: {model: x\ncameras: [")
    assert line.startswith("edged.yaml:2:") and "malformed YAML" in line


def test_unknown_key_suggests_the_right_one() -> None:
    [line] = problems("engine: {model: x, batchsize: 2}\ncameras: {a: {url: rtsp://h/s, fsp: 3}}\n")[:1]
    assert "engine.batchsize: unknown key 'batchsize'; did you mean 'batch'?" in line
    lines = problems("engine: {model: x}\ncameras: {a: {url: rtsp://h/s, fsp: 3}}\n")
    assert lines == ["edged.yaml:2: cameras.a.fsp: unknown key 'fsp'; did you mean 'fps'? (camera 'a')"]


def test_wrong_types_are_listed_one_line_each() -> None:
    text = """\
mqtt:
  port: seventeen
engine:
  model: x
  batch: 0
cameras:
  a:
    url: rtsp://h/s
    fps: fast
    detect: {min_score: 2}
"""
    lines = problems(text)
    assert len(lines) == 4
    assert lines[0].startswith("edged.yaml:2: mqtt.port: Input should be a valid integer")
    assert lines[1].startswith("edged.yaml:5: engine.batch: Input should be greater than or equal to 1")
    assert lines[2].startswith("edged.yaml:9: cameras.a.fps:") and lines[2].endswith("(camera 'a')")
    assert lines[3].startswith("edged.yaml:10: cameras.a.detect.min_score:")


def test_duplicate_camera_names_are_caught() -> None:
    text = "engine: {model: x}\ncameras:\n  gate: {url: rtsp://a/s}\n  yard: {url: rtsp://b/s}\n  gate: {url: rtsp://c/s}\n"
    assert problems(text) == ["edged.yaml:5: cameras.gate: duplicate camera 'gate' (first defined on line 3)"]


@pytest.mark.parametrize("bad", ["a/b", "a+b", "a#b", "a\\u0000b"])
def test_camera_names_and_labels_cannot_break_topics(bad: str) -> None:
    lines = problems(f'engine: {{model: x}}\ncameras:\n  "{bad}": {{url: rtsp://a/s}}\n')
    assert len(lines) == 1 and "must not contain" in lines[0] and "cameras." in lines[0]
    lines = problems(f'engine: {{model: x}}\ncameras:\n  ok: {{url: rtsp://a/s, detect: {{labels: ["{bad}"]}}}}\n')
    assert len(lines) == 1 and "cameras.ok.detect.labels[0]: must not contain" in lines[0]


def test_missing_files_are_named(tmp_path: Path) -> None:
    lines = problems("engine: {model: /nope/model.xml}\ncameras: {a: {url: /nope/clip.mp4}}\n")
    assert lines == [
        "edged.yaml:1: engine.model: model file not found: /nope/model.xml",
        "edged.yaml:2: cameras.a.url: video file not found: /nope/clip.mp4 (camera 'a')",
    ]


def test_passwords_are_never_echoed() -> None:
    lines = problems("engine: {model: x}\ncameras: {a: {url: rtsp://h/s}}\nmqtt: {password: hunter22}\n")
    assert lines == ["edged.yaml:3: mqtt: 'password' needs a 'username'"]
    lines = problems("engine: {model: x}\ncameras: {a: {url: 'rtsp://u:hunter22@h/s', loop: true}}\n")
    assert "hunter22" not in "".join(lines)


def test_options_that_do_not_fit_the_source_kind() -> None:
    [line] = problems("engine: {model: x}\ncameras: {a: {url: rtsp://h/s, loop: true}}\n")
    assert "'loop' and 'realtime' apply to files only" in line


def test_source_kinds() -> None:
    assert source_kind("rtsp://h/s") == "stream"
    assert source_kind("/dev/video0") == "v4l2" and source_kind("0") == "v4l2"
    assert source_kind("gst:v4l2src ! appsink") == "gstreamer"
    assert source_kind("clips/a.mp4") == "file"


def test_cli_exits_2_with_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("engine: {model: /nope.xml}\ncameras:\n  a: {url: rtsp://h/s, fps: -1}\n  b/c: {url: rtsp://h/s}\n")
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith(f"edged: error: {path}:") for line in err)
    assert "Traceback" not in "".join(err)
    assert main(["run", "-c", str(tmp_path / "absent.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"edged: error: {tmp_path / 'absent.yaml'}: no such file"


AREAS = """\
engine: {model: yolov3-tiny}
cameras:
  gate:
    url: rtsp://10.0.0.7/s
    zones:
      drive/way: {polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0]]}
      lawn: {polygon: [[0.1, 0.5], [1.2, 0.5], [0.9, 1.0]]}
      flat: {polygon: [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}
      all: {polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0]]}
    lines:
      gate_in: {points: [[0.2, 0.7]]}
    motion:
      masks: [[[0.0, 0.0], [0.3, 0.0]]]
"""


def test_zones_lines_and_masks_are_checked_with_file_line_key_and_camera() -> None:
    found = problems(AREAS)
    expected = [
        ("edged.yaml:6: cameras.gate.zones", "'/'"),
        ("edged.yaml:7: cameras.gate.zones.lawn.polygon", "outside the frame"),
        ("edged.yaml:8: cameras.gate.zones.flat.polygon", "no area"),
        ("edged.yaml:9: cameras.gate.zones", "'all' is a name edged's topics use"),
        ("edged.yaml:11: cameras.gate.lines.gate_in.points", "a line is 2 points"),
        ("edged.yaml:13: cameras.gate.motion.masks[0]", "at least 3 points"),
    ]
    for where, what in expected:
        assert any(p.startswith(where) and what in p and p.endswith("(camera 'gate')") for p in found), (where, found)
    assert len(found) == len(expected)


def test_a_zone_and_a_line_cannot_share_a_name() -> None:
    text = MINIMAL.replace("fps: 10}", "fps: 10, zones: {x: {polygon: [[0, 0], [1, 0], [1, 1]]}}, "
                                       "lines: {x: {points: [[0, 0], [1, 1]]}}}")
    assert any("'x' is both a zone and a line" in p for p in problems(text, {"CAM_PW": "pw"}))


def test_loopback_is_parsed_not_prefix_matched() -> None:
    from edged.addresses import is_loopback

    for listen in ("127.0.0.1:9108", "127.8.9.1:1", "localhost:9108", "[::1]:9108", "LOCALHOST:1"):
        assert is_loopback(listen), listen
    for listen in ("localhost.example.com:9108", "127.0.0.1.nip.io:9108", "localhost-lan:9108", "0.0.0.0:9108",
                   "[::]:9108", "10.0.0.1:80", "[::ffff:8.8.8.8]:1"):
        assert not is_loopback(listen), listen


def test_a_bow_tie_zone_is_taken_and_a_flat_one_refused() -> None:
    from pydantic import ValidationError

    from edged.config.models import Config

    def zone(points: list[list[float]]) -> Config:
        return Config.model_validate({"engine": {"model": "m"}, "cameras": {"c": {
            "url": "rtsp://h/s", "zones": {"z": {"polygon": points}}}}})

    assert zone([[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]).cameras["c"].zones["z"]
    flats: list[list[list[float]]] = [[[0, 0], [0.5, 0.5], [1, 1]], [[0.2, 0.2]] * 3]
    for flat in flats:
        with pytest.raises(ValidationError, match="on one line"):
            zone(flat)


def test_tiles_need_two_batch_places_on_every_engine() -> None:
    tiled = MINIMAL.replace("fps: 10}", "fps: 10, tiles: true}")
    [line] = problems(tiled, {"CAM_PW": "pw"})
    assert "cameras.gate.tiles" in line and "batch: 2" in line and "the smallest is 1" in line
    cfg = load(tiled.replace("model: yolov3-tiny}", "model: yolov3-tiny, batch: 2}"), {"CAM_PW": "pw"})
    assert cfg.cameras["gate"].tiles
