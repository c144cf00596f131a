#!/usr/bin/env bash
# Build a TensorRT engine for this Jetson with trtexec, from a model in edged's cache.
#
#   jetson/build_engine.sh MODEL [fp16|int8] [BATCH]
#
# INT8 needs a calibration cache: run 'edged calibrate -c CONFIG' with a tensorrt
# engine in the config (or 'edged export MODEL --tensorrt int8 --calibration DIR')
# once on this device; it writes trt-calibration-*.cache into the model's directory,
# which this script hands to trtexec. The finished engine is registered with its
# TensorRT version and GPU compute capability, as edged's own builder does.
# Before measuring anything: sudo nvpmodel -m 0 && sudo jetson_clocks
set -euo pipefail

model=${1:?usage: $0 MODEL [fp16|int8] [BATCH]}
precision=${2:-fp16}
batch=${3:-1}
cache_dir=${EDGED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edged}
root="$cache_dir/models/$model"
[ -f "$root/current" ] || { echo "model '$model' is not built in $cache_dir (edged export ...)" >&2; exit 2; }
dir="$root/$(cat "$root/current")"
trtexec=$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)
[ -x "$trtexec" ] || { echo "trtexec not found (JetPack: /usr/src/tensorrt/bin/trtexec)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m edged.tools.tensorrt_build wrap "$model" --batch "$batch" --out "$work/model-u8.onnx"

flags=(--fp16)
if [ "$precision" = int8 ]; then
  calib=$(ls -t "$dir"/trt-calibration-*.cache 2>/dev/null | head -n 1 || true)
  [ -n "$calib" ] || { echo "no calibration cache in $dir; run 'edged calibrate' with a tensorrt engine first" >&2; exit 2; }
  flags+=(--int8 "--calib=$calib")
fi
"$trtexec" --onnx="$work/model-u8.onnx" --saveEngine="$work/model.engine" --memPoolSize=workspace:1024 "${flags[@]}"
python3 -m edged.tools.tensorrt_build register "$model" --engine "$work/model.engine" --precision "$precision" --batch "$batch"
