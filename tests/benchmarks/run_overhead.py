"""Benchmark: the fixed-cost share of `make run` (start-up, data, model, MLflow — everything but training and
evaluating) with a process per run (seeds_per_job 1) and with the final seeds of a (task, model) sharing one
(seeds_per_job = number of seeds), from the line each training process logs on exit.

    .venv/bin/python tests/benchmarks/run_overhead.py                     # the embedded suite, 1 vs 3 seeds per job
    .venv/bin/python tests/benchmarks/run_overhead.py --per-job 1 2 --cores 2 --config config/smoke.yaml
    .venv/bin/python tests/benchmarks/run_overhead.py --results results   # a finished run's logs only

Each variant runs the whole config in a temporary folder: the datasets first (not timed, not counted), then
Snakemake end to end, timed. Fixed share = Σ fixed seconds / Σ process wall seconds over the training jobs (the
core-time they held). Prints; asserts nothing. About 2 x 16 minutes for the embedded suite on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_overhead import REPO, report  # noqa: E402


def snakemake(work: Path, cores: int, *targets: str) -> None:
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores",
                    str(cores), "--configfile", str(work / "c.yaml"), "--", *targets], check=True, capture_output=True)


def run(config: Path, per_job: int, cores: int) -> None:
    cfg = {**yaml.safe_load(config.read_text()), "results": "results", "seeds_per_job": per_job}
    work = Path(tempfile.mkdtemp(prefix=f"run_overhead_{per_job}_"))
    (work / "c.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(work, cores, *(f"results/data/{task}" for task in cfg["tasks"]))
    t0 = time.perf_counter()
    snakemake(work, cores)
    wall = time.perf_counter() - t0
    report(work / "results", f"{config.name}, seeds_per_job {per_job}: snakemake {wall:.0f} s "
                             f"({wall / 60:.1f} min) on {cores} cores after the data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    p.add_argument("--per-job", type=int, nargs="+", default=None, help="seeds_per_job values (default: 1 and all)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--results", type=Path, help="only report the logs of a finished run's results folder")
    args = p.parse_args()
    if args.results:
        report(args.results, "finished run")
        return
    seeds = yaml.safe_load(args.config.read_text())["seeds"]
    for per_job in args.per_job or (1, len(seeds)):
        run(args.config, per_job, args.cores)


if __name__ == "__main__":
    main()
