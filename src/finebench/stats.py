"""Statistics shared by every task type's tables (finebench.report, finebench.tasks), and their number formats.

Over seeds only (what metrics.json alone allows):

- :func:`ci95`: mean ± 95 % confidence half-width from Student's t over the seeds (none for a single seed);
- :func:`welch_p`: a two-sided Welch t-test of the seed scores against the best model's.

Over seeds *and* the test sample (Bouthillier et al. 2021, "Accounting for Variance in Machine Learning
Benchmarks"), from each run's per-example test scores: a ``[seeds, examples]`` array ``x`` per (task, model) whose
row means are the runs' metric (classification's 0/1 ``correct``, super-resolution's per-image PSNR). The
seed-averaged score x̄ = mean over the k seeds of each seed's mean over the n test examples varies with the seeds
and with the test sample; every seed is scored on the same test examples, so the test sample's noise is shared by
the seeds and does not average out over them:

    Var(x̄) ≈ s_seed² / k + V_test,   V_test = s_ex² / n

with s_seed the sample std (ddof = 1) of the k runs' scores and s_ex the sample std (ddof = 1), over the n test
examples, of each example's score averaged over the seeds (x.mean(axis=0)). V_test is the bootstrap variance of x̄
over resamples of the test examples with one resample shared by every seed, computed exactly instead of by Monte
Carlo — x̄ is a mean over the examples, so the ideal bootstrap's variance is the ddof = 0 variance over n — and
with the n / (n − 1) correction, which matters on the few-image test sets of super-resolution (Set5: 5 images).

- :func:`ci95_test`: the test sample's half-width t₀.₉₇₅,ₙ₋₁ · s_ex / √n (:func:`ci95` of the per-example means);
- :func:`combine_ci95`: the combined half-width sqrt(seeds² + test²) — each term a Student-t half-width with its own
  degrees of freedom (k − 1 and n − 1), added in quadrature: never narrower than either term, so never narrower
  than the seed-only interval. With one seed only the test term exists (the seeds' spread is unknown, not zero).
  Seed × example interaction (seeds disagreeing on single examples) enters both terms: the sum over-counts it by
  at most s_ex² / n, so the interval errs wide, by at most √2 when all the variation is such disagreement.
- :func:`paired_p`: the two-sided test behind ≈, of the difference d of two models' seed-averaged scores on the same
  test examples, by the same combination: the seed term Welch's (s_a² / k_a + s_b² / k_b, Welch–Satterthwaite
  degrees of freedom; a model with one seed adds none), the test term the paired per-example differences of the
  seed-averaged scores (their s² / n, n − 1 df); p is the α at which the combined (1 − α) half-width of d reaches
  |d| — Welch's p when the test term is 0, the paired t-test's when the seed term is.

No random numbers: a table is the same on every rebuild, and a model's interval does not depend on the other
models. Ties: p >= ALPHA; a NaN p (fewer than 2 test examples, or scores without any variation) is "no test
possible": the tables say so and claim neither a tie nor a difference.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95 % t-interval of the mean; NaN for fewer than 2 values."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; NaN (no test possible) when either side has < 2 seeds, or when both are
    constant and differ. Identical constant samples -> 1."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if np.std(a) == 0 and np.std(b) == 0:  # a difference with no spread at all: t is undefined, no test possible
        return 1.0 if np.mean(a) == np.mean(b) else float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _matrix(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[None]
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 1:
        raise ValueError(f"per-example scores must be [seeds, examples] with at least one of each, not {s.shape}")
    return s


def ci95_test(scores) -> float:
    """The test sample's 95 % half-width of the seed-averaged score of ``scores`` ``[seeds, examples]``:
    t₀.₉₇₅,ₙ₋₁ · s_ex / √n over the n per-example means across the seeds (module docstring); NaN for one example."""
    return ci95(_matrix(scores).mean(axis=0))


def combine_ci95(seed_half: float, test_half: float) -> float:
    """The 95 % half-width over seeds and the test sample: sqrt(seed_half² + test_half²); a NaN term (one seed, one
    example) is left out — the other alone —, NaN when both are."""
    known = [h for h in (seed_half, test_half) if not math.isnan(h)]
    return math.sqrt(sum(h * h for h in known)) if known else float("nan")


def ci95_combined(scores) -> float:
    """:func:`combine_ci95` of the seed-only (the runs' scores, the row means) and the test-sample half-widths."""
    m = _matrix(scores)
    return combine_ci95(ci95(m.mean(axis=1)), ci95_test(m))


def paired_p(a, b) -> float:
    """Two-sided p-value of the difference of two models' seed-averaged scores on the same test examples (``a``,
    ``b``: ``[seeds, examples]``, the examples in the same order), seeds and test sample combined as in
    :func:`combine_ci95` (module docstring): the α at which sqrt((t_{1−α/2, ν} · se_seed)² + (t_{1−α/2, n−1} ·
    se_test)²) = |d|, ν Welch–Satterthwaite's over the models with at least 2 seeds. 1 for d = 0. NaN — no test
    possible, neither a tie nor a difference — with fewer than 2 test examples (the test sample's variation is unknown,
    not zero) and for d ≠ 0 with neither seed nor test variation (every score identical: t is undefined)."""
    from scipy import optimize, stats

    a, b = _matrix(a), _matrix(b)
    n = a.shape[1]
    if b.shape[1] != n:
        raise ValueError(f"per-example scores on different test sets: {a.shape[1]} and {b.shape[1]} examples")
    d = abs(float(a.mean() - b.mean()))
    seed_vars = [(m.mean(axis=1).var(ddof=1) / len(m), len(m) - 1) for m in (a, b) if len(m) >= 2]
    vs = sum(v for v, _ in seed_vars)
    # Welch–Satterthwaite: ν = (Σ vᵢ)² / Σ vᵢ² / dfᵢ
    nu = vs * vs / sum(v * v / df for v, df in seed_vars) if vs > 0 else math.inf
    if n < 2:
        return float("nan")
    vt = float((a.mean(axis=0) - b.mean(axis=0)).var(ddof=1) / n)
    if d == 0:
        return 1.0
    if vs + vt == 0:
        return float("nan")
    if vt == 0:
        return float(2 * stats.t.sf(d / math.sqrt(vs), nu))  # Welch's t-test
    if vs == 0:
        return float(2 * stats.t.sf(d / math.sqrt(vt), n - 1))  # the paired t-test

    def gap(log_alpha: float) -> float:  # combined half-width at level 1 − α minus |d|: falls as α grows
        q = math.exp(log_alpha) / 2
        return math.hypot(stats.t.isf(q, nu) * math.sqrt(vs), stats.t.isf(q, n - 1) * math.sqrt(vt)) - d

    lowest = math.log(1e-300)
    if gap(lowest) <= 0:
        return 0.0
    return float(math.exp(optimize.brentq(gap, lowest, 0.0, xtol=1e-12)))


def human(n: float) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def num(x: float, fmt: str) -> str:
    return "—" if x is None or math.isnan(x) else format(x, fmt)
