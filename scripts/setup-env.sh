#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install ovmlv with an extra.
# Usage: source scripts/setup-env.sh EXTRA     (EXTRA: dev, app, ...)
set -euo pipefail
extra="${1:-dev}"
venv="${OVMLV_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
stamp="$venv/.ovmlv-installed-$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q -e ".[$extra]"
  touch "$stamp"
fi
export PATH="$PWD/$venv/bin:$PATH"
