"""``edged fleet``, ``edged media``, ``edged demo`` and ``edged bench``."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from edged.errors import InputError

if TYPE_CHECKING:
    pass


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
    from edged.bench.run import BenchOptions, main_bench
    from edged.logs import setup_logging

    setup_logging("info")  # progress lines, where stderr is not a terminal
    if args.seconds <= 0 or args.warmup < 0:
        raise InputError("--seconds must be > 0 and --warmup >= 0")
    if not args.cameras or any(k < 1 for k in args.cameras):
        raise InputError("--cameras: give camera counts of 1 or more, e.g. --cameras 1 2 4 8")
    if args.readme is not None:
        from edged.bench.report import check_readme

        problem = check_readme(args.readme)
        if problem:
            raise InputError(f"--readme {problem}")
    if args.report_only:
        from edged.bench.summary import report_only

        return report_only(args.out, args.readme)
    options = BenchOptions(out=args.out, seconds=args.seconds, warmup=args.warmup, cameras=sorted(set(args.cameras)),
                           precision=args.precision, peer=not args.no_peer, engine_cases=not args.no_engine_cases,
                           analytics=not args.no_analytics, page=not args.no_page, layouts=not args.no_layouts,
                           readme=args.readme)
    return main_bench(options, args.cache_dir)
