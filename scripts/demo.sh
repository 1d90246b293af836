#!/usr/bin/env bash
# Quick start (a): set up .venv (idempotent), then deflicker the bundled demo clip end to end
# through a real headless ComfyUI running the first example workflow
# (example_workflows/deflicker_video.json), write a side-by-side comparison and print the metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
IN=example_workflows/demo_flicker.mp4
OUTDIR=out/demo
rm -rf "$OUTDIR"
echo "--- running example_workflows/deflicker_video.json in a headless ComfyUI ---"
RESULT=$(.venv/bin/python -m scripts.run_workflow example_workflows/deflicker_video.json \
  --input "$IN" --out-dir "$OUTDIR")
VIDEO=$(printf '%s' "$RESULT" | .venv/bin/python -c \
  'import json, sys; print(json.loads(sys.stdin.read().splitlines()[-1])["outputs"][0])')
mv "$VIDEO" "$OUTDIR/demo_deflickered.mp4"
echo "--- flicker before / after (8-bit levels, lower is steadier) ---"
.venv/bin/python -m deflicker_impl compare "$IN" "$OUTDIR/demo_deflickered.mp4" \
  "$OUTDIR/demo_side_by_side.mp4" --plot "$OUTDIR/demo_metrics.png"
echo
echo "Deflickered video:  $(pwd)/$OUTDIR/demo_deflickered.mp4"
echo "Side by side:       $(pwd)/$OUTDIR/demo_side_by_side.mp4"
echo "Per-frame plot:     $(pwd)/$OUTDIR/demo_metrics.png"
echo "ComfyUI's log:      $(pwd)/$OUTDIR/comfyui_run/server.log"
