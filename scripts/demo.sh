#!/usr/bin/env bash
# Quick start (a): set up .venv (idempotent) and deflicker the bundled demo clip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
IN=example_workflows/demo_flicker.mp4
OUT=out/demo_deflickered.mp4
.venv/bin/python -m deflicker_impl deflicker "$IN" "$OUT" --save-texture out/demo_atlas.png
echo "--- flicker before / after ---"
.venv/bin/python -m deflicker_impl metrics "$IN"
.venv/bin/python -m deflicker_impl metrics "$OUT" --flow-from "$IN"
echo "Deflickered video: $(pwd)/$OUT   (atlas texture: $(pwd)/out/demo_atlas.png)"
