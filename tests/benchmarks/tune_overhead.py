"""Benchmark: the share of fixed cost (start-up, data, model, MLflow — everything but training and evaluating) in
the training jobs of a tuning workflow, from the line each `train` / `train-trials` process logs on exit.

    .venv/bin/python tests/benchmarks/tune_overhead.py results/tuned            # a finished `make tune`
    .venv/bin/python tests/benchmarks/tune_overhead.py --compare                # runs_per_job 1 vs 4, one task
    .venv/bin/python tests/benchmarks/tune_overhead.py --compare --task typefaces --budget 4 --cores 2

Fixed share = Σ fixed seconds / Σ process wall seconds over the jobs (the core-time the jobs held: on 2 cores two
jobs run at once, each on its own). ``--compare`` tunes one task of the embedded suite twice in temporary
folders — every trial its own process (runs_per_job 1), then all of a model's trials in one (runs_per_job =
budget) — and prints both, with the snakemake wall time; it stops after the selection (no final runs). Prints;
asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

LINE = re.compile(r"\[finebench\] process: (\d+) run\(s\), ([\d.]+) s wall, ([\d.]+) s training and evaluating, "
                  r"([\d.]+) s")
REPO = Path(__file__).resolve().parents[2]


def shares(results: Path) -> dict:
    """{"tune"/"train": (processes, runs, wall, work, fixed)} from the logs of a results folder."""
    out = {}
    for kind in ("tune", "train"):
        procs = runs = wall = work = fixed = 0.0
        for log in sorted((results / "logs" / kind).rglob("*.log")):
            hits = LINE.findall(log.read_text(errors="replace"))
            if hits:  # the last process of the job (a rerun appends nothing: snakemake rewrites the log)
                n, w, t, f = hits[-1]
                procs, runs, wall, work, fixed = (procs + 1, runs + int(n), wall + float(w), work + float(t),
                                                  fixed + float(f))
        out[kind] = (int(procs), int(runs), wall, work, fixed)
    return out


def report(results: Path, title: str) -> None:
    print(f"{title} ({results})")
    total_wall = total_fixed = 0.0
    for kind, (procs, runs, wall, work, fixed) in shares(results).items():
        if not procs:
            continue
        total_wall, total_fixed = total_wall + wall, total_fixed + fixed
        print(f"  {kind:5s}: {procs:3d} processes, {runs:3d} runs, {wall:8.1f} s held, {work:8.1f} s training and "
              f"evaluating, {fixed:7.1f} s fixed = {100 * fixed / wall:5.1f} %  ({fixed / max(runs, 1):.1f} s per run)")
    if total_wall:
        print(f"  all  : fixed share {100 * total_fixed / total_wall:.1f} % of {total_wall:.0f} s of job time")
    got = shares(results)
    (tp, tr, _tw, tt, _tf), (fp, _fr, fw, _ft, ff) = got["tune"], got["train"]
    if tp and fp:  # before runs_per_job: every trial a process of its own, paying what a final run's process pays
        per_process = ff / fp
        before = ff + tr * per_process
        print(f"  before (estimate: each of the {tr} trials its own process at the final runs' {per_process:.1f} s of "
              f"fixed cost): fixed share {100 * before / (tt + fw + before - ff + 0.0):.1f} %")


def compare(task: str, budget: int, cores: int) -> None:
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    base["tasks"] = {task: base["tasks"][task]}
    for runs_per_job in (1, budget):
        cfg = {**base, "tuning": {"budget": budget, "runs_per_job": runs_per_job}}
        work = Path(tempfile.mkdtemp(prefix=f"tune_overhead_{runs_per_job}_"))
        (work / "c.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        from finebench import config as fbconfig

        models = fbconfig.task_models(fbconfig.with_defaults(cfg), task)
        targets = [f"results/tune/{task}/{m}/selected.json" for m in models]
        # the data first, so that its preparation is not counted as either variant's fixed cost
        subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
                        "--cores", str(cores), "--configfile", str(work / "c.yaml"), "--", f"results/data/{task}"],
                       check=True, capture_output=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
                        "--cores", str(cores), "--configfile", str(work / "c.yaml"), "--", *targets],
                       check=True, capture_output=True)
        wall = time.perf_counter() - t0
        report(work / "results", f"{task}, {len(models)} models x {budget} trials, runs_per_job {runs_per_job}: "
                                 f"snakemake {wall:.0f} s on {cores} cores")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="?", type=Path, help="a results folder of a finished tuning workflow")
    p.add_argument("--compare", action="store_true")
    p.add_argument("--task", default="wordnet")
    p.add_argument("--budget", type=int, default=4)
    p.add_argument("--cores", type=int, default=2)
    args = p.parse_args()
    if args.results:
        report(args.results, "make tune")
    if args.compare:
        compare(args.task, args.budget, args.cores)
    if not args.results and not args.compare:
        p.error("give a results folder, --compare, or both")


if __name__ == "__main__":
    main()
