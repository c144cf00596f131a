"""Hostile configs exit 2 with one clear line each, through the real CLI: never a traceback, never exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD_CAMERA = 'cameras: {gate: {url: "rtsp://h/s"}}\n'
NESTED = "engine: " + "[" * 5000 + "]" * 5000 + "\n"
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7))
CASES: dict[str, tuple[str, str]] = {
    # name: (file content, what the line must say)
    "5000 nested brackets": (NESTED, "nested too deeply"),
    "a billion laughs": (LAUGHS + "engine: {model: m}\n" + GOOD_CAMERA, "aliases expand to more than"),
    "empty broker host": ("mqtt: {host: ''}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA, "mqtt.host"),
    "a camera name with a lone surrogate": ('engine: {model: yolov3-tiny}\ncameras: {"cam\\uD800": {url: "rtsp://h/s"}}\n',
                                            "lone surrogate"),
    "port: true": ("mqtt: {port: true}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA, "'port' must be a number"),
    ".inf cooldown": ("engine: {model: yolov3-tiny}\ncameras: {gate: {url: rtsp://h/s, "
                      "restart_budget: {cooldown_s: .inf}}}\n", "cooldown_s"),
    ".inf reconnect": ("engine: {model: yolov3-tiny}\ncameras: {gate: {url: rtsp://h/s, "
                       "reconnect: {max_s: .inf}}}\n", "reconnect.max_s"),
    "keys 1 and true": ("engine: {model: yolov3-tiny}\ncameras: {1: {url: rtsp://h/s}, true: {url: rtsp://h/t}}\n",
                        "are the same key once read"),
    "a spool under /proc": ("mqtt: {spool: /proc/edged.db}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
                            "is under /proc"),
    "a spool that is a directory": ("mqtt: {spool: /tmp}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
                                    "is a directory"),
    "a spool on /dev/null": ("mqtt: {spool: /dev/null}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
                             "is under /dev"),
    "the page open to the network without credentials": (
        "http: {listen: '0.0.0.0:9108'}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
        "reachable from other machines: set 'auth'"),
    "a listen address that only starts like localhost": (
        "http: {listen: 'localhost.example.com:9108'}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
        "reachable from other machines: set 'auth'"),
    "a listen address that only starts like 127.": (
        "http: {listen: '127.0.0.1.nip.io:9108'}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
        "reachable from other machines: set 'auth'"),
    "a listen name that starts with localhost-": (
        "http: {listen: 'localhost-lan:9108'}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
        "reachable from other machines: set 'auth'"),
    "a camera named ..": ("engine: {model: yolov3-tiny}\ncameras: {'..': {url: 'rtsp://h/s'}}\n", "must not be '..'"),
    "a zone named .": ("engine: {model: yolov3-tiny}\ncameras: {gate: {url: 'rtsp://h/s', zones: {'.': {polygon: "
                       "[[0, 0], [1, 0], [1, 1]]}}}}\n", "must not be '.'"),
    "a short bearer token": ("http: {listen: '0.0.0.0:9108', token: abc}\nengine: {model: yolov3-tiny}\n"
                             + GOOD_CAMERA, "at least 16 characters"),
    "a snapshot width of 10": ("snapshots: {width: 10}\nengine: {model: yolov3-tiny}\n" + GOOD_CAMERA,
                               "snapshots.width"),
    "a discovery prefix with a wildcard": ("homeassistant: {prefix: 'home/#'}\nengine: {model: yolov3-tiny}\n"
                                           + GOOD_CAMERA, "homeassistant.prefix"),
}


def check(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edged", "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_config_is_one_line_and_exit_2(tmp_path: Path, case: str, built_model: object) -> None:
    text, says = CASES[case]
    path = tmp_path / "edged.yaml"
    path.write_text(text)
    done = check(path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and says in done.stderr, done.stderr


def test_dev_zero_and_a_huge_file(tmp_path: Path) -> None:
    assert "not a regular file" in check("/dev/zero").stderr
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 200_000)
    done = check(huge)
    assert done.returncode == 2 and "larger than 1024 KiB" in done.stderr


def test_a_default_may_refer_to_another_variable(tmp_path: Path) -> None:
    from edged.config.loader import load_config

    config = load_config(tmp_path / "x.yaml", {"B": "from-b"}, text='device_id: "${A:-${B}}"\n'
                         'engine: {model: m}\ncameras: {c: {url: "rtsp://h/s"}}\n')
    assert config.device_id == "from-b"


@pytest.mark.parametrize("label", ["per+son", "per/son", "per\tson"])
def test_a_model_label_mqtt_cannot_carry_is_one_line_and_exit_2(tmp_path: Path, label: str,
                                                                 built_model: object) -> None:
    """Labels become count and snapshot topics: '+' once blocked every QoS 1 message behind the first count."""
    from edged.models.labels import COCO80

    names = tmp_path / "labels.txt"
    names.write_text("\n".join([label, *COCO80[1:]]) + "\n")
    path = tmp_path / "edged.yaml"
    path.write_text(f"engine: {{model: yolov3-tiny, labels: {names}}}\n" + GOOD_CAMERA)
    done = check(path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and f"label 0 {label!r} must not contain" in done.stderr, done.stderr


def test_an_onnx_whose_metadata_names_hold_a_wildcard_is_refused_at_export(tmp_path: Path,
                                                                          built_model: object) -> None:
    import onnx

    from edged.artifacts.zoo import BuiltModel
    from edged.models.labels import COCO80

    assert isinstance(built_model, BuiltModel)
    model = onnx.load(str(built_model.path("onnx")))
    names = dict(enumerate(COCO80)) | {2: "c#r"}
    model.metadata_props.add(key="names", value=repr(names))
    source = tmp_path / "odd.onnx"
    onnx.save(model, str(source))
    done = subprocess.run([sys.executable, "-m", "edged", "export", str(source), "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "label 2 'c#r' must not contain '#'" in done.stderr, done.stderr
