"""A real RTSP server for tests and the bench: GStreamer's gst-rtsp-server.

Usage: rtsp_server.py [--port N] NAME=FILE.mp4 [NAME=FILE.mp4 ...]

Serves each H.264 MP4 at rtsp://127.0.0.1:PORT/NAME without re-encoding. Each
client gets its own pipeline from the start of the file. Port 0 (the default)
lets the server pick a free port; the first line on stdout is ``READY <port>``.
Runs in its own process so a test can kill -9 it or SIGSTOP it. Needs a Python
with PyGObject (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("streams", nargs="+", help="NAME=FILE.mp4")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.streams:
        name, _, path = spec.partition("=")
        file = Path(path).resolve()
        if not name or not file.is_file():
            print(f"bad stream spec {spec!r}: want NAME=EXISTING_FILE", file=sys.stderr)
            return 2
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( filesrc location="{file}" ! qtdemux ! h264parse config-interval=-1 '
            f"! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        factory.set_shared(False)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        print("cannot attach the RTSP server", file=sys.stderr)
        return 1
    print(f"READY {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
