#!/usr/bin/env bash
# Set up (first run only), then lint, type-check and run the whole test suite.
# Extra arguments go to pytest (e.g. -k config, or tests/unit); then the unit tests on Python 3.10.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh --test
# Home Assistant Core for its integration test: a venv of its own on Python 3.13, built once and cached.
./scripts/ha-venv.sh
# A real Triton (PyTriton, which pins numpy<2) for the remote engine's tests: a venv of its own, built once, cached.
./scripts/triton-venv.sh
.venv/bin/ruff check edged tests studies
.venv/bin/mypy
# Models and clips are built by the project's own commands, never committed.
.venv/bin/edged model build yolov3-tiny
.venv/bin/edged media fetch
.venv/bin/python -m pytest "$@"
# JetPack 6's Python: the unit tests on 3.10 too, where pyenv or the system has it (its own .venv-3.10;
# EDGED_PYTHONS=0 skips this).
if [ "${EDGED_PYTHONS:-1}" != 0 ]; then
  if ls -d "$HOME"/.pyenv/versions/3.10.*/bin/python >/dev/null 2>&1 || command -v python3.10 >/dev/null; then
    ./scripts/test-pythons.sh 3.10
  else
    echo "test.sh: no Python 3.10 here: the unit tests ran on $(.venv/bin/python --version) only"
  fi
fi
