#!/usr/bin/env bash
# Set up (first run only), then lint, type-check and run the whole test suite.
# Extra arguments go to pytest (e.g. -k config, or tests/unit).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/ruff check edged tests bench
.venv/bin/mypy
# Models and clips are built by the project's own commands, never committed.
.venv/bin/edged model build yolov3-tiny
.venv/bin/edged media fetch
exec .venv/bin/python -m pytest "$@"
