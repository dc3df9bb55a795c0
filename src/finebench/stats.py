"""Statistics shared by every task type's tables (finebench.report, finebench.tasks), and their number formats.

Over seeds only (what metrics.json alone allows):

- :func:`ci95`: mean ± 95 % confidence half-width from Student's t over the seeds (none for a single seed);
- :func:`welch_p`: a two-sided Welch t-test of the seed scores against the best model's.

Over seeds *and* the test sample (Bouthillier et al. 2021, "Accounting for Variance in Machine Learning
Benchmarks"), from each run's per-example test scores (a ``[seeds, examples]`` array per (task, model) whose row means
are the runs' metric: classification's 0/1 ``correct``, super-resolution's per-image PSNR):

- :func:`bootstrap_ci`: a two-level percentile bootstrap. Each of :data:`BOOT_REPLICATES` replicates draws the
  seeds with replacement and the test examples with replacement — one example resample shared by every seed (they
  are scored on the same test set) — and takes the mean over the drawn seeds of each drawn seed's mean over the
  drawn examples. The interval is the 2.5th and 97.5th percentiles of the replicates (numpy's linear
  interpolation); its half-width (hi − lo) / 2 is the ± the tables show.
- :func:`paired_bootstrap_p`: the same replicates for two models of a task, the example resample shared by both
  (paired: the same test examples), each model's seeds drawn on their own; the difference of the two seed-averaged
  means per replicate; two-sided p = 2 · min(P(diff ≤ 0), P(diff ≥ 0)), at most 1 and at least 1 / (B + 1).

Both draw afresh on every call — the example resamples from ``numpy.random.default_rng(BOOT_SEED)``, the k-th
model's seed resamples from ``default_rng([BOOT_SEED, k + 1])`` (:func:`replicates`) —, so a table is the same on
every rebuild and a model's interval does not depend on the other models. Ties: p >= ALPHA.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05
BOOT_REPLICATES = 1000  # B: bootstrap replicates (tests/benchmarks/bootstrap_cost.py measures the time)
BOOT_SEED = 0  # numpy.random.default_rng(BOOT_SEED) for every bootstrap
BOOT_CHUNK = 50  # replicates whose example indices are drawn at once (memory: BOOT_CHUNK x examples x seeds floats)


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95 % t-interval of the mean; NaN for fewer than 2 values."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; NaN when either side has < 2 seeds. Identical constant samples -> 1."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if np.std(a) == 0 and np.std(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _matrix(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[None]
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 1:
        raise ValueError(f"per-example scores must be [seeds, examples] with at least one of each, not {s.shape}")
    return s


def replicates(models, n_replicates: int = BOOT_REPLICATES, seed: int = BOOT_SEED) -> np.ndarray:
    """``[len(models), B]``: for each model's ``[seeds, examples]`` scores (all on the same examples), the
    seed-averaged mean of every bootstrap replicate. The example resamples come from ``default_rng(seed)``,
    BOOT_CHUNK replicates at a time, each applied to every seed of every model: they depend on the number of
    examples alone, so every model of a task is resampled on the same draws. The k-th model's seed resamples
    (``[B, seeds]``) come from ``default_rng([seed, k + 1])``: each model's seeds are drawn on their own."""
    mats = [_matrix(m) for m in models]
    n = mats[0].shape[1]
    if any(m.shape[1] != n for m in mats):
        raise ValueError(f"per-example scores on different test sets: {[m.shape[1] for m in mats]} examples")
    rng = np.random.default_rng(seed)
    seed_draws = [np.random.default_rng([seed, k + 1]).integers(0, m.shape[0], size=(n_replicates, m.shape[0]))
                  for k, m in enumerate(mats)]
    out = np.empty((len(mats), n_replicates))
    for start in range(0, n_replicates, BOOT_CHUNK):
        stop = min(start + BOOT_CHUNK, n_replicates)
        idx = rng.integers(0, n, size=(stop - start, n))  # one example resample per replicate, shared by all
        for k, (m, draws) in enumerate(zip(mats, seed_draws)):
            per_seed = m[:, idx].mean(axis=2).T  # [replicates, seeds]: each seed's mean over the drawn examples
            out[k, start:stop] = np.take_along_axis(per_seed, draws[start:stop], axis=1).mean(axis=1)
    return out


def bootstrap_ci(scores, n_replicates: int = BOOT_REPLICATES, seed: int = BOOT_SEED) -> tuple[float, float]:
    """(lo, hi): the 95 % two-level percentile bootstrap interval over seeds and test examples (module docstring) of
    the seed-averaged mean of ``scores`` ``[seeds, examples]``."""
    lo, hi = np.percentile(replicates([scores], n_replicates, seed)[0], [2.5, 97.5])
    return float(lo), float(hi)


def paired_bootstrap_p(a, b, n_replicates: int = BOOT_REPLICATES, seed: int = BOOT_SEED) -> float:
    """Two-sided paired bootstrap p-value of the difference of two models' seed-averaged means on the same test
    examples (``a``, ``b``: ``[seeds, examples]``, the examples in the same order): 2 · min(P(diff ≤ 0),
    P(diff ≥ 0)) over the replicates, at most 1, at least 1 / (B + 1)."""
    ra, rb = replicates([a, b], n_replicates, seed)
    diff = ra - rb
    p = 2 * min(np.mean(diff <= 0), np.mean(diff >= 0))
    return float(min(1.0, max(p, 1.0 / (n_replicates + 1))))


def human(n: float) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def num(x: float, fmt: str) -> str:
    return "—" if x is None or math.isnan(x) else format(x, fmt)
