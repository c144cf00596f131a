"""``edged run`` and ``edged check``: the daemon, and a config checked without starting it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from edged.errors import EdgedError, InputError

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
    from edged.service.malloc import tune_allocator

    allocator = tune_allocator(os.environ)  # before any thread starts

    from edged.daemon import build_daemon
    from edged.logs import setup_logging

    config = _load(args)
    setup_logging(args.log_level or config.log.level, config.log.format, _secrets(config))
    log.info("%s", allocator)
    from edged.paths import default_spool_path
    from edged.service.sdnotify import Notifier, watchdog_interval
    from edged.tools.classifier_gate import settle_classifiers
    from edged.tools.precision_gate import settle

    env = dict(os.environ)
    engine, notes = settle(config, args.cache_dir)
    fallbacks = [settle(config, args.cache_dir, fallback)[0] for fallback in config.fallbacks]
    config = settle_classifiers(config, args.cache_dir)
    daemon = build_daemon(
        config, args.cache_dir, default_spool_path(env, config.device_id),
        reload_config=lambda: settle_classifiers(_load(args), args.cache_dir), notifier=Notifier.from_env(env),
        watchdog_s=watchdog_interval(env),
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
    from edged.looks.looks import check_looks, describe
    from edged.paths import default_spool_path
    from edged.pipeline.cameras import check_labels
    from edged.publish.spool import spool_health
    from edged.redact import redact_url
    from edged.tools.platform_check import decoder_notes, platform_problems

    config = _load(args)
    problems, chain_notes, model = _check_engines(config, args.cache_dir)
    if model is not None and model.labels:
        for name in config.cameras:
            unknown = [lb for lb in config.detect_for(name).labels if lb not in model.labels]
            if unknown:
                problems.append(f"cameras.{name}.detect.labels: not in the model's labels: {', '.join(unknown)}")
        try:
            check_labels(config, model.labels)
        except InputError as exc:
            problems.append(str(exc))
    problems += platform_problems(config) + check_looks(config, args.cache_dir)
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
        if camera.tiles:
            gate += ", two tiles a frame"
        zones = [f"{zone} (speed over {z.speed.metres:g} m)" if z.speed else zone for zone, z in camera.zones.items()]
        lines = [f"{line} (hysteresis {c.hysteresis:g} or {c.hysteresis_s:g} s)" for line, c in camera.lines.items()]
        areas = "".join(f"; {kind} {', '.join(names)}" for kind, names in (("zones", zones), ("lines", lines))
                        if names)
        print(f"  camera {name}: {camera.kind} {redact_url(camera.url)}, {fps}, {gate}{areas}{state}")
        if describe(camera):
            print(f"    second looks: {describe(camera)}")
    for line in decoder_notes(config):
        print(line)
    http = config.http
    if http.listen:
        guard = "basic auth" if http.auth else "bearer token" if http.token else "no credentials (loopback)"
        print(f"  http: {'the page, ' if http.page else ''}/healthz, /metrics on {http.listen}, {guard}")
    ha = config.homeassistant
    on = {True: "on", False: "off"}
    print(f"  home assistant: {f'discovery under {ha.prefix}/' if ha.enabled else 'off'}; snapshots "
          f"{on[config.snapshots.enabled]}; controls over MQTT {on[config.mqtt.controls]}")
    return 0
