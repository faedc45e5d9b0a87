#!/usr/bin/env bash
# The demo, from a fresh Debian/Ubuntu machine: set-up, then tools/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/python tools/demo.py
