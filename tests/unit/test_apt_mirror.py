"""scripts/check-arm64.sh takes the Debian mirror this machine's apt uses (scripts/apt-mirror.sh), never a host
written into the script."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "apt-mirror.sh"
pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="no apt-get here")


def mirror(etc: Path, tmp: Path, suite: str = "bookworm") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), suite, "-o", f"Dir::Etc={etc}", "-o", f"Dir::State::Lists={tmp}/lists",
                           "-o", "Dir::Etc::Parts=/nonexistent"], capture_output=True, text=True, timeout=30,
                          check=False)


def test_one_line_sources(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("deb http://security.example.test/debian-security bookworm-security main\n"
                                      "deb [arch=amd64] http://mirror.example.test/debian/ bookworm main contrib\n")
    done = mirror(etc, tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, "http://mirror.example.test/debian")


def test_deb822_sources(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb822.example.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    done = mirror(etc, tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, "http://deb822.example.test/debian")
    assert mirror(etc, tmp_path, "trixie").returncode == 1  # not configured: no guess


def test_check_arm64_names_no_host() -> None:
    text = (REPO / "scripts" / "check-arm64.sh").read_text()
    assert re.search(r"https?://", text) is None
    assert "scripts/apt-mirror.sh bookworm" in text
