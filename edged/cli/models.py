"""``edged export``, ``edged calibrate`` and ``edged model``: models built, quantised, gated and listed."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from edged.errors import EdgedError, InputError

if TYPE_CHECKING:
    pass

from edged.cli.running import _load, _secrets

log = logging.getLogger("edged")


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
    from edged.tools.precision_gate import choose, frames_for

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
