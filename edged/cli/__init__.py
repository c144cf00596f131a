"""Command line: ``edged run | check | demo | model | export | calibrate | bench | media | fleet``.

One module per group of commands (``running``, ``models``, ``others``), their arguments in ``parser``.

Errors the user can fix print one line each, prefixed ``edged: error:``, and exit
2 (bad input) or 1 (a failure while running); never a traceback unless --debug.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

from edged.cli.parser import build_parser
from edged.errors import EdgedError
from edged.paths import default_cache_dir
from edged.redact import scrub

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cache_dir is None:
        args.cache_dir = default_cache_dir(dict(os.environ))
    try:
        return int(args.func(args))
    except EdgedError as exc:
        for line in exc.lines():
            # A line may carry what a file named (an ONNX tensor's name, a label): never a control character.
            print(f"edged: error: {scrub(line, ())}", file=sys.stderr)
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
