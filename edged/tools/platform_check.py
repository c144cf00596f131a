"""``edged check``'s platform half: what a config needs from this machine, and what to install when it lacks it.

One line per problem, naming the camera or the engine and the package to install.
The usual cause on a Jetson or a Pi is pip's ``opencv-python-headless`` (no GStreamer:
the OpenCV maintainers will not ship GStreamer wheels, opencv-python#524) shadowing
the system's OpenCV, or a virtualenv made without ``--system-site-packages`` that
cannot see JetPack's TensorRT; ``scripts/install-service.sh`` avoids both.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from edged.config.camera import GSTREAMER_DECODERS, PYAV_DECODERS
from edged.config.models import Config

MIN_TENSORRT = (8, 6)  # JetPack 6; JetPack 5's TensorRT 8.5 reads np.bool, gone from numpy >= 1.24

_HOW = {
    "jetson": "JetPack's OpenCV (sudo apt-get install python3-opencv nvidia-l4t-gstreamer)",
    "raspberry-pi": "Raspberry Pi OS's OpenCV (sudo apt-get install python3-opencv gstreamer1.0-libcamera)",
    "generic": "an OpenCV built with GStreamer (Debian/Ubuntu: sudo apt-get install python3-opencv)",
}


def sees_system_packages(prefix: Path | None = None) -> bool:
    """False inside a virtualenv made without --system-site-packages (it cannot import JetPack's modules)."""
    if prefix is None and sys.prefix == sys.base_prefix:
        return True
    cfg = (prefix or Path(sys.prefix)) / "pyvenv.cfg"
    try:
        lines = cfg.read_text().splitlines()
    except OSError:
        return True
    return any(line.replace(" ", "").lower() == "include-system-site-packages=true" for line in lines)


def gst_element_exists(element: str) -> bool | None:
    """Whether GStreamer has ``element`` (None: gst-inspect-1.0 is not installed, so it cannot be told)."""
    inspect = shutil.which("gst-inspect-1.0")
    if inspect is None:
        return None
    done = subprocess.run([inspect, "--exists", element], capture_output=True, check=False, timeout=20)
    return done.returncode == 0


def _venv_hint() -> str:
    if sees_system_packages():
        return ""
    return (f"; edged's virtualenv ({sys.prefix}) cannot see the system's packages: make it with "
            f"python3 -m venv --system-site-packages (scripts/install-service.sh does)")


def _opencv_hint(board: str) -> str:
    found = importlib.util.find_spec("cv2")
    where = f" ({Path(found.origin).parent})" if found is not None and found.origin else ""
    shadow = ""
    if where and "site-packages" in where and "dist-packages" not in where:
        shadow = ", and no opencv-python-headless wheel in edged's virtualenv (pip uninstall opencv-python-headless)"
    return f"this OpenCV{where} has no GStreamer; install {_HOW.get(board, _HOW['generic'])}{shadow}{_venv_hint()}"


def camera_problems(config: Config, board: str, model: str, gstreamer: bool,
                    has_element: Callable[[str], bool | None] = gst_element_exists) -> list[str]:
    """``board``: 'jetson', 'raspberry-pi' or 'generic'; ``model``: the device-tree model string."""
    from edged.pipeline.cameras import resolve_decoder

    out = []
    for name, configured in config.cameras.items():
        if not configured.enabled:
            continue
        # As the daemon will run it: decoder: rpi without a hardware decoder on this board is software.
        camera = resolve_decoder(name, configured, model)
        needs = {"jetson": "nvv4l2decoder", "rpi": "v4l2h264dec"}.get(camera.decoder) if camera.kind != "libcamera" \
            else "libcamerasrc"
        uses_gstreamer = camera.kind in ("gstreamer", "libcamera") or camera.decoder in GSTREAMER_DECODERS
        what = f"cameras.{name}" + (f" (decoder: {camera.decoder})" if camera.decoder != "software" else "")
        if camera.decoder in PYAV_DECODERS and importlib.util.find_spec("av") is None:
            out.append(f"{what}: hardware decoding through PyAV, which is not installed (pip install av)")
            continue
        if uses_gstreamer and not gstreamer:
            out.append(f"{what}: {_opencv_hint(board)}")
            continue
        if needs is not None and uses_gstreamer and has_element(needs) is False:
            package = {"nvv4l2decoder": "JetPack's multimedia plugins (sudo apt-get install nvidia-l4t-gstreamer)",
                       "v4l2h264dec": "GStreamer's V4L2 plugins (sudo apt-get install gstreamer1.0-plugins-good)",
                       "libcamerasrc": "libcamera's GStreamer plugin (sudo apt-get install gstreamer1.0-libcamera)"}
            out.append(f"{what}: GStreamer has no {needs} here; install {package[needs]}")
    return out


def decoder_notes(config: Config) -> list[str]:
    """A hardware decoder (decoder: vaapi|qsv|cuda) that PyAV's FFmpeg here lacks: the camera decodes in
    software (said, not refused: the same config runs on the machine that has it)."""
    wanted = {name: camera.decoder for name, camera in config.cameras.items()
              if camera.enabled and camera.decoder in PYAV_DECODERS}
    if not wanted or importlib.util.find_spec("av") is None:
        return []
    from av.codec.hwaccel import hwdevices_available

    have = sorted(hwdevices_available())
    return [f"  camera {name}: PyAV's FFmpeg here has no {decoder} (it has {', '.join(have) or 'none'}): decoded "
            f"in software" for name, decoder in wanted.items() if decoder not in have]


def engine_problems(config: Config) -> list[str]:
    """TensorRT: importable (with pycuda), and at least JetPack 6's version."""
    if config.engine.backend != "tensorrt":
        return []
    missing = [name for name in ("tensorrt", "pycuda") if importlib.util.find_spec(name) is None]
    if missing:
        return [f"engine.backend: tensorrt needs {' and '.join(missing)}, not importable here; install JetPack's "
                f"(sudo apt-get install python3-libnvinfer python3-pycuda){_venv_hint()}"]
    try:
        import tensorrt as trt
    except Exception as exc:  # JetPack's bindings built for numpy 1 fail on numpy 2, for one
        return [f"engine.backend: tensorrt is installed but does not import: {str(exc).splitlines()[0][:160]} "
                f"(is numpy >= 2 installed in edged's virtualenv? JetPack's modules need numpy 1: "
                f"pip install 'numpy<2')"]
    version = tuple(int(part) for part in str(trt.__version__).split(".")[:2] if part.isdigit())
    if version < MIN_TENSORRT:
        return [f"engine.backend: TensorRT {trt.__version__} is older than 8.6: edged needs JetPack 6 "
                f"(TensorRT 8.6 or 10, Python 3.10) or newer; JetPack 5 and earlier are not supported"]
    return []


def platform_problems(config: Config) -> list[str]:
    from edged.platform import board_kind, device_model
    from edged.sources.opencv import gstreamer_available

    return camera_problems(config, board_kind(), device_model(), gstreamer_available()) + engine_problems(config)
