"""Jetson and Raspberry Pi paths, pinned without the hardware: the install's package list, the systemd
drop-ins, Pi decoders by board, GStreamer pipelines and timeouts, edged check's platform lines, probes."""

from __future__ import annotations

import ast
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edged.config import load_config
from edged.config.models import AlertsConfig, CameraConfig, TelemetryConfig
from edged.pipeline.cameras import resolve_decoder
from edged.sources.gstreamer import pipeline_for, rpi_decoder
from edged.telemetry.alerts import Alerts
from edged.telemetry.collector import Collector
from edged.telemetry.jetson import parse_tegrastats
from edged.telemetry.rpi import VcgencmdReader
from edged.tools.platform_check import camera_problems, engine_problems, sees_system_packages
from tests.support.stats import snapshot

ROOT = Path(__file__).resolve().parents[2]
PI4 = "Raspberry Pi 4 Model B Rev 1.4"
PI5 = "Raspberry Pi 5 Model B Rev 1.0"


def _requirement_name(spec: str) -> str:
    for mark in "<>=!~[ ":
        spec = spec.split(mark, maxsplit=1)[0]
    return spec.lower()


def test_the_device_install_takes_every_dependency_but_numpy_and_pip_opencv() -> None:
    setup = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(setup) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    requires = next(k.value for k in call.keywords if k.arg == "install_requires")
    wanted = {_requirement_name(ast.literal_eval(e)) for e in requires.elts}  # type: ignore[attr-defined]
    lines = (ROOT / "requirements" / "device.txt").read_text().splitlines()
    device = {_requirement_name(line) for line in lines if line.strip() and not line.startswith("#")}
    assert device == wanted - {"numpy", "opencv-python-headless"}
    script = (ROOT / "scripts" / "install-service.sh").read_text()
    assert "--system-site-packages" in script and "--no-deps ." in script and "requirements/device.txt" in script


def test_the_jetson_drop_in_allows_what_cuda_nvdec_and_vic_open() -> None:
    text = (ROOT / "systemd" / "edged.service.d" / "jetson.conf.example").read_text()
    allowed = {line.split("=", 1)[1].rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("DeviceAllow=")}
    for node in ("tsg", "power", "sched", "nvsched", "dbg", "ctxsw"):
        assert f"/dev/nvhost-{node}-gpu" in allowed and f"/dev/nvgpu/igpu0/{node}" in allowed, node
    assert {"/dev/nvmap", "/dev/nvsciipc", "/dev/host1x-fence", "char-drm"} <= allowed
    assert "char-nvgpu" not in allowed  # nvgpu names its region after the device: that group matches nothing
    assert "L4T 32" not in text and "JetPack 6" in text


def test_the_pi_drop_in_allows_vcio_and_the_unit_gives_gstreamer_a_cache() -> None:
    pi = (ROOT / "systemd" / "edged.service.d" / "raspberry-pi.conf.example").read_text()
    assert "DeviceAllow=/dev/vcio rw" in pi
    assert "Environment=XDG_CACHE_HOME=/var/cache/edged" in (ROOT / "systemd" / "edged.service").read_text()


