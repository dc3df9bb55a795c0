#!/usr/bin/env bash
# The GPU check (issues #10, #33): ONE script of at most ~10 minutes, the first thing to run whenever a GPU is there;
# it ends with one table (section, item, status, seconds, result). From the repo root:
#   bash tests/benchmarks/gpu_check.sh [OUT_DIR]      # OUT_DIR: $OUT if set (the device runner's), else results/gpu_check
#   GPU_CHECK_DEVICE=cpu bash tests/benchmarks/gpu_check.sh /tmp/gc    # rehearsal on the CPU, every section scaled down
# Sections, in order (each with its own time cap inside GPU_CHECK_BUDGET, default 570 s; a section that fails or runs
# out of time is a row of the table and the next one still runs):
#   rnn dtype   an LSTM's/GRU's output dtype under bf16 autocast with and without fp32_recurrent (cuDNN's autocast
#               casts to fp16 whatever dtype was asked: expected float16 bare, float32 wrapped), FLOPs by shape
#   sync        torch.cuda.set_sync_debug_mode("warn") over 20 batches of each loader (classification images, log-mels,
#               tokens; ASRLoader; SRLoader) and over the trainer's loop: synchronizing calls counted, with their line
#   smoke       the smoke suite on cuda (config/smoke.yaml, every modality and family, bf16), timed: through Snakemake
#               where the finebench environment is (.venv), else each training job directly (smoke_jobs.py, 4 at once)
#   asr steps   200 timed training steps of ds2, quartznet and conformer (benchmark.yaml's librispeech100, its batch
#               size) on synthetic LibriSpeech-like batches
#   projection  benchmark_time.py: all of `make benchmark` (126 runs) projected from 5 measured steps per pair,
#               the hf: and speech-recognition pairs first; it gets the budget the sections before it left
#   loop        loop_efficiency.py, benchmark.yaml's vision models at 224 px: trainer vs model-only samples/s, by
#               default (channels_last auto), with channels_last off, and compiled
# On the CPU (GPU_CHECK_DEVICE=cpu) every section runs, scaled to fit 10 minutes on 2 cores, and says so in its row:
# smoke as jobs directly (one seed, 2 at once); asr steps 3 at batch 4 on utterances a tenth as long; loop efficiency
# on smoke.yaml's typefaces; the projection on 3 pairs; the sync and dtype checks read "n/a on cpu" / "cpu equivalent".
# Outputs: the table on stdout and in OUT_DIR/gpu_check_table.md; every section's log and CSV in
# OUT_DIR/gpu_check_logs.tar.gz (three files in all: the device runner brings back at most 8).
#
# Python: .venv (after `make setup`) when there is one; else a `python3` that has torch (an offline GPU box such as
# this workplace's device machine), with finebench from src/ and the missing packages from .whl/ — prepare both with
# `bash tests/benchmarks/device_prepare.sh` on a machine with the package registries, then carry .whl and .gpu-data.
set -uo pipefail  # no -e: a failing section is a row of the table, not the end of the check
cd "$(dirname "$0")/../.."
T0=$SECONDS
OUT_DIR=${1:-${OUT:-results/gpu_check}}
mkdir -p "$OUT_DIR"
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
export PY PYTHONUNBUFFERED=1 MLFLOW_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export DEVICE=${GPU_CHECK_DEVICE:-cuda}
BUDGET=${GPU_CHECK_BUDGET:-570}
export WORK=${GPU_CHECK_WORK:-/tmp/finebench-gpu-check}
export LOGS=$WORK/logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
export ROWS=$LOGS/rows.tsv
: > "$ROWS"
export GS="tests/benchmarks/gpu_sections.py"
row() { "$PY" "$GS" row --rows "$ROWS" -- "$@" > /dev/null; }

if [ "$DEVICE" = cuda ]; then
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)
  env=$("$PY" -c "import sys, torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'
print('Python', sys.version.split()[0], 'torch', torch.__version__, 'CUDA', torch.version.cuda)" 2>&1 | tail -1)
else
  gpu="none: rehearsal on the CPU ($(nproc) cores)"
  env=$("$PY" -c "import sys, torch; print('Python', sys.version.split()[0], 'torch', torch.__version__)" 2>&1 | tail -1)
fi
case $env in Python*) env_status=ok ;; *) env_status=FAILED ;; esac
row environment device "$env_status" "" "$gpu; $env"
echo ">> device: $gpu; $env"

