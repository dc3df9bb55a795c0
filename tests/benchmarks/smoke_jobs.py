"""Benchmark / device check: every training job of a config (one seed), run directly — no Snakemake — on a device.

    python tests/benchmarks/smoke_jobs.py --device cuda --data .gpu-data --out results/gpu_check/smoke_jobs.csv
    python tests/benchmarks/smoke_jobs.py --prepare-only --data .gpu-data        # here: prepare the tasks' data
    ... --jobs 4                                                                  # 4 jobs at once

What `make smoke` checks, for a machine that has torch (and the wheels gpu_check.sh installs) but not the whole
finebench environment — the offline GPU box, without the Debian fonts, WordNet and espeak-ng that *preparing* the
embedded datasets needs: the data are prepared elsewhere (``--prepare-only``) and carried along. For each
(task, model) of ``--config`` (default: config/smoke.yaml) it runs ``python -m finebench train`` — the command the
Snakemake rule runs — and prints the device it ran on, the test metric, training samples/s and peak memory.
Exit status 1 if any job failed or ran on another device than asked for.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from finebench import config as fbconfig
from finebench import data as fbdata

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_time import JobFailed, run_job  # noqa: E402  (a sibling script)


def prepare(cfg: dict, data: Path) -> None:
    for task in cfg["tasks"]:
        if (data / task / "manifest.json").is_file():
            continue
        print(f"preparing {task} into {data / task} ...", flush=True)
        fbdata.prepare_task(task, cfg["tasks"][task]["dataset"], fbconfig.task_options(cfg, task), data / task)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/smoke.yaml")
    ap.add_argument("--data", default=".gpu-data", help="prepared tasks: DATA/<task>/manifest.json")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--prepare-only", action="store_true", help="prepare the config's tasks into --data and stop")
    ap.add_argument("--work", help="runs and the MLflow store (default: a temporary folder)")
    ap.add_argument("--out", help="also write the table as CSV here")
    ap.add_argument("--jobs", type=int, default=1, help="jobs at once (each job's wall time is then shared)")
    ap.add_argument("--time-limit", type=float, help="seconds: start no job after this, stop a running one at it")
    args = ap.parse_args()
    cfg = fbconfig.with_defaults(fbconfig.load(args.config))
    data = Path(args.data)
    if args.prepare_only:
        prepare(cfg, data)
        return 0
    t0 = time.perf_counter()
    work = Path(args.work or tempfile.mkdtemp(prefix="finebench-smoke-jobs-"))
    exp_file = work / "experiment.json"
    from finebench.tracking import init_experiment

    init_experiment(f"sqlite:///{work}/mlflow.db", "smoke-jobs", work / "mlartifacts", exp_file)
    rows, problems, jobs = [], [], []
    for task in cfg["tasks"]:
        if not (data / task / "manifest.json").is_file():
            problems.append(f"{task}: no prepared data in {data / task} (run with --prepare-only where it can be made)")
            continue
        jobs += [(task, model) for model in fbconfig.task_models(cfg, task)]

    def run(job):
        task, model = job
        spec = fbconfig.resolve_spec(cfg, task, model, 0)
        out = work / "runs" / task / model
        elapsed = time.perf_counter() - t0
        if args.time_limit and elapsed >= args.time_limit:
            raise JobFailed(f"not started: --time-limit {args.time_limit:.0f} s reached")
        timeout = args.time_limit - elapsed if args.time_limit else None
        return run_job(spec, data / task, exp_file, out, args.device, cfg["threads"], timeout), out

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # each job is its own process; the threads only wait
        futures = [pool.submit(run, job) for job in jobs]
        for (task, model), future in zip(jobs, futures):
            try:
                wall, out = future.result()
            except JobFailed as exc:
                problems.append(f"{task}/{model}: {exc}")
                print(f"{task:10s} {model:14s} FAILED: {exc}", flush=True)
                continue
            m = json.loads((out / "metrics.json").read_text())
            metric = next(k for k in ("test_psnr", "test_wer", "test_accuracy") if k in m)
            rows.append({"task": task, "model": model, "family": m["family"], "device": m["device"],
                         "metric": metric, "value": round(m[metric], 4), "epochs": m["epochs"],
                         "train_samples_per_s": round(m["train_samples_per_s"], 1),
                         "peak_memory_mb": round(m["peak_memory_mb"], 1), "wall_s": round(wall, 1)})
            if m["device"] != args.device:
                problems.append(f"{task}/{model}: ran on {m['device']}, not {args.device}")
            r = rows[-1]
            print(f"{task:10s} {model:14s} {r['device']:5s} {metric} {r['value']:.4f}  "
                  f"train {r['train_samples_per_s']:9.1f}/s  peak {r['peak_memory_mb']:8.1f} MB  {wall:5.1f} s",
                  flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False) if len(table) else "no job finished")
    if args.out and len(table):
        table.to_csv(args.out, index=False)
    if problems:
        print(f"\n{len(problems)} problem(s):\n  " + "\n  ".join(problems))
    print(f"\n{len(rows)} job(s) finished on {args.device} in {time.perf_counter() - t0:.0f} s; runs in {work}")
    return 1 if problems or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
