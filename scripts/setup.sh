#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu: system packages (as root or with sudo), then .venv with the project.
# VECS_SETUP_BROWSER=0 skips Chromium (only the browser tests use it; make demo does not).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# First what cannot be fixed here: the Python.
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: $PYTHON not found: install Python >= 3.11 (or set PYTHON=/path/to/python3.11)"; exit 1
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: Python >= 3.11 required, $PYTHON is $("$PYTHON" -V 2>&1) (set PYTHON=/path/to/python3.11)"; exit 1; }

APT_PACKAGES=(ffmpeg espeak-ng sox libsndfile1 postgresql redis-server)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || APT_PACKAGES+=(python3-venv)  # Debian's Python splits it out
. /etc/os-release 2>/dev/null || true
if [ "${VECS_SETUP_BROWSER:-1}" != "0" ]; then
  if [ "${ID:-}" = "ubuntu" ]; then
    # Ubuntu's chromium package installs a snap, which containers and CI runners lack: the browser tests skip.
    command -v chromium >/dev/null 2>&1 || echo "setup: Ubuntu: not installing chromium (a snap there); the browser" \
      "tests will skip — install a Chromium without snap (e.g. Debian's or Google's .deb) to run them"
  else
    APT_PACKAGES+=(chromium)
  fi
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO="sudo"
    else
      echo "setup: needs Debian packages (${missing[*]}) and this user is not root and has no password-less sudo:" \
        "ask an administrator to run 'apt-get install ${missing[*]}', then run make setup again"
      exit 1
    fi
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

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
