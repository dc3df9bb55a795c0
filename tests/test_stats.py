"""finebench.stats: the two-level bootstrap over seeds and test examples and the paired bootstrap test, against
cases small enough to enumerate by hand."""

import itertools

import numpy as np
import pytest

from finebench import stats


def test_all_seeds_identical_and_every_example_correct_gives_an_interval_of_zero_width():
    lo, hi = stats.bootstrap_ci(np.ones((3, 40)))
    assert lo == hi == 1.0


def test_a_two_example_test_set_one_seed():
    # resamples of [0, 1]: (0,0) (0,1) (1,0) (1,1) -> means 0, .5, .5, 1 with probability 1/4, 1/2, 1/4
    reps = stats.replicates([[0.0, 1.0]], n_replicates=20_000)[0]
    freq = {v: np.mean(reps == v) for v in (0.0, 0.5, 1.0)}
    assert sum(freq.values()) == 1.0
    assert freq[0.0] == pytest.approx(0.25, abs=0.015) and freq[0.5] == pytest.approx(0.5, abs=0.015)
    # P(0) = 1/4 > 2.5 %: the 2.5th percentile is 0, the 97.5th is 1
    assert stats.bootstrap_ci([[0.0, 1.0]]) == (0.0, 1.0)


def test_two_seeds_two_examples_every_replicate_is_one_of_the_sixteen_listed_by_hand():
    # seeds [0, 1] and [1, 1]; a replicate draws two seeds and two examples (one draw for both seeds):
    #   seeds (0,0): 0, .5, .5, 1   seeds (1,1): 1, 1, 1, 1   seeds (0,1) and (1,0): .5, .75, .75, 1 each
    # -> P(0) = 1/16, P(.5) = 4/16, P(.75) = 4/16, P(1) = 7/16
    by_hand = {0.0: 1 / 16, 0.5: 4 / 16, 0.75: 4 / 16, 1.0: 7 / 16}
    reps = stats.replicates([[[0.0, 1.0], [1.0, 1.0]]], n_replicates=20_000)[0]
    assert set(np.unique(reps)) == set(by_hand)
    for value, p in by_hand.items():  # binomial sd at B = 20000 is <= 0.0035: 0.015 is over 4 sd
        assert np.mean(reps == value) == pytest.approx(p, abs=0.015)
    assert stats.bootstrap_ci([[0.0, 1.0], [1.0, 1.0]]) == (0.0, 1.0)


@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_percentiles_match_the_enumeration_of_every_resample(rng_seed):
    """2 seeds x 5 images: all 2^2 seed resamples x 5^5 image resamples (12 500, equally likely) enumerated; the
    exact 2.5 % / 97.5 % quantiles are 31.0 and 34.8 dB (the distribution's values lie on a 0.1 dB grid). With
    B = 20 000 the bootstrap's percentiles lie within one grid step (0.1 dB) of them."""
    v = np.array([[30.0, 31, 33, 34, 36], [30.5, 31, 32, 35, 36]])
    images = np.array(list(itertools.product(range(5), repeat=5)))
    per_seed = v[:, images].mean(axis=2)  # [seed, image resample]
    every = np.sort(np.concatenate([per_seed[list(s)].mean(axis=0) for s in itertools.product(range(2), repeat=2)]))
    exact = [every[int(np.ceil(p * len(every))) - 1] for p in (0.025, 0.975)]
    assert exact == pytest.approx([31.0, 34.8])
    lo, hi = stats.bootstrap_ci(v, n_replicates=20_000, seed=rng_seed)
    assert abs(lo - exact[0]) <= 0.1 + 1e-9 and abs(hi - exact[1]) <= 0.1 + 1e-9


def test_the_bootstrap_is_fixed_by_its_seed_and_resamples_examples_shared_by_the_seeds():
    rng = np.random.default_rng(5)
    x = (rng.random((3, 200)) < 0.7).astype(float)
    assert stats.bootstrap_ci(x) == stats.bootstrap_ci(x)  # default_rng(BOOT_SEED) afresh on every call
    # three identical seeds: one example resample shared by all three (the same draws as for one seed) leaves
    # nothing for the seed resampling to add
    assert stats.bootstrap_ci(np.stack([x[0]] * 3)) == pytest.approx(stats.bootstrap_ci(x[:1]), abs=1e-12)
    # the interval holds the mean and is about 2 x 1.96 x the binomial standard error wide (one seed)
    lo, hi = stats.bootstrap_ci(x[:1])
    se = np.sqrt(x[0].mean() * (1 - x[0].mean()) / 200)
    assert lo < x[0].mean() < hi and (hi - lo) / 2 == pytest.approx(1.96 * se, rel=0.15)


def test_seed_variation_widens_the_interval():
    same = np.tile((np.arange(500) % 10 < 7).astype(float), (3, 1))
    spread = same.copy()
    spread[0, :50], spread[2, 100:150] = 1.0, 0.0  # seed accuracies .73, .70, .65
    lo1, hi1 = stats.bootstrap_ci(same)
    lo2, hi2 = stats.bootstrap_ci(spread)
    assert hi2 - lo2 > hi1 - lo1


def test_paired_test_identical_predictions_is_a_tie_with_p_one():
    x = (np.random.default_rng(0).random(50) < 0.6).astype(float)
    assert stats.paired_bootstrap_p(np.stack([x] * 3), np.stack([x] * 3)) == 1.0
    # identical models whose seeds differ: every replicate's difference is centred on 0
    rng = np.random.default_rng(1)
    seeds = (rng.random((3, 50)) < 0.6).astype(float)
    assert stats.paired_bootstrap_p(seeds, seeds.copy()) >= 0.9


def test_paired_test_one_model_right_on_every_example_the_other_gets_wrong_is_at_the_floor():
    n = 50
    right = np.ones((3, n))
    other = np.tile((np.arange(n) % 2).astype(float), (3, 1))  # wrong on 25 of the 50, where `right` is right
    assert stats.paired_bootstrap_p(right, other) == 1 / (stats.BOOT_REPLICATES + 1)
    assert stats.paired_bootstrap_p(other, right) == 1 / (stats.BOOT_REPLICATES + 1)  # two-sided
    assert stats.paired_bootstrap_p(right, np.zeros((2, n)), n_replicates=99) == 1 / 100


def test_paired_test_pairs_the_examples():
    """Two models that differ on 2 of 400 examples, equal elsewhere: the paired test sees a consistent difference
    (every replicate that draws a discordant example moves the same way), where unpaired intervals would overlap."""
    rng = np.random.default_rng(3)
    a = (rng.random(400) < 0.5).astype(float)
    b = a.copy()
    wrong = np.flatnonzero(a == 1)[:8]
    b[wrong] = 0.0  # b misses 8 that a gets right: a is 2 points better
    p = stats.paired_bootstrap_p(a[None], b[None])
    assert p < 0.05
    lo_a, hi_a = stats.bootstrap_ci(a[None])
    lo_b, hi_b = stats.bootstrap_ci(b[None])
    assert lo_a < hi_b  # the two intervals overlap: only pairing separates them


def test_scores_on_different_test_sets_are_refused():
    with pytest.raises(ValueError, match="different test sets"):
        stats.paired_bootstrap_p(np.ones((2, 10)), np.ones((2, 11)))
