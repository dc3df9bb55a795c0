"""Benchmark: what the interval over seeds and test examples and the paired test (finebench.stats) cost per
(task, model).

    .venv/bin/python tests/benchmarks/stats_cost.py                     # 10k examples x 3 seeds
    .venv/bin/python tests/benchmarks/stats_cost.py --examples 100 --seeds 5

Random 0/1 scores (the classification case; the cost does not depend on the values). Prints the median wall time
of ``ci95_combined`` (one model) and ``paired_p`` (two models) over a few repeats; asserts nothing. Both are
closed forms (no resampling): linear in examples x seeds.
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
    p.add_argument("--repeats", type=int, default=20)
    a = p.parse_args()
    rng = np.random.default_rng(1)
    x = (rng.random((a.seeds, a.examples)) < 0.6).astype(float)
    y = (rng.random((a.seeds, a.examples)) < 0.58).astype(float)
    stats.paired_p(x, y)  # scipy's imports outside the timing
    ci = timed(lambda: stats.ci95_combined(x), a.repeats)
    paired = timed(lambda: stats.paired_p(x, y), a.repeats)
    print(f"{a.examples} examples x {a.seeds} seeds (median of {a.repeats}):")
    print(f"  ci95_combined  {1000 * ci:.2f} ms per model")
    print(f"  paired_p       {1000 * paired:.2f} ms per model compared with the task's best")


if __name__ == "__main__":
    main()
