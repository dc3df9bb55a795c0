"""finebench.stats: the interval over seeds and the test sample and the paired test behind ≈, against cases small
enough to compute by hand (t quantiles from the table: t₀.₉₇₅ with 2 df 4.3027, with 3 df 3.1824)."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from finebench import stats

T975_DF2, T975_DF3 = 4.3027, 3.1824  # Student's t table

# 3 seeds x 4 test examples, computed by hand below
HAND = np.array([[1.0, 1, 0, 0],   # seed 0: 0.50
                 [1.0, 1, 1, 0],   # seed 1: 0.75
                 [1.0, 0, 0, 0]])  # seed 2: 0.25


def test_the_combined_interval_of_a_hand_computed_case():
    # seeds: scores .50 .75 .25, mean .5, deviations 0, +.25, −.25 -> s_seed² = .125 / 2 = .0625, s_seed = .25
    seed_half = T975_DF2 * 0.25 / math.sqrt(3)  # 0.6210
    assert stats.ci95(HAND.mean(axis=1)) == pytest.approx(seed_half, abs=1e-4)
    # test examples: seed-averaged scores 1, 2/3, 1/3, 0, mean .5; squared deviations .25 + 1/36 + 1/36 + .25 = 5/9
    # -> s_ex² = 5/27, V_test = s_ex² / 4 = 5/108
    v_test = 5 / 108
    test_half = T975_DF3 * math.sqrt(v_test)  # 0.6848
    assert stats.ci95_test(HAND) == pytest.approx(test_half, abs=1e-4)
    assert stats.ci95_combined(HAND) == pytest.approx(math.sqrt(seed_half ** 2 + test_half ** 2), abs=1e-4)
    assert stats.ci95_combined(HAND) == pytest.approx(0.9245, abs=1e-4)


def test_v_test_is_the_bootstrap_variance_over_every_resample_of_the_examples_shared_by_the_seeds():
    """All 4⁴ = 256 resamples of the 4 test examples, equally likely, one resample applied to every seed: the
    variance of the seed-averaged score over them is 5/144 (the ddof = 0 variance 5/36 over n = 4); V_test is it
    with the n / (n − 1) correction, 5/108."""
    resamples = np.array(list(itertools.product(range(4), repeat=4)))
    seed_mean = HAND[:, resamples].mean(axis=2).mean(axis=0)  # [256]: mean over seeds of each seed's resampled mean
    assert seed_mean.var() == pytest.approx(5 / 144)
    assert (stats.ci95_test(HAND) / sps.t.ppf(0.975, 3)) ** 2 == pytest.approx(seed_mean.var() * 4 / 3)


def test_a_test_set_every_seed_scores_alike_adds_nothing_to_the_seed_interval():
    """Each seed constant over its examples (seed variation only: the case where the former percentile bootstrap
    was about 2.6 × narrower than Student's t with 3 seeds): the test term is 0, the interval is the seeds' own."""
    x = np.repeat(np.array([[0.7], [0.6], [0.75]]), 50, axis=1)
    assert stats.ci95_test(x) == pytest.approx(0.0, abs=1e-12)  # float rounding of 0.7, 0.6, 0.75 means
    assert stats.ci95_combined(x) == pytest.approx(stats.ci95(x.mean(axis=1)), rel=1e-12)


def test_identical_seeds_leave_the_test_sample_alone_and_one_seed_has_only_it():
    x = (np.random.default_rng(5).random(200) < 0.7).astype(float)
    assert stats.ci95_combined(np.stack([x] * 3)) == pytest.approx(stats.ci95_test(x[None]))
    assert stats.ci95_combined(x[None]) == stats.ci95_test(x[None])  # one seed: the seeds' spread is unknown
    # about 1.96 × the binomial standard error (t with 199 df: 1.972)
    se = math.sqrt(x.mean() * (1 - x.mean()) / 200)
    assert stats.ci95_test(x[None]) == pytest.approx(1.972 * se, rel=0.01)
    assert stats.ci95_combined(np.ones((3, 40))) == 0.0


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_the_combined_interval_is_never_narrower_than_the_seed_only_or_the_test_only_one(k):
    rng = np.random.default_rng(k)
    for _ in range(200):
        n = int(rng.integers(2, 60))
        p = rng.random(n)  # per-example difficulty; seeds disagree at random around it
        x = (rng.random((k, n)) < p).astype(float) if rng.random() < 0.5 else rng.normal(30, 2, (k, n))
        comb, seed_half, test_half = stats.ci95_combined(x), stats.ci95(x.mean(axis=1)), stats.ci95_test(x)
        assert comb >= seed_half - 1e-12 and comb >= test_half - 1e-12
        assert comb <= seed_half + test_half + 1e-12


def test_combine_leaves_out_a_missing_term():
    assert stats.combine_ci95(3.0, 4.0) == 5.0
    assert stats.combine_ci95(float("nan"), 4.0) == 4.0 and stats.combine_ci95(3.0, float("nan")) == 3.0
    assert math.isnan(stats.combine_ci95(float("nan"), float("nan")))


def test_paired_test_one_seed_each_is_the_paired_t_test_by_hand():
    # d = .50 − .25 = .25; per-example differences 0, 1, 0, 0: s² = (1 − 4 · .25²) / 3 = .25, se = sqrt(.25 / 4) = .25
    # -> t = 1 with 3 df: two-sided p = 2 · P(T₃ > 1) = 0.3910
    a, b = np.array([[1.0, 1, 0, 0]]), np.array([[1.0, 0, 0, 0]])
    assert stats.paired_p(a, b) == pytest.approx(0.3910, abs=1e-4)
    assert stats.paired_p(a, b) == pytest.approx(sps.ttest_rel(a[0], b[0]).pvalue)
    assert stats.paired_p(b, a) == stats.paired_p(a, b)  # two-sided


def test_paired_test_without_test_sample_variation_is_welchs():
    """Every seed scores each model alike on every example: the per-example differences are constant, only the
    seeds vary. Welch's p over the seed scores is 0.07, a tie; the paired bootstrap used before, which resampled the
    3 seeds with no small-sample correction, gave 0.002."""
    a = np.repeat(np.array([[0.80], [0.82], [0.85]]), 100, axis=1)
    b = np.repeat(np.array([[0.74], [0.80], [0.76]]), 100, axis=1)
    assert stats.welch_p(a.mean(axis=1), b.mean(axis=1)) == pytest.approx(0.0705, abs=1e-4)
    assert stats.paired_p(a, b) == pytest.approx(stats.welch_p(a.mean(axis=1), b.mean(axis=1)), rel=1e-9)


def test_paired_test_inverts_the_combined_interval_of_the_difference_and_counts_both_sources():
    rng = np.random.default_rng(2)
    a = (rng.random((3, 80)) < 0.75).astype(float)
    b = (rng.random((3, 80)) < 0.6).astype(float)
    p = stats.paired_p(a, b)
    d = a.mean() - b.mean()
    vs = a.mean(axis=1).var(ddof=1) / 3 + b.mean(axis=1).var(ddof=1) / 3
    nu = vs ** 2 / ((a.mean(axis=1).var(ddof=1) / 3) ** 2 / 2 + (b.mean(axis=1).var(ddof=1) / 3) ** 2 / 2)
    vt = (a.mean(axis=0) - b.mean(axis=0)).var(ddof=1) / 80
    # at level 1 − p the combined half-width of the difference is |d|
    assert math.hypot(sps.t.isf(p / 2, nu) * math.sqrt(vs), sps.t.isf(p / 2, 79) * math.sqrt(vt)) == pytest.approx(d)
    # more sources of uncertainty, never a smaller p than either test alone
    assert p >= stats.welch_p(a.mean(axis=1), b.mean(axis=1))
    assert p >= sps.ttest_rel(a.mean(axis=0), b.mean(axis=0)).pvalue


def test_paired_test_identical_predictions_is_a_tie_with_p_one():
    x = (np.random.default_rng(0).random(50) < 0.6).astype(float)
    assert stats.paired_p(np.stack([x] * 3), np.stack([x] * 3)) == 1.0
    seeds = (np.random.default_rng(1).random((3, 50)) < 0.6).astype(float)
    assert stats.paired_p(seeds, seeds.copy()) == 1.0
    # a difference and no variation at all: t is undefined, no test possible (it was p = 0 at eb2dbfa)
    assert math.isnan(stats.paired_p(np.ones((3, 20)), np.zeros((2, 20))))


def test_a_one_seed_model_adds_no_seed_term():
    best = np.repeat(np.array([[0.80], [0.86], [0.83]]), 40, axis=1)
    one = np.full((1, 40), 0.70)
    # no test-sample variation: Welch's seed term from the 3-seed side alone, its 2 df
    assert stats.paired_p(best, one) == pytest.approx(2 * sps.t.sf(0.13 / (0.03 / math.sqrt(3)), 2))


def test_paired_test_pairs_the_examples():
    """Two models that differ on 8 of 400 examples, equal elsewhere: the paired test sees a consistent difference,
    where the two models' own intervals overlap."""
    rng = np.random.default_rng(3)
    a = (rng.random(400) < 0.5).astype(float)
    b = a.copy()
    b[np.flatnonzero(a == 1)[:8]] = 0.0  # b misses 8 that a gets right: a is 2 points better
    assert stats.paired_p(a[None], b[None]) < 0.05
    assert a.mean() - stats.ci95_combined(a[None]) < b.mean() + stats.ci95_combined(b[None])


def test_scores_on_different_test_sets_are_refused():
    with pytest.raises(ValueError, match="different test sets"):
        stats.paired_p(np.ones((2, 10)), np.ones((2, 11)))
