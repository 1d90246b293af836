#!/usr/bin/env bash
# Quick start (b): set up .venv (idempotent) and run the whole test suite, real-ComfyUI tests
# and slow tests included. Extra arguments go to pytest (e.g. -m "not slow" for a quick pass).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=10 "$@"
