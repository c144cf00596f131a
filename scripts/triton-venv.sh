#!/usr/bin/env bash
# A real Triton Inference Server for the remote engine's tests and bench: PyTriton (it bundles tritonserver)
# with OpenVINO in a venv of its own, because PyTriton pins numpy<2; built once and cached in
# ${EDGED_TRITON_VENV:-~/.cache/edged/venvs/pytriton-0.7.0}.
set -euo pipefail
VENV="${EDGED_TRITON_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edged/venvs/pytriton-0.7.0}"
REQS=("nvidia-pytriton==0.7.0" "numpy<2" "openvino==2026.4.1")
if [ -f "$VENV/.edged-ready" ] && [ "$(cat "$VENV/.edged-ready")" = "${REQS[*]}" ]; then
  exit 0
fi
# The system's Python: PyTriton's Python backend stub links the system's libpython3.X.so, whose interpreter must
# match the venv's standard library (a pyenv 3.11.7 venv under Debian's libpython3.11 3.11.2 fails in
# multiprocessing with "'_thread.RLock' object has no attribute '_recursion_count'").
PY="${PYTHON:-/usr/bin/python3}"
echo "triton-venv.sh: building PyTriton in $VENV (once; a few minutes)"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQS[@]}" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import pytriton, openvino, numpy"
echo "${REQS[*]}" > "$VENV/.edged-ready"
