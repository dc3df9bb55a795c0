#!/usr/bin/env bash
# The GPU checks of issue #10, as one prepared script (run it on a machine with an NVIDIA GPU, from the repo root):
#   bash tests/benchmarks/gpu_check.sh [OUT_DIR]        # ~10 min on one H100/H200-class GPU
# 1. the smoke suite on cuda (every modality and family, bf16 autocast): through Snakemake end to end where the
#    finebench environment is there (.venv); else each of its training jobs directly (tests/benchmarks/smoke_jobs.py);
# 2. loop_efficiency.py on benchmark.yaml's vision models at 224 px (trainer vs model-only samples/s, data-wait share);
# 3. benchmark_time.py --device cuda: the projected time of `make benchmark` on this GPU;
# 4. recurrent layers (#33 items 2, 3): an LSTM's/GRU's output dtype under bf16 autocast with and without
#    fp32_recurrent (cuDNN's autocast casts to fp16 whatever dtype was asked), and their FLOPs counted on this device.
# Everything it prints is also written under OUT_DIR (default: results/gpu_check). A failing stage is reported and the
# next one still runs. Rehearsal without a GPU (the script's logic, tiny steps):
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_NO_SNAKEMAKE=1 GPU_CHECK_STEPS=1 bash tests/benchmarks/gpu_check.sh /tmp/gc
#
# Python: .venv (after `make setup`) when there is one; else a `python3` that has torch (an offline GPU box such as
# this workplace's device machine), with finebench from src/ and the missing packages from .whl/ — prepare both with
# `bash tests/benchmarks/device_prepare.sh` on a machine with the package registries, then carry .whl and .gpu-data.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results/gpu_check}
mkdir -p "$OUT"
if [ -n "${FINEBENCH_PY:-}" ]; then
  PY=$FINEBENCH_PY
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif python3 -c "import torch" 2>/dev/null; then
  PY=python3
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/finebench-site \
        .whl/*.whl 2>&1 | grep -v "^WARNING" || true
  fi
  export PYTHONPATH=$PWD/src:/tmp/finebench-site${PYTHONPATH:+:$PYTHONPATH}
else
  make setup >/dev/null
  PY=.venv/bin/python
fi
export PYTHONUNBUFFERED=1 MLFLOW_DISABLE_TELEMETRY=true
DEVICE=${GPU_CHECK_DEVICE:-cuda}
STEPS=${GPU_CHECK_STEPS:-}
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  "$PY" -c "import sys, torch, timm; assert torch.cuda.is_available(), 'no CUDA device visible to torch'
print(sys.version.split()[0], 'torch', torch.__version__, 'timm', timm.__version__, torch.cuda.get_device_name(0))" \
      | tee -a "$OUT/gpu.txt"
fi

if [ -z "${GPU_CHECK_NO_SNAKEMAKE:-}" ] && "$PY" -c "import snakemake" 2>/dev/null; then
  echo ">> 1. smoke suite on $DEVICE, through Snakemake"
  WORK=$(mktemp -d)
  sed "s/^device: auto/device: $DEVICE/" config/smoke.yaml > "$WORK/smoke_cuda.yaml"
  ( time "$PY" -m snakemake -s Snakefile --directory "$WORK" --cores 4 --configfile "$WORK/smoke_cuda.yaml" \
      > "$OUT/smoke_cuda.log" 2>&1 ) 2>> "$OUT/smoke_cuda.log" || echo "!! snakemake failed: $OUT/smoke_cuda.log"
  tail -3 "$OUT/smoke_cuda.log"
  cp "$WORK/results/tables/leaderboard.md" "$OUT/smoke_cuda_leaderboard.md" || true
  { "$PY" - "$WORK" "$DEVICE" <<'PY'
import json, sys, pathlib
ms = [json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1], "results/runs").glob("*/*/seed*/metrics.json")]
print(f"{len(ms)} runs, devices: {sorted({m['device'] for m in ms})}")
assert ms and all(m["device"] == sys.argv[2] for m in ms)
PY
  } | tee "$OUT/smoke_cuda_devices.txt" || echo "!! the smoke suite did not run on $DEVICE; going on"
else
  echo ">> 1. smoke suite's training jobs on $DEVICE (no Snakemake), data from .gpu-data"
  "$PY" tests/benchmarks/smoke_jobs.py --device "$DEVICE" --data .gpu-data --out "$OUT/smoke_jobs_cuda.csv" 2>&1 \
      | tee "$OUT/smoke_jobs_cuda.txt" || echo "!! some smoke jobs failed (above); going on"
fi

echo ">> 2. loop efficiency, benchmark.yaml vision models at 224 px"
"$PY" tests/benchmarks/loop_efficiency.py --config config/benchmark.yaml --modality vision --tasks cub200 \
    --device "$DEVICE" --steps "${STEPS:-50}" --out "$OUT/loop_efficiency_cuda.csv" 2>&1 \
    | tee "$OUT/loop_efficiency_cuda.txt" || echo "!! loop_efficiency.py failed (above); going on"

echo ">> 3. projected benchmark time on this GPU"
"$PY" tests/benchmarks/benchmark_time.py --config config/benchmark.yaml --device "$DEVICE" --steps "${STEPS:-30}" \
    --out "$OUT/benchmark_time_cuda.csv" 2>&1 | tee "$OUT/benchmark_time_cuda.txt" || echo "!! benchmark_time.py failed"

echo ">> 4. recurrent layers under bf16 autocast, and their FLOPs, on $DEVICE"
"$PY" - "$DEVICE" <<'PY' 2>&1 | tee "$OUT/rnn_precision.txt" || echo "!! the recurrent-layer check failed (above)"
import copy, sys, torch
from torch.utils.flop_counter import FlopCounterMode
from finebench.cost import flops_per_sample
from finebench.models.precision import fp32_recurrent
dev = torch.device(sys.argv[1])
for cls in (torch.nn.LSTM, torch.nn.GRU):
    plain = cls(64, 128, num_layers=2, bidirectional=True, batch_first=True).to(dev)
    x = torch.randn(4, 50, 64, device=dev)
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        try:
            bare = plain(x)[0].dtype
        except RuntimeError as exc:  # CPUs without bf16 units: oneDNN's bf16 LSTM has no kernel
            bare = f"an error ({str(exc)[:60]})"
        wrapped = fp32_recurrent(copy.deepcopy(plain))(x)[0].dtype
    with torch.no_grad(), FlopCounterMode(display=False) as seen:
        plain(x[:1])
    hand = 2 * 50 * sum(p.numel() for n, p in plain.named_parameters() if n.startswith("weight"))  # both directions
    print(f"{cls.__name__}: bf16 autocast output {bare} (expected float16 on cuda), with fp32_recurrent {wrapped}"
          f" (expected float32); FLOPs/sample by shape {flops_per_sample(plain, x):,.0f} (hand {hand:,}), "
          f"FlopCounterMode alone {seen.get_total_flops():,}")
PY
echo ">> done: $OUT"
