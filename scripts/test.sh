#!/usr/bin/env bash
# Set up everything on a fresh machine and run the whole test suite (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh dev
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # browser tests drive Debian's chromium with Playwright (never `playwright install`)
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: browser tests will skip"
fi
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
python -m pytest "$@"