@pytest.mark.parametrize(("board", "codec", "hardware", "says"), [
    (PI4, "h264", True, "v4l2h264dec, up to 1920x1080"),
    (PI4, "h265", False, "no stateful HEVC decoder"),
    (PI5, "h264", False, "no H.264 hardware decoder"),
    (PI5, "h265", False, "no stateful HEVC decoder"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", "h264", True, "v4l2h264dec"),
    ("", "h264", False, "not a Raspberry Pi"),
])
def test_pi_decoders_follow_the_board_and_codec(board: str, codec: str, hardware: bool, says: str) -> None:
    found, line = rpi_decoder(board, codec)
    assert found is hardware and says in line


def test_a_pi_camera_without_a_hardware_decoder_is_decoded_in_software_and_said_so(
        caplog: pytest.LogCaptureFixture) -> None:
    camera = CameraConfig(url="rtsp://10.0.0.5/s", decoder="rpi")
    with caplog.at_level(logging.INFO):
        assert resolve_decoder("porch", camera, PI5).decoder == "software"
        assert resolve_decoder("porch", camera, PI4).decoder == "rpi"
    assert "camera porch: decoder: rpi: Raspberry Pi 5 Model B Rev 1.0 has no H.264 hardware decoder" in caplog.text
    with pytest.raises(ValueError, match="no H265 hardware decoder"):
        pipeline_for(CameraConfig(url="rtsp://10.0.0.5/s", decoder="rpi", codec="h265"))


def test_files_keep_back_pressure_and_live_streams_keep_only_the_newest_frame() -> None:
    live = pipeline_for(CameraConfig(url="rtsp://10.0.0.5/s", decoder="jetson"))
    file = pipeline_for(CameraConfig(url="/clips/gate.mp4", decoder="jetson"))
    assert live.endswith("appsink drop=true max-buffers=1 sync=false")
    assert file.endswith("queue max-size-buffers=4 ! appsink drop=false max-buffers=2 sync=false")


def test_a_named_pi_camera_is_that_camera() -> None:
    named = pipeline_for(CameraConfig(url="libcamera:/base/soc/i2c0mux/i2c@1/imx708@1a", decoder="rpi"))
    assert named.startswith('libcamerasrc camera-name="/base/soc/i2c0mux/i2c@1/imx708@1a" ! ')
    assert pipeline_for(CameraConfig(url="libcamera", decoder="rpi")).startswith("libcamerasrc ! ")


def test_gstreamer_captures_get_the_open_and_read_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    from edged.sources import opencv

    calls: list[tuple[Any, ...]] = []

    class Capture:
        def __init__(self, *args: Any) -> None:
            calls.append(args)

        def isOpened(self) -> bool:
            return False

        def release(self) -> None: ...

    monkeypatch.setattr(opencv, "gstreamer_available", lambda: True)
    monkeypatch.setattr(cv2, "VideoCapture", Capture)
    source = opencv.OpenCvSource(CameraConfig(url="rtsp://10.0.0.5/s", decoder="jetson", open_timeout_s=7,
                                              read_timeout_s=3))
    with pytest.raises(opencv.SourceError):
        source.open()
    pipeline, backend, params = calls[0]
    assert backend == cv2.CAP_GSTREAMER and "nvv4l2decoder" in pipeline
    assert params[:4] == [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 7000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000]


def _config(tmp_path: Path, engine: str, cameras: str) -> Any:
    path = tmp_path / "edged.yaml"
    path.write_text(f"device_id: d\nmqtt: {{host: h}}\nengine: {engine}\ncameras:\n{cameras}")
    return load_config(path, {})


def test_edged_check_names_the_opencv_and_tensorrt_a_jetson_needs(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, "{backend: tensorrt, model: yolov3-tiny, precision: fp16}",
                     "  gate: {url: 'rtsp://10.0.0.5/s', decoder: jetson}\n  pic: {url: 'rtsp://10.0.0.6/s'}\n")
    (line,) = camera_problems(config, "jetson", "NVIDIA Jetson Orin Nano", gstreamer=False)
    assert line.startswith("cameras.gate (decoder: jetson): this OpenCV") and "has no GStreamer" in line
    assert "JetPack's OpenCV (sudo apt-get install python3-opencv" in line
    assert "pip uninstall opencv-python-headless" in line  # the wheel that shadows the system's
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    (engine,) = engine_problems(config)
    assert engine.startswith("engine.backend: tensorrt needs tensorrt and pycuda")
    assert "sudo apt-get install python3-libnvinfer python3-pycuda" in engine


def test_edged_check_names_what_a_pi_camera_needs(tmp_path: Path) -> None:
    config = _config(tmp_path, "{backend: openvino, model: yolov3-tiny}",
                     "  porch: {url: libcamera, decoder: rpi}\n  street: {url: 'rtsp://10.0.0.6/s', decoder: rpi}\n")
    lines = camera_problems(config, "raspberry-pi", PI5, gstreamer=True, has_element=lambda element: False)
    assert lines == ["cameras.porch (decoder: rpi): GStreamer has no libcamerasrc here; install libcamera's "
                     "GStreamer plugin (sudo apt-get install gstreamer1.0-libcamera)"]  # street: software on a Pi 5
    lines = camera_problems(config, "raspberry-pi", PI4, gstreamer=True, has_element=lambda element: True)
    assert lines == []
    assert "Raspberry Pi OS's OpenCV" in camera_problems(config, "raspberry-pi", PI4, gstreamer=False)[0]


def test_a_pyav_hardware_decoder_needs_no_gstreamer_and_check_says_when_it_falls_back(tmp_path: Path) -> None:
    from av.codec.hwaccel import hwdevices_available

    from edged.tools.platform_check import decoder_notes

    config = _config(tmp_path, "{backend: openvino, model: yolov3-tiny}",
                     "  gate: {url: 'rtsp://10.0.0.5/s', decoder: vaapi}\n  yard: {url: 'rtsp://10.0.0.6/s', "
                     "decoder: qsv}\n")
    assert camera_problems(config, "generic", "", gstreamer=False) == []  # PyAV decodes it, not GStreamer
    notes = decoder_notes(config)
    have = set(hwdevices_available())
    assert len(notes) == len({"vaapi", "qsv"} - have)
    assert all("decoded in software" in note for note in notes)
    if "vaapi" not in have:  # PyPI's wheel: cuda, qsv, drm, amf
        assert notes[0].startswith("  camera gate: PyAV's FFmpeg here has no vaapi")


def test_edged_check_on_a_jetson_config_here_exits_2_with_what_to_install(tmp_path: Path) -> None:
    path = tmp_path / "jetson.yaml"
    path.write_text((ROOT / "configs" / "examples" / "jetson.yaml").read_text())
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "mqtt_password").write_text("x")
    done = subprocess.run([str(Path(sys.executable).with_name("edged")), "check", "-c", str(path),
                           "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, check=False,
                          env={**os.environ, "CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "python3-libnvinfer" in done.stderr  # no TensorRT on this machine
    assert "cameras.gate (decoder: jetson)" in done.stderr  # pip's OpenCV has no GStreamer here


def test_a_virtualenv_without_system_packages_is_told_apart(tmp_path: Path) -> None:
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    assert not sees_system_packages(tmp_path)
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\n")
    assert sees_system_packages(tmp_path)


def test_pmic_placeholder_temperatures_are_not_reported(telemetry_fixtures: Path) -> None:
    seen = 0
    for fixture in sorted((telemetry_fixtures / "tegrastats").glob("*.txt")):
        for line in fixture.read_text().splitlines():
            if "PMIC@" in line:
                seen += 1
                assert not {"PMIC", "pmic"} & set(parse_tegrastats(line).temps_c), (fixture.name, line)
    assert seen >= 2


def test_a_vcgencmd_that_is_denied_raises_probe_failed(tmp_path: Path) -> None:
    import asyncio

    fake = tmp_path / "vcgencmd"
    fake.write_text("#!/bin/sh\necho 'VCHI initialization failed: failed to open /dev/vcio'\nexit 255\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    reading = asyncio.run(VcgencmdReader(str(fake)).read())
    assert reading.temp_c is None and reading.throttle is None
    assert "vcgencmd measure_temp failed (exit 255): VCHI initialization failed" in reading.error
    assert "is /dev/vcio allowed?" in reading.error
    collector = Collector(TelemetryConfig(vcgencmd="off"))
    collector.pi = reading
    system = collector.system()
    assert "exit 255" in system["probe_errors"]["vcgencmd"]
    alerts = Alerts(AlertsConfig(), "d")
    fired = alerts.evaluate(system, snapshot(), 0.0)
    assert [(a["alert"], a["state"], a["probe"]) for a in fired] == [("probe_failed", "firing", "vcgencmd")]
    assert "camera" not in fired[0]
    assert alerts.evaluate(system, snapshot(), 1.0) == []  # once
    system.pop("probe_errors")
    (resolved,) = alerts.evaluate(system, snapshot(), 2.0)
    assert (resolved["alert"], resolved["state"]) == ("probe_failed", "resolved")


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(("precision", "flags"), [
    ("fp32", []), ("fp16", ["--fp16"]), ("int8", ["--fp16", "--int8", "--calib=/m/trt-calibration-g.cache"])])
def test_build_engine_script_uses_edgeds_python_and_the_precision_asked_for(tmp_path: Path, precision: str,
                                                                           flags: list[str]) -> None:
    calls = tmp_path / "calls"
    _stub(tmp_path / "python", f'echo "python $*" >> {calls}\n'
                               'if [ "$3" = calibration ]; then echo /m/trt-calibration-g.cache; fi\n')
    _stub(tmp_path / "trtexec", f'echo "trtexec $*" >> {calls}\n')
    (tmp_path / "cache" / "models" / "m" / "abc").mkdir(parents=True)
    (tmp_path / "cache" / "models" / "m" / "current").write_text("abc")
    env = {**os.environ, "EDGED_PYTHON": str(tmp_path / "python"), "EDGED_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(ROOT / "jetson" / "build_engine.sh"), "m", precision], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert all(line.startswith(("python -m edged.tools.tensorrt_build", "trtexec")) for line in lines)
    trtexec = next(line for line in lines if line.startswith("trtexec")).split()
    assert [f for f in trtexec if f in ("--fp16", "--int8") or f.startswith("--calib")] == flags
    assert lines[-1].endswith(f"--precision {precision} --batch 1")
