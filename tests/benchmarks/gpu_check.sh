#!/usr/bin/env bash
# The GPU checks of issue #10, as one prepared script (run it on a machine with an NVIDIA GPU, from the repo root):
#   bash tests/benchmarks/gpu_check.sh [OUT_DIR]        # ~10 min on one H100/H200-class GPU
# 1. the smoke suite end to end with device: cuda (every stage, every modality, bf16 autocast);
# 2. loop_efficiency.py on benchmark.yaml's vision models at 224 px (trainer vs model-only samples/s, data-wait share);
# 3. benchmark_time.py --device cuda: the projected time of `make benchmark` on this GPU.
# Everything it prints is also written under OUT_DIR (default: results/gpu_check).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results/gpu_check}
mkdir -p "$OUT"
PY=.venv/bin/python
[ -x "$PY" ] || { make setup >/dev/null; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'; print(torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"

echo ">> 1. smoke suite on cuda"
WORK=$(mktemp -d)
sed 's/^device: auto/device: cuda/' config/smoke.yaml > "$WORK/smoke_cuda.yaml"
( time .venv/bin/snakemake -s Snakefile --directory "$WORK" --cores 4 --configfile "$WORK/smoke_cuda.yaml" \
    > "$OUT/smoke_cuda.log" 2>&1 ) 2>> "$OUT/smoke_cuda.log"
tail -3 "$OUT/smoke_cuda.log"
cp "$WORK/results/tables/leaderboard.md" "$OUT/smoke_cuda_leaderboard.md"
$PY - "$WORK" <<'PY' | tee "$OUT/smoke_cuda_devices.txt"
import json, sys, pathlib
ms = [json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1], "results/runs").glob("*/*/seed*/metrics.json")]
print(f"{len(ms)} runs, devices: {sorted({m['device'] for m in ms})}")
assert ms and all(m["device"] == "cuda" for m in ms)
PY

echo ">> 2. loop efficiency, benchmark.yaml vision models at 224 px"
$PY tests/benchmarks/loop_efficiency.py --config config/benchmark.yaml --modality vision --tasks cub200 \
    --device cuda --steps 50 --out "$OUT/loop_efficiency_cuda.csv" 2>&1 | tee "$OUT/loop_efficiency_cuda.txt"

echo ">> 3. projected benchmark time on this GPU"
$PY tests/benchmarks/benchmark_time.py --config config/benchmark.yaml --device cuda --steps 30 \
    --out "$OUT/benchmark_time_cuda.csv" 2>&1 | tee "$OUT/benchmark_time_cuda.txt"
echo ">> done: $OUT"
