#!/usr/bin/env bash
# A Home Assistant Core for the integration tests, in a virtualenv of its own, built once and cached:
# ${EDGED_HA_VENV:-~/.cache/edged/venvs/homeassistant-2025.4.4}. 2025.4.4 is the last release that runs on
# Python 3.13.0 (later ones need 3.13.2+); with it, the requirements of the integrations the tests load
# (mqtt, recorder) and of the ones it always loads (frontend among them: without it, recovery mode), so Home
# Assistant runs with --skip-pip and installs nothing while a test waits.
set -euo pipefail
HA_VERSION=2025.4.4
VENV="${EDGED_HA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edged/venvs/homeassistant-$HA_VERSION}"
REQS=("homeassistant==$HA_VERSION" "paho-mqtt==2.1.0" "SQLAlchemy==2.0.39" "fnv-hash-fast==1.4.0"
      "psutil-home-assistant==0.0.1" "home-assistant-frontend==20250411.0" "Pillow==11.1.0" "cronsim==2.6"
      "securetar==2025.2.1" "aiohasupervisor==0.3.0" "isal==1.7.1" "cached-ipaddress==0.10.0" "ifaddr==0.2.0")
if [ -f "$VENV/.edged-ready" ] && [ "$(cat "$VENV/.edged-ready")" = "${REQS[*]}" ]; then
  exit 0
fi
PY=""
for candidate in "$HOME"/.pyenv/versions/3.13.0/bin/python3.13 "$(command -v python3.13 || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
  echo "ha-venv.sh: no Python 3.13 here (pyenv 3.13.0 or python3.13): the Home Assistant tests will be skipped" >&2
  exit 0
fi
echo "ha-venv.sh: building Home Assistant $HA_VERSION in $VENV (once; a few minutes)"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQS[@]}" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import homeassistant, paho.mqtt, sqlalchemy"
echo "${REQS[*]}" > "$VENV/.edged-ready"
