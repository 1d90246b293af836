#!/usr/bin/env bash
# Train one network on one CUDA GPU for a fixed wall-clock budget, then export its weights.
#
#   scripts/train_gpu.sh filter [extra options]   # on the GPU machine, in the repository root
#   scripts/train_gpu.sh refine [extra options]
#
# Needs the stage's training cache, built here and carried along (the GPU machine has no copy of
# the data and no internet): .traincache/filter_data.safetensors (python -m
# scripts.build_train_cache) or .traincache/refine_data.safetensors (python -m
# scripts.build_refine_cache); and a python3 with torch (CUDA), numpy, pillow and safetensors.
# Writes to $OUT (default runs/<stage>_gpu): the weights to ship (neural_filter.safetensors or
# local_refine.safetensors, with provenance in their metadata), their model card (.md, from that
# provenance), run/log.jsonl and run/checkpoint* (resumable with --resume).
# Environment overrides: PYTHON, OUT, CACHE, DEVICE, MAX_MINUTES, STEPS, BATCH, CROP, LR.
# Extra arguments are passed on to `python -m deflicker_impl.train <stage>`.
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE=${1:-}
case "$STAGE" in
  filter)  # name, cache builder, defaults: budget, batch, crop, warm-up, validation, logging
    NAME=neural_filter; BUILDER=build_train_cache
    D_MINUTES=7; D_BATCH=32; D_CROP=256; WARMUP=300; VAL_EVERY=1000; LOG_EVERY=200 ;;
  refine)
    NAME=local_refine; BUILDER=build_refine_cache
    D_MINUTES=4.5; D_BATCH=48; D_CROP=88; WARMUP=200; VAL_EVERY=500; LOG_EVERY=100 ;;
  *)
    echo "usage: scripts/train_gpu.sh filter|refine [extra training options]" >&2
    exit 2 ;;
esac
shift

PY=${PYTHON:-python3}
OUT=${OUT:-runs/${STAGE}_gpu}
CACHE=${CACHE:-.traincache/${STAGE}_data.safetensors}
DEVICE=${DEVICE:-cuda}
MAX_MINUTES=${MAX_MINUTES:-$D_MINUTES}
STEPS=${STEPS:-1000000}  # the wall-clock budget ends the run; the lr schedule follows the clock
BATCH=${BATCH:-$D_BATCH}
CROP=${CROP:-$D_CROP}
LR=${LR:-2e-3}

if [ ! -f "$CACHE" ]; then
  echo "error: $CACHE not found; build it with python -m scripts.$BUILDER and carry it" >&2
  exit 2
fi
mkdir -p "$OUT/run"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

start=$(date +%s)
"$PY" -m deflicker_impl.train "$STAGE" \
  --cache "$CACHE" --out "$OUT/run" --device "$DEVICE" \
  --steps "$STEPS" --max-minutes "$MAX_MINUTES" \
  --batch "$BATCH" --crop "$CROP" --lr "$LR" --warmup "$WARMUP" --seed 0 \
  --val-every "$VAL_EVERY" --log-every "$LOG_EVERY" --checkpoint-every 2000 \
  --export "$OUT/$NAME.safetensors" "$@"
"$PY" -m scripts.model_card "$STAGE" "$OUT/$NAME.safetensors" > "$OUT/$NAME.md"
echo "wall time: $(( $(date +%s) - start )) s; weights: $OUT/$NAME.safetensors"
