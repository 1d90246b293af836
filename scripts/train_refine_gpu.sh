#!/usr/bin/env bash
# Train the local refinement net on one CUDA GPU for a fixed wall-clock budget, then export.
#
#   scripts/train_refine_gpu.sh            # on the GPU machine, in the repository root
#
# Needs: .traincache/refine_data.safetensors (built here by scripts/build_refine_cache.py and
# carried along; the GPU machine has no copy of the data and no internet), and a python3 with
# torch (CUDA), numpy and safetensors.
# Writes to $OUT (default runs/refine_gpu): local_refine.safetensors (weights with provenance),
# local_refine.md (model card), run/log.jsonl and run/checkpoint* (resumable with --resume).
# Environment overrides: PYTHON, OUT, CACHE, DEVICE, MAX_MINUTES, STEPS, BATCH, CROP, LR.
# Extra arguments are passed on to `python -m deflicker_impl.train refine`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUT=${OUT:-runs/refine_gpu}
CACHE=${CACHE:-.traincache/refine_data.safetensors}
DEVICE=${DEVICE:-cuda}
MAX_MINUTES=${MAX_MINUTES:-4.5}
STEPS=${STEPS:-1000000}  # the wall-clock budget ends the run; the lr schedule follows the clock
BATCH=${BATCH:-48}
CROP=${CROP:-88}
LR=${LR:-2e-3}

if [ ! -f "$CACHE" ]; then
  echo "error: $CACHE not found; build it with scripts/build_refine_cache.py and carry it" >&2
  exit 2
fi
mkdir -p "$OUT/run"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

start=$(date +%s)
"$PY" -m deflicker_impl.train refine \
  --cache "$CACHE" --out "$OUT/run" --device "$DEVICE" \
  --steps "$STEPS" --max-minutes "$MAX_MINUTES" \
  --batch "$BATCH" --crop "$CROP" --lr "$LR" --warmup 200 --seed 0 \
  --val-every 500 --log-every 100 --checkpoint-every 2000 \
  --export "$OUT/local_refine.safetensors" "$@"
"$PY" scripts/refine_model_card.py "$OUT/local_refine.safetensors" > "$OUT/local_refine.md"
echo "wall time: $(( $(date +%s) - start )) s; weights: $OUT/local_refine.safetensors"
