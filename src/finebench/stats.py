"""Statistics over seeds and number formatting shared by every task type's tables (finebench.report, finebench.tasks).

Mean ± 95 % confidence half-width from Student's t (none for a single seed), two-sided Welch t-test against the
best model (ties: p >= ALPHA), and the compact number formats the Markdown/HTML tables use.
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
    """Two-sided Welch t-test p-value; NaN when either side has < 2 seeds. Identical constant samples -> 1."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if np.std(a) == 0 and np.std(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def human(n: float) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def num(x: float, fmt: str) -> str:
    return "—" if x is None or math.isnan(x) else format(x, fmt)


