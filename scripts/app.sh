#!/usr/bin/env bash
# Set up everything on a fresh machine and start the web app (extra args go to app.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh app
exec python app.py "$@"
