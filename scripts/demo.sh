#!/usr/bin/env bash
# Set up (first run only) and run the edged demo: real model, real clips, local broker.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/edged demo "$@"
