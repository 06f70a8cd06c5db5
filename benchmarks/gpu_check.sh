#!/usr/bin/env bash
# The GPU checks in one script, for a machine with CUDA (README, "Training recipes", the GPU figures):
#   bash benchmarks/gpu_check.sh OUT_DIR [DEMO_MINUTES]
# 1. bench_train.py drives the CUDA paths of a training step (autocast, GradScaler, channels_last);
# 2. training throughput: fp32 vs bf16 AMP, default and CPU-recipe models, 160x128 and 640x512;
# 3. `deltaz demo --device cuda` for DEMO_MINUTES minutes (default 3), its report copied to OUT_DIR.
# Uses whatever torch the machine has; run from the repository root with deltaz importable.
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR [DEMO_MINUTES]}
minutes=${2:-3}
mkdir -p "$out"
py=${PYTHON:-python3}
status=0
run() { echo "+ $*"; "$@" || { echo "FAILED ($?): $*"; status=1; }; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$py -c "import torch, kornia; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

for args in "--base-channel 32 --unet-depth 4 --batch-size 4" \
            "--base-channel 32 --unet-depth 4 --batch-size 4 --amp" \
            "--base-channel 32 --unet-depth 4 --batch-size 16 --amp" \
            "--base-channel 16 --unet-depth 4 --batch-size 8" \
            "--base-channel 32 --unet-depth 4 --batch-size 4 --height 512 --width 640" \
            "--base-channel 32 --unet-depth 4 --batch-size 4 --height 512 --width 640 --amp"; do
  run $py benchmarks/bench_train.py --device cuda --steps 20 --warmup 5 $args
done

demo=/tmp/deltaz_gpu_demo
run $py -m deltaz demo --device cuda --minutes "$minutes" --out "$demo/run" --data "$demo/data" --no-progress
for f in report.md metrics.json train_summary.json demo_summary.json; do
  [ -f "$demo/run/$f" ] && cp "$demo/run/$f" "$out/"
done
exit $status
