#!/usr/bin/env bash
# Build a TensorRT engine for this Jetson with trtexec, from a model in edged's cache.
#
#   jetson/build_engine.sh MODEL [fp16|int8|fp32] [BATCH]
#
# INT8 needs a calibration cache made for the same graph: run 'edged calibrate -c CONFIG'
# with a tensorrt engine in the config (or 'edged export MODEL --tensorrt int8
# --calibration DIR') once on this device; it writes trt-calibration-*.cache with a
# sidecar naming the graph, and this script hands trtexec only a cache of this graph
# (another graph's cache makes TensorRT fall back from INT8 without saying so).
# The finished engine is registered with its TensorRT version and GPU, as edged's own
# builder does. Before measuring anything: sudo nvpmodel -m 0 && sudo jetson_clocks
set -euo pipefail

model=${1:?usage: $0 MODEL [fp16|int8|fp32] [BATCH]}
precision=${2:-fp16}
batch=${3:-1}
case "$precision" in fp16|int8|fp32) ;; *) echo "precision must be fp16, int8 or fp32, not '$precision'" >&2; exit 2 ;; esac
# edged's own Python (its virtualenv), not the system's: EDGED_PYTHON, /opt/edged, or beside 'edged' on PATH.
python=${EDGED_PYTHON:-/opt/edged/bin/python}
if [ ! -x "$python" ] && command -v edged >/dev/null; then
  python="$(dirname "$(readlink -f "$(command -v edged)")")/python"
fi
[ -x "$python" ] || { echo "edged's Python not found: set EDGED_PYTHON to the python of edged's virtualenv" >&2; exit 2; }
cache_dir=${EDGED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edged}
root="$cache_dir/models/$model"
[ -f "$root/current" ] || { echo "model '$model' is not built in $cache_dir (edged export ...)" >&2; exit 2; }
trtexec=$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)
[ -x "$trtexec" ] || { echo "trtexec not found (JetPack: /usr/src/tensorrt/bin/trtexec)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m edged.tools.tensorrt_build wrap "$model" --batch "$batch" --out "$work/model-u8.onnx"

flags=()  # fp32: no reduced-precision flag at all
case "$precision" in
  fp16) flags+=(--fp16) ;;
  int8)
    calib=$("$python" -m edged.tools.tensorrt_build calibration "$model")
    flags+=(--fp16 --int8 "--calib=$calib") ;;
esac
"$trtexec" --onnx="$work/model-u8.onnx" --saveEngine="$work/model.engine" --memPoolSize=workspace:1024 "${flags[@]}"
"$python" -m edged.tools.tensorrt_build register "$model" --engine "$work/model.engine" --precision "$precision" --batch "$batch"
