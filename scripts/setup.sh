#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu (root or sudo): system packages, then .venv with the project.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

APT_PACKAGES=(ffmpeg espeak-ng sox libsndfile1 postgresql redis-server chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python >= 3.11 required"; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[all,dev]"

# The Argilla server (vecs argilla serve, the annotation tests) lives in its own venv: argilla-server 2.8.0
# pins fastapi 0.115, pydantic 2.9, httpx 0.27, typer < 0.10, which the main venv cannot share. Its CLI
# crashes with click >= 8.2, and click < 8.2 then needs huggingface-hub < 1.0 and datasets < 5.
# psycopg2-binary + asyncpg stand in for the [postgresql] extra (no compiler, no libpq-dev needed).
ARGILLA_VENV=${ARGILLA_VENV:-.argilla-venv}
ARGILLA_PINS=("argilla-server==2.8.0" "asyncpg~=0.30.0" "psycopg2-binary~=2.9.0" "click<8.2" "huggingface-hub<1.0" "datasets<5")
ARGILLA_STAMP="$ARGILLA_VENV/.vecs-stamp"
if [ -f "$ARGILLA_STAMP" ] && [ "$(cat "$ARGILLA_STAMP")" = "${ARGILLA_PINS[*]}" ] \
   && "$ARGILLA_VENV/bin/python" -c 'import importlib.util as u, importlib.metadata as m, sys; sys.exit(not (u.find_spec("argilla_server") and u.find_spec("psycopg2") and u.find_spec("asyncpg") and m.version("argilla-server") == "2.8.0"))' 2>/dev/null; then
  :
else
  echo "setup: creating $ARGILLA_VENV (argilla-server 2.8.0)"
  rm -rf "$ARGILLA_VENV"  # built from scratch whenever the pins change: no half-upgraded server venv
  "$PYTHON" -m venv "$ARGILLA_VENV"
  "$ARGILLA_VENV/bin/python" -m pip install -q --upgrade pip
  "$ARGILLA_VENV/bin/python" -m pip install -q "${ARGILLA_PINS[@]}"
  echo "${ARGILLA_PINS[*]}" > "$ARGILLA_STAMP"
fi
echo "setup: done ($("$VENV/bin/python" --version); Argilla server venv $ARGILLA_VENV)"
