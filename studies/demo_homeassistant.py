"""What a Home Assistant user and a browser see of ``edged demo``: the entities and the page.

    python -m studies.demo_homeassistant [--seconds 60] [--out out/studies]

Runs ``edged demo`` (its own broker), a real Home Assistant Core (scripts/ha-venv.sh)
connected to that broker, and, after ``--seconds``, lists the entities Home Assistant
created for edged with their states (``ha-entities.md``) and takes a screenshot of the
demo's page in headless Chromium (``page.png``). Prints both paths; never fails on time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edged.testing.broker import free_port
from edged.testing.daemon_process import http_port_in
from edged.testing.homeassistant import HomeAssistant


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("out/studies"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="edged-ha-demo-") as tmp:
        log = Path(tmp) / "demo.log"
        demo = subprocess.Popen([sys.executable, "-m", "edged", "demo", "--port", str(port), "--duration",
                                 str(args.seconds + 60)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            http = _wait_http(log)
            ha = HomeAssistant(Path(tmp) / "ha", port).start()
            try:
                time.sleep(args.seconds)
                states = {e: s for e, s in ha.states().items() if "edged_demo" in e and s.state}
                _screenshot(http, args.out / "page.png")
            finally:
                ha.stop()
        finally:
            demo.terminate()
            demo.wait(30)
    table = ["| entity | state now |", "|---|---|"]
    table += [f"| `{entity}` | {state.state} |" for entity, state in sorted(states.items())]
    (args.out / "ha-entities.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"{len(states)} entities; {args.out / 'ha-entities.md'}, {args.out / 'page.png'}")
    return 0


def _wait_http(log: Path, timeout: float = 300.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port = http_port_in(log.read_text(errors="replace"))
        if port is not None:
            return port
        time.sleep(0.5)
    raise SystemExit(f"the demo did not start its HTTP server within {timeout:g} s:\n{log.read_text()[-2000:]}")


def _screenshot(port: int, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("() => [...document.querySelectorAll('.camera img')].every(i => i.naturalWidth > 0)",
                               timeout=60_000)
        time.sleep(2.0)
        page.screenshot(path=str(path))
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
