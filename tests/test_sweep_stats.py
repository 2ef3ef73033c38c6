"""The sweep statistics (vae.measures.stats) against known answers and independent computations."""

import numpy as np
import pytest
from scipy import stats as sps

from vae.measures import stats


def test_bootstrap_interval_of_a_constant_is_the_constant():
    ci = stats.bootstrap_mean_ci([0.4] * 6)
    assert ci == {"mean": pytest.approx(0.4), "lo": pytest.approx(0.4), "hi": pytest.approx(0.4), "n": 6}


def test_bootstrap_interval_matches_the_normal_interval_for_a_large_sample():
    x = np.random.default_rng(1).normal(2.0, 1.5, 400)
    ci = stats.bootstrap_mean_ci(x, n_boot=4000)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # the textbook interval, computed independently
    assert ci["mean"] == pytest.approx(x.mean())
    assert ci["lo"] == pytest.approx(x.mean() - half, abs=0.03)
    assert ci["hi"] == pytest.approx(x.mean() + half, abs=0.03)


def test_bootstrap_skips_missing_values_and_reports_none_without_any():
    assert stats.bootstrap_mean_ci([1.0, None, float("nan"), 3.0])["n"] == 2
    assert stats.bootstrap_mean_ci([None])["mean"] is None


def test_bootstrap_difference_interval():
    # the old rule's interval (kept for comparison: tests/test_compare_settings.py shows it fails at small n)
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.01, 20)
    clear = stats.difference_ci(base + 0.2, base)
    assert clear["diff"] == pytest.approx(0.2)
    assert clear["lo"] > 0.15 and clear["hi"] < 0.25


def test_variance_shares_match_the_anova_sums_of_squares():
    # Two settings, three seeds each: means 1 and 3, seed deviations -1, 0, +1.
    values = [0, 1, 2, 2, 3, 4]
    groups = ["a", "a", "a", "b", "b", "b"]
    shares = stats.variance_shares(values, groups)
    # grand mean 2: SS_total = 4+1+0+0+1+4 = 10, SS_within = 2 + 2 = 4, SS_between = 6 * 1^2 = 6
    assert shares["seed"] == pytest.approx(4 / 10)
    assert shares["setting"] == pytest.approx(6 / 10)
    only_seed = stats.variance_shares([1, 2, 1, 2], ["a", "a", "b", "b"])
    assert only_seed["setting"] == pytest.approx(0.0) and only_seed["seed"] == pytest.approx(1.0)
    assert stats.variance_shares([5, 5, 5], ["a", "b", "c"])["setting"] is None


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, 30).astype(float)
    y = x + rng.normal(0, 2, 30)
    assert stats.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic)
    assert stats.spearman([1, 2], [3, 4]) is None  # too few runs


def test_ranking_stability_is_one_for_identical_rankings_and_low_for_opposite_ones():
    same = np.array([[1.0, 1.1, 0.9], [2.0, 2.2, 1.8], [3.0, 3.3, 2.7]])  # settings x seeds
    r = stats.ranking_stability(same)
    assert r["kendall_w"] == pytest.approx(1.0) and r["top_agreement"] == 1.0
    opposite = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    r = stats.ranking_stability(opposite)
    assert r["kendall_w"] == pytest.approx(0.0)
    # Kendall's W against its definition: W = 12 S / (m^2 (n^3 - n)) with rank sums 3,5,4 (m=2, n=3).
    m = np.array([[1.0, 2.0], [3.0, 3.0], [2.0, 1.0]])
    sums = np.array([1 + 2, 3 + 3, 2 + 1])
    s = ((sums - sums.mean()) ** 2).sum()
    assert stats.ranking_stability(m)["kendall_w"] == pytest.approx(12 * s / (4 * (27 - 3)))


def test_rank_correlations_pair_unsupervised_with_supervised_columns():
    rows = [{"kl": float(i), "mig": float(i) * 2, "recon": float(-i)} for i in range(6)]
    out = stats.rank_correlations(rows, ["kl", "recon"], ["mig"])
    assert out[("kl", "mig")] == pytest.approx(1.0)
    assert out[("recon", "mig")] == pytest.approx(-1.0)
