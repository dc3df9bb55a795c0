"""Benchmark: what the bootstrap CI and the paired bootstrap test (finebench.stats) cost per (task, model).

    .venv/bin/python tests/benchmarks/bootstrap_cost.py                     # 10k examples x 3 seeds, B = 1000
    .venv/bin/python tests/benchmarks/bootstrap_cost.py --examples 100 --seeds 5

Random 0/1 scores (the classification case; the cost does not depend on the values). Prints the median wall time
of ``bootstrap_ci`` (one model) and ``paired_bootstrap_p`` (two models) over a few repeats; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finebench import stats


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=10_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--replicates", type=int, default=stats.BOOT_REPLICATES)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    rng = np.random.default_rng(1)
    x = (rng.random((a.seeds, a.examples)) < 0.6).astype(float)
    y = (rng.random((a.seeds, a.examples)) < 0.58).astype(float)
    ci = timed(lambda: stats.bootstrap_ci(x, a.replicates), a.repeats)
    paired = timed(lambda: stats.paired_bootstrap_p(x, y, a.replicates), a.repeats)
    print(f"{a.examples} examples x {a.seeds} seeds, B = {a.replicates} (median of {a.repeats}):")
    print(f"  bootstrap_ci        {ci:.3f} s per model")
    print(f"  paired_bootstrap_p  {paired:.3f} s per model compared with the task's best")
    print(f"  a task of m models: ~{ci:.2f} m + {paired:.2f} (m - 1) s")


if __name__ == "__main__":
    main()