# run_section NAME CAP FUNCTION: the function (below) with its output in $LOGS/NAME.log, stopped after CAP seconds or
# what is left of the budget; one row for the section (status, seconds, its log's last line when it failed) besides
# the rows its commands add.
run_section() {
  local name=$1 cap=$2 fn=$3
  local left=$(( BUDGET - (SECONDS - T0) ))
  local limit=$(( cap < left ? cap : left ))
  if [ "$limit" -lt 20 ]; then
    row "$name" "(section)" SKIPPED 0 "no time left in the ${BUDGET} s budget"
    echo ">> $name: skipped (no time left)"
    return
  fi
  echo ">> $name (at most ${limit} s) ..."
  local start=$SECONDS log="${name// /_}.log"
  SECTION_LIMIT=$limit timeout -k 10 "$limit" bash -c "$fn" > "$LOGS/$log" 2>&1
  local rc=$? secs=$(( SECONDS - start )) status=ok result="log $log"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status=TIMEOUT result="stopped at its ${limit} s cap; log $log"
  elif [ $rc -ne 0 ]; then
    status=FAILED result="exit $rc: $(grep -v '^\s*$' "$LOGS/$log" | tail -1 | cut -c1-200); log $log"
  fi
  row "$name" "(section)" "$status" "$secs" "$result"
  grep "^\[" "$LOGS/$log" | cut -c1-220
  echo "   $name: $status in ${secs} s"
}

sec_rnn() {
  "$PY" "$GS" rnn-dtype --device "$DEVICE" --rows "$ROWS"
}

sec_sync() {
  "$PY" "$GS" sync --device "$DEVICE" --steps 20 --work "$WORK/sync" --rows "$ROWS"
}

sec_smoke() {
  local data=.gpu-data
  if [ "$DEVICE" = cuda ] && [ -z "${GPU_CHECK_NO_SNAKEMAKE:-}" ] && "$PY" -c "import snakemake" 2>/dev/null; then
    local w=$WORK/smoke-snakemake
    rm -rf "$w" && mkdir -p "$w"
    sed "s/^device: auto/device: $DEVICE/" config/smoke.yaml > "$w/smoke_cuda.yaml"
    timeout -k 5 $(( SECTION_LIMIT - SECONDS - 20 )) \
        "$PY" -m snakemake -s Snakefile --directory "$w" --cores 4 --configfile "$w/smoke_cuda.yaml"
    local rc=$?  # 124: stopped before the end; the rows below count the runs that finished
    cp "$w/results/tables/leaderboard.md" "$LOGS/smoke_leaderboard.md" 2>/dev/null
    "$PY" "$GS" smoke-rows "$w/results/runs" --device "$DEVICE" --rows "$ROWS" \
        --note "Snakemake end to end, 2 seeds, --cores 4 (snakemake exit $rc)"
    return $rc
  fi
  local note="one seed, each training job directly (smoke_jobs.py), 4 at once"
  if [ "$DEVICE" = cpu ]; then
    note="CPU rehearsal: one seed, each training job directly (smoke_jobs.py), 2 at once"
  fi
  if [ ! -d "$data" ]; then  # no carried data: prepare it (needs the Debian fonts, WordNet and espeak-ng)
    data=$WORK/smoke-data
    "$PY" tests/benchmarks/smoke_jobs.py --prepare-only --data "$data" || return 1
  fi
  "$PY" tests/benchmarks/smoke_jobs.py --device "$DEVICE" --data "$data" --jobs "$([ "$DEVICE" = cpu ] && echo 2 || echo 4)" \
      --work "$WORK/smoke-jobs" --out "$LOGS/smoke_jobs.csv" --time-limit $(( SECTION_LIMIT - SECONDS - 20 ))
  "$PY" "$GS" smoke-rows "$LOGS/smoke_jobs.csv" --log "$LOGS/smoke.log" --device "$DEVICE" --rows "$ROWS" --note "$note"
}

sec_asr() {
  if [ "$DEVICE" = cpu ]; then
    "$PY" "$GS" asr-steps --device cpu --steps 3 --warmup 1 --batch-size 4 --duration-scale 0.1 --threads 2 \
        --work "$WORK/asr" --rows "$ROWS" --time-limit $(( SECTION_LIMIT - 25 ))
  else
    "$PY" "$GS" asr-steps --device cuda --steps 200 --work "$WORK/asr" --rows "$ROWS" --time-limit $(( SECTION_LIMIT - 25 ))
  fi
}

