#!/usr/bin/env bash
# Train the neural filter on one CUDA GPU for a fixed wall-clock budget, then export the weights.
#
#   scripts/train_filter_gpu.sh            # on the GPU machine, in the repository root
#
# Needs: .traincache/filter_data.safetensors (built here by scripts/build_train_cache.py and
# carried along; the GPU machine has no copy of the data and no internet), and a python3 with
# torch (CUDA), numpy, pillow and safetensors.
# Writes to $OUT (default runs/filter_gpu): neural_filter.safetensors (the weights to ship, with
# provenance in their metadata), neural_filter.md (model card from that provenance),
# run/log.jsonl and run/checkpoint* (resumable with --resume).
# Environment overrides: PYTHON, OUT, CACHE, DEVICE, MAX_MINUTES, STEPS, BATCH, CROP, LR.
# Extra arguments are passed on to `python -m deflicker_impl.train filter`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUT=${OUT:-runs/filter_gpu}
CACHE=${CACHE:-.traincache/filter_data.safetensors}
DEVICE=${DEVICE:-cuda}
MAX_MINUTES=${MAX_MINUTES:-7}
STEPS=${STEPS:-1000000}  # the wall-clock budget ends the run; the lr schedule follows the clock
BATCH=${BATCH:-32}
CROP=${CROP:-256}
LR=${LR:-2e-3}

if [ ! -f "$CACHE" ]; then
  echo "error: $CACHE not found; build it with scripts/build_train_cache.py and carry .traincache" >&2
  exit 2
fi
mkdir -p "$OUT/run"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

start=$(date +%s)
"$PY" -m deflicker_impl.train filter \
  --cache "$CACHE" --out "$OUT/run" --device "$DEVICE" \
  --steps "$STEPS" --max-minutes "$MAX_MINUTES" \
  --batch "$BATCH" --crop "$CROP" --lr "$LR" --warmup 300 --seed 0 \
  --val-every 1000 --log-every 200 --checkpoint-every 2000 \
  --export "$OUT/neural_filter.safetensors" "$@"
"$PY" scripts/filter_model_card.py "$OUT/neural_filter.safetensors" > "$OUT/neural_filter.md"
echo "wall time: $(( $(date +%s) - start )) s; weights: $OUT/neural_filter.safetensors"
