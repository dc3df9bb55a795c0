"""Benchmark: what finebench costs before any training — a no-op Snakemake run and a training job's fixed cost.

    .venv/bin/python tests/benchmarks/startup.py                 # after `make run`: the no-op is a real no-op
    .venv/bin/python tests/benchmarks/startup.py --workdir /tmp/x  # elsewhere: a dry run of the whole DAG

1. **no-op**: ``snakemake --cores 2 --configfile config/config.yaml`` in ``--workdir`` (a dry run ``-n`` when the
   folder holds no finished run), three times; prints wall time and peak memory (max RSS of the process tree) of
   each — the first may pay the cached config check (torch + timm imports), the others must not (target: ≤ 2 s,
   ≤ 300 MB).
2. **per-job fixed cost**: ``python -m finebench train`` — exactly what the Snakemake rule runs — for one
   architecture of each kind (a built-in CNN, a built-in RNN, a timm model) on a tiny prepared task with one epoch of
   one batch: wall time minus the epoch's measured seconds = start-up (imports, MLflow run, set-up) + test
   evaluation + cost measurement + artifacts (target: ≤ 3 s); median of ``--reps`` runs. Measures and prints;
   asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def timed(cmd, **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS MB of the child tree, process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # a running max over all children so far
    return wall, (peak if peak > before else float("nan")) / 1024, proc


def noop(workdir: Path) -> None:
    finished = (workdir / "results" / "tables" / "leaderboard.csv").is_file()
    cmd = [PY, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
           "--configfile", str(REPO / "config" / "config.yaml"), *([] if finished else ["-n"])]
    print(f"no-op snakemake in {workdir} ({'finished run' if finished else 'dry run: nothing there yet'})")
    for i in range(3):
        # each measurement in its own short-lived parent, so the peak RSS is this run's alone
        out = subprocess.run([PY, __file__, "--_one", json.dumps(cmd)], capture_output=True, text=True)
        print(f"  run {i + 1}: {out.stdout.strip()}")


def one(cmd: list[str]) -> None:
    wall, peak, proc = timed(cmd)
    nothing = "Nothing to be done" in proc.stdout + proc.stderr
    print(f"{wall:.2f} s, peak {peak:.0f} MB, exit {proc.returncode}{', nothing to be done' if nothing else ''}")


def job_costs(tmp: Path, reps: int = 3) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from finebench import config as fbconfig
    from finebench.data import DATASETS, prepare_task

    data = tmp / "data"
    opts = {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"], "styles_per_family": 2,
            "vocabulary": 200, "train_per_class": 16, "val_per_class": 8, "test_per_class": 16}
    prepare_task("tf", "typefaces", opts, data)
    exp = tmp / "experiment.json"
    subprocess.run([PY, "-m", "finebench", "init-tracking", "--tracking-uri", f"sqlite:///{tmp}/mlflow.db",
                    "--experiment", "startup", "--artifact-root", str(tmp / "art"), "--out", str(exp)],
                   check=True, capture_output=True)
    models = {
        "small_cnn": {"family": "cnn", "modality": "vision", "arch": "small_cnn", "channels": [16, 32]},
        "crnn": {"family": "rnn", "modality": "vision", "arch": "crnn", "stem": [16], "hidden": 32},
        "timm_resnet18": {"family": "cnn", "modality": "vision", "arch": "timm:resnet18"},
    }
    cfg = fbconfig.with_defaults({"experiment": "startup", "seeds": [0], "tasks": {"tf": {"dataset": "typefaces"}},
                                  "training": {"epochs": 1, "batch_size": 16, "max_train_batches": 1},
                                  "models": models})
    print(f"per-job fixed cost (python -m finebench train, 1 epoch of 1 batch; median of {reps} runs, "
          f"min in brackets):")
    for name in models:
        spec = fbconfig.resolve_spec(cfg, "tf", name, 0)
        fixed, walls = [], []
        for i in range(reps):
            out = tmp / "runs" / name / str(i)
            cmd = [PY, "-m", "finebench", "train", "--spec", json.dumps(spec), "--data", str(data), "--experiment-file",
                   str(exp), "--out", str(out), "--device", "cpu", "--no-progress"]
            wall, _, proc = timed(cmd)
            if proc.returncode:
                print(proc.stderr[-2000:])
                break
            epoch = sum(float(line.split(",")[-1]) for line in (out / "history.csv").read_text().splitlines()[1:])
            walls.append(wall)
            fixed.append(wall - epoch)
        else:
            m = json.loads((out / "metrics.json").read_text())
            print(f"  {name:14s} wall {statistics.median(walls):5.2f} s  -> fixed {statistics.median(fixed):5.2f} s "
                  f"[{min(fixed):5.2f}]  ({m['n_params']:,} params)")
            print("      imports: " + import_breakdown(cmd[:1] + ["-X", "importtime"] + cmd[1:],
                                                       out.parent / "imports"))


def import_breakdown(cmd: list[str], out: Path) -> str:
    """Seconds of the job spent importing, by top-level package (``python -X importtime``; its own overhead inflates
    the figures by ~10 %). torch._dynamo is counted apart from torch: torch.optim's ``step`` imports it."""
    cmd = [*cmd[: cmd.index("--out") + 1], str(out), *cmd[cmd.index("--out") + 2 :]]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith("  ") or not cumulative.strip().isdigit():  # nested: already in its parent's figure
            continue
        name = name.strip()
        group = "torch._dynamo" if name.startswith("torch._dynamo") else name.split(".")[0]
        seconds[group] = seconds.get(group, 0.0) + int(cumulative) / 1e6
    top = sorted(seconds.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v:.2f}" for k, v in top[:6])
    return f"{sum(seconds.values()):.2f} s in all ({shown}, other {sum(v for _, v in top[6:]):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=".", help="where to time the no-op (default: here)")
    ap.add_argument("--skip-jobs", action="store_true")
    ap.add_argument("--reps", type=int, default=3, help="runs of each job (the machine's noise is ~±1 s)")
    ap.add_argument("--_one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._one:
        one(json.loads(args._one))
        return 0
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    noop(Path(args.workdir).resolve())
    if not args.skip_jobs:
        with tempfile.TemporaryDirectory() as tmp:
            job_costs(Path(tmp), args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