sec_projection() {
  local start=$SECONDS rc
  if [ "$DEVICE" = cpu ]; then
    "$PY" tests/benchmarks/benchmark_time.py --config config/benchmark.yaml --device cpu --threads 2 --steps 1 \
        --eval-batch-size 4 --tasks trec50 speech_commands --models distilbert textcnn bigru \
        --time-limit $(( SECTION_LIMIT - 30 )) --work "$WORK/projection" --out "$LOGS/benchmark_time.csv"
    rc=$?
    "$PY" "$GS" projection-rows "$LOGS/benchmark_time.csv" --log "$LOGS/projection.log" --seconds $(( SECONDS - start )) \
        --rows "$ROWS" --note "CPU rehearsal: 3 pairs (trec50 distilbert and textcnn, speech_commands bigru), 1 step, evaluation batches of 4"
  else
    "$PY" tests/benchmarks/benchmark_time.py --config config/benchmark.yaml --device cuda --steps "${GPU_CHECK_STEPS:-5}" \
        --time-limit $(( SECTION_LIMIT - 20 )) --work "$WORK/projection" --out "$LOGS/benchmark_time.csv"
    rc=$?
    "$PY" "$GS" projection-rows "$LOGS/benchmark_time.csv" --log "$LOGS/projection.log" --seconds $(( SECONDS - start )) \
        --rows "$ROWS" --note "${GPU_CHECK_STEPS:-5} steps per pair"
  fi
  return $rc
}

sec_loop() {
  local rc=0 args tag setting
  if [ "$DEVICE" = cpu ]; then
    local data=.gpu-data
    [ -d "$data" ] || data=$WORK/smoke-data
    args=(--config config/smoke.yaml --tasks typefaces --device cpu --steps 3 --prepared "$data")
    local note="CPU rehearsal: smoke.yaml's typefaces, 3 steps"
    for setting in "small_cnn vit|default" "small_cnn|channels_last=true" "small_cnn|compile=true"; do
      tag=${setting#*|}
      "$PY" tests/benchmarks/loop_efficiency.py "${args[@]}" --models ${setting%|*} --work "$WORK/loop" \
          $([ "$tag" = default ] || echo "--training $tag") --out "$LOGS/loop_$tag.csv" || rc=1
      "$PY" "$GS" loop-rows "$LOGS/loop_$tag.csv" --setting "$tag" --log "$LOGS/loop.log" --rows "$ROWS" --note "$note"
    done
    return $rc
  fi
  args=(--config config/benchmark.yaml --modality vision --tasks cub200 --device cuda --steps 20)
  for setting in "resnet50 vit_small|default" "resnet50|channels_last=false" "resnet50 vit_small|compile=true"; do
    tag=${setting#*|}
    "$PY" tests/benchmarks/loop_efficiency.py "${args[@]}" --models ${setting%|*} --work "$WORK/loop" \
        $([ "$tag" = default ] || echo "--training $tag") --out "$LOGS/loop_$tag.csv" || rc=1
    "$PY" "$GS" loop-rows "$LOGS/loop_$tag.csv" --setting "$tag" --log "$LOGS/loop.log" --rows "$ROWS"
  done
  return $rc
}

export -f sec_rnn sec_sync sec_smoke sec_asr sec_projection sec_loop

if [ "$DEVICE" = cpu ]; then
  run_section "rnn dtype" 40 sec_rnn
  run_section sync 60 sec_sync
  run_section smoke 170 sec_smoke
  run_section "asr steps" 60 sec_asr
  run_section projection 170 sec_projection
  run_section loop 150 sec_loop
else
  run_section "rnn dtype" 40 sec_rnn
  run_section sync 60 sec_sync
  run_section smoke 130 sec_smoke
  run_section "asr steps" 120 sec_asr
  run_section projection 260 sec_projection
  run_section loop 150 sec_loop
fi

echo
echo "GPU check on $DEVICE: $(( SECONDS - T0 )) s (budget ${BUDGET} s)"
"$PY" "$GS" table "$ROWS" --md "$OUT_DIR/gpu_check_table.md" || column -t -s $'\t' "$ROWS"
tar -czf "$OUT_DIR/gpu_check_logs.tar.gz" -C "$WORK" logs 2>/dev/null
echo ">> table: $OUT_DIR/gpu_check_table.md; logs and CSVs: $OUT_DIR/gpu_check_logs.tar.gz ($LOGS)"
