"""compare_settings (vae.measures.stats) against known answers, by simulation.

Where the right answer is known, simulate many sweeps and run them through the statistics:
- with no effect, the chance of any "higher"/"lower" in a family (Holm) is at most 5% (+1% Monte Carlo),
  for normal and skewed metrics, paired and unpaired seeds, 3 to 20 seeds, 2 to 6 settings;
- a true effect of 1.5 SD is found at least 80% of the time with 10 paired seeds;
- the interval of a difference covers the true difference 95% ± 2% of the time at n = 5.

The simulations run the batched core (paired_t / welch_t / holm over arrays of simulated sweeps), which is
checked equal to compare_settings itself on a few sweeps. The same simulations run the old rule (a
difference whenever the percentile-bootstrap interval excludes 0, stats.difference_ci, which the Sweeps
page used until 2026-12, CHANGELOG.md) and show that it fails them.
"""

import numpy as np
import pytest
from scipy import stats as sps

from vae.measures import stats

ALPHA = 0.05
REPS = 4000  # simulated sweeps per case: the Monte Carlo sd of a 5% rate is 0.34%


def draw(rng, dist, shape):
    """Seed noise of a metric: normal, or skewed (exponential, skewness 2), unit sd."""
    if dist == "normal":
        return rng.standard_normal(shape)
    return rng.exponential(1.0, shape) - 1.0


def simulate(rng, dist, paired, settings, seeds, effect=0.0, reps=REPS):
    """(reps, settings, seeds) metric values; setting 0 is the baseline; every other setting is `effect`
    higher. Paired: one seed effect shared by every setting of a seed (same initialisation and data order)."""
    x = draw(rng, dist, (reps, settings, seeds))
    if paired:
        x = x + draw(rng, dist, (reps, 1, seeds))
    x[:, 1:] += effect
    return x


def batched(x, paired, level=0.95):
    """The core of compare_settings on many sweeps at once: the t test of each setting against setting 0
    (paired or Welch), its interval, and Holm over each sweep's comparisons."""
    t = (stats.paired_t if paired else stats.welch_t)(x[:, 1:], x[:, :1], level)
    t["p_adjusted"] = stats.holm(t["p"])
    return t


def as_rows(sweep, paired):
    """One simulated sweep as results.csv-like rows (unpaired: every run its own seed)."""
    settings, seeds = sweep.shape
    return [
        {
            "gamma": [0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0][i],
            "seed": j if paired else i * seeds + j,
            "eval_mig": float(sweep[i, j]),
        }
        for i in range(settings)
        for j in range(seeds)
    ]


@pytest.mark.parametrize("paired", [True, False])
def test_the_batched_core_is_compare_settings(paired):
    rng = np.random.default_rng(7)
    x = simulate(rng, "skewed", paired, 4, 5, effect=0.7, reps=5)
    t = batched(x, paired)
    for r in range(5):
        got = stats.compare_settings(as_rows(x[r], paired), "eval_mig", "gamma", 0.0)
        assert [c["paired"] for c in got] == [paired] * 3
        for j, c in enumerate(got):
            for k in ("diff", "lo", "hi", "p", "p_adjusted", "effect_size"):
                assert c[k] == pytest.approx(float(t[k][r, j]), rel=1e-9, abs=1e-12), k


@pytest.mark.parametrize("dist", ["normal", "skewed"])
@pytest.mark.parametrize("paired", [True, False])
def test_with_no_effect_the_familywise_false_positive_rate_is_at_most_5_percent(dist, paired):
    rng = np.random.default_rng(11)
    for seeds in (3, 5, 10, 20):
        for settings in (2, 4, 6):
            t = batched(simulate(rng, dist, paired, settings, seeds), paired)
            fwer = np.mean((t["p_adjusted"] < ALPHA).any(axis=-1))
            assert fwer <= ALPHA + 0.01, (dist, paired, seeds, settings, fwer)


def test_a_true_effect_of_1_5_sd_is_found_80_percent_of_the_time_with_10_paired_seeds():
    # The metric's sd over seeds is 1 (seed effect sd 0.6, the rest sd 0.8: seeds 36% of the variance);
    # one setting against the baseline, 1.5 sd higher, 10 seeds each, paired.
    rng = np.random.default_rng(3)
    x = 0.8 * rng.standard_normal((REPS, 2, 10)) + 0.6 * rng.standard_normal((REPS, 1, 10))
    x[:, 1] += 1.5
    t = batched(x, paired=True)
    found = np.mean((t["p_adjusted"][:, 0] < ALPHA) & (t["diff"][:, 0] > 0))
    assert found >= 0.80
    # and the same with the seeds' effect as large as the rest (sd 1 / sqrt 2 each): still found
    x = rng.standard_normal((REPS, 2, 10)) / np.sqrt(2) + rng.standard_normal((REPS, 1, 10)) / np.sqrt(2)
    x[:, 1] += 1.5
    assert np.mean(batched(x, paired=True)["p_adjusted"][:, 0] < ALPHA) >= 0.80


@pytest.mark.parametrize("paired", [True, False])
def test_the_interval_covers_the_true_difference_95_percent_of_the_time_at_5_seeds(paired):
    rng = np.random.default_rng(5)
    t = batched(simulate(rng, "normal", paired, 2, 5, effect=0.5, reps=3 * REPS), paired)
    cover = np.mean((t["lo"][:, 0] <= 0.5) & (0.5 <= t["hi"][:, 0]))
    assert abs(cover - 0.95) <= 0.02, cover
    # skewed seed noise: the difference of two settings' means is symmetric about the true difference,
    # and the t interval does not fall short of its 95% (it may be conservative)
    t = batched(simulate(rng, "skewed", paired, 2, 5, effect=0.5, reps=3 * REPS), paired)
    cover = np.mean((t["lo"][:, 0] <= 0.5) & (0.5 <= t["hi"][:, 0]))
    assert cover >= 0.93, cover


def test_a_settings_mean_interval_covers_95_percent_at_5_seeds():
    rng = np.random.default_rng(9)
    hits = [(c["lo"] <= 0.3 <= c["hi"]) for c in (stats.mean_ci(0.3 + rng.standard_normal(5)) for _ in range(2000))]
    assert abs(np.mean(hits) - 0.95) <= 0.02


# ---- the old rule, through the same simulations ------------------------------------------------------


def old_rule(sweep):
    """What the Sweeps page said until 2026-12 (CHANGELOG.md): a difference when the percentile-bootstrap interval of
    the difference (stats.difference_ci, each group resampled on its own) excludes 0; no correction."""
    return [stats.difference_ci(sweep[i], sweep[0]) for i in range(1, sweep.shape[0])]


def test_the_old_rule_fails_the_same_simulations():
    rng = np.random.default_rng(11)
    x = simulate(rng, "normal", False, 6, 5, reps=200)
    flagged = [any(not (d["lo"] <= 0 <= d["hi"]) for d in old_rule(s)) for s in x]
    assert np.mean(flagged) > 0.2  # family-wise false positives: far above 5% (the new rule: at most 5%)
    x = simulate(rng, "normal", False, 2, 5, effect=0.5, reps=400)
    covered = [d["lo"] <= 0.5 <= d["hi"] for d in (old_rule(s)[0] for s in x)]
    assert np.mean(covered) < 0.93  # about 83%, not 95%


# ---- the pieces, against independent computations --------------------------------------------------


def test_paired_and_welch_match_scipy():
    rng = np.random.default_rng(1)
    x, b = rng.normal(1, 1, 8), rng.normal(0, 2, 8)
    p = stats.paired_t(x, b)
    ref = sps.ttest_rel(x, b)
    assert float(p["p"]) == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (float(p["lo"]), float(p["hi"])) == pytest.approx((ci.low, ci.high))
    assert float(p["effect_size"]) == pytest.approx((x - b).mean() / (x - b).std(ddof=1))
    w = stats.welch_t(x, b[:6])
    ref = sps.ttest_ind(x, b[:6], equal_var=False)
    assert float(w["p"]) == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (float(w["lo"]), float(w["hi"])) == pytest.approx((ci.low, ci.high))
    sp = np.sqrt((7 * x.var(ddof=1) + 5 * b[:6].var(ddof=1)) / 12)
    assert float(w["effect_size"]) == pytest.approx((1 - 3 / (4 * 14 - 9)) * (x.mean() - b[:6].mean()) / sp)


def test_holm_matches_its_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_the_smallest_detectable_difference_is_detected_80_percent_of_the_time():
    sd, n = 0.24, 5  # factor alignment's seed sd, 5 paired seeds
    mde = stats.min_detectable(sd / np.sqrt(n), n - 1)
    rng = np.random.default_rng(2)
    d = mde + sd * rng.standard_normal((20000, n))
    t = stats.paired_t(d, np.zeros_like(d))
    assert np.mean(t["p"] < ALPHA) == pytest.approx(0.80, abs=0.015)
    # seeds_needed is the smallest n whose power reaches 80%: one seed fewer falls short
    need = stats.seeds_needed(0.2, sd, paired=True)
    assert (
        stats.t_power(0.2 / (sd / np.sqrt(need)), need - 1)
        >= 0.8
        > stats.t_power(0.2 / (sd / np.sqrt(need - 1)), need - 2)
    )
    assert stats.seeds_needed(1e-6, sd, paired=True) is None  # beyond MAX_SEEDS


def test_compare_settings_fields_pairing_and_verdicts():
    rng = np.random.default_rng(4)
    rows = [
        {"gamma": g, "seed": s, "m": 0.5 + 0.1 * rng.standard_normal() + (0.3 if g == 1e-2 else 0.0)}
        for g in (0.0, 1e-3, 1e-2)
        for s in range(10)
    ]
    out = {c["value"]: c for c in stats.compare_settings(rows, "m", "gamma", 0.0)}
    assert set(out) == {1e-3, 1e-2}
    c = out[1e-2]
    assert c["paired"] and c["n"] == c["n_baseline"] == 10 and c["verdict"] == "higher"
    assert c["effect_size_name"] == "d_z" and c["family_size"] == 2
    assert c["p_adjusted"] == pytest.approx(min(1, 2 * c["p"])) or c["p_adjusted"] >= c["p"]
    assert out[1e-3]["verdict"] == "no evidence" and out[1e-3]["mde"] > 0
    # a missing run (a sweep still running): paired on the seeds both have, the baseline's extra run left out
    out = {c["value"]: c for c in stats.compare_settings(rows[:-1], "m", "gamma", 0.0)}
    c = out[1e-2]
    assert c["paired"] and c["n"] == c["n_baseline"] == 9 and c["unpaired_left_out"] == 1
    base9 = [r["m"] for r in rows if r["gamma"] == 0.0][:9]
    assert c["baseline_mean"] == pytest.approx(np.mean(base9))
    # seeds that do not match: Welch, Hedges' g, every run
    moved = [dict(r, seed=r["seed"] + 100) if r["gamma"] == 1e-2 else r for r in rows]
    c = {c["value"]: c for c in stats.compare_settings(moved, "m", "gamma", 0.0)}[1e-2]
    assert not c["paired"] and c["effect_size_name"] == "Hedges' g" and c["n"] == 10
    # equivalence only with smallest_effect and a narrow interval
    same = [{"g": g, "seed": s, "m": 1.0 + 0.01 * rng.standard_normal()} for g in ("a", "b") for s in range(10)]
    assert stats.compare_settings(same, "m", "g", "a")[0]["verdict"] == "no evidence"
    assert stats.compare_settings(same, "m", "g", "a", smallest_effect=0.05)[0]["verdict"] == "equivalent"
    assert stats.compare_settings(same, "m", "g", "a", smallest_effect=1e-4)[0]["verdict"] == "no evidence"
    # one seed: nothing to test, said as no evidence
    one = stats.compare_settings([{"g": 0, "seed": 0, "m": 1.0}, {"g": 1, "seed": 0, "m": 2.0}], "m", "g", 0)
    assert one[0]["verdict"] == "no evidence" and one[0]["p"] is None and one[0]["diff"] == 1.0
    with pytest.raises(ValueError, match="smallest_effect"):
        stats.compare_settings(rows, "m", "gamma", 0.0, smallest_effect=-1)


def test_within_setting_correlation_removes_what_the_setting_moves():
    rng = np.random.default_rng(8)
    g = np.repeat([0, 1, 2], 60)
    x = 3 * g + rng.standard_normal(180)  # the setting moves both; within a setting they are unrelated
    y = 3 * g + rng.standard_normal(180)
    assert stats.spearman(x, y) > 0.8
    assert abs(stats.within_setting_spearman(x, y, g)["rho"]) < 0.25  # sd about 0.075 under no relation
    one = stats.within_setting_spearman(x[:60], y[:60], g[:60])["rho"]
    assert one == pytest.approx(sps.spearmanr(x[:60], y[:60]).statistic)
    z = x + 0.5 * rng.standard_normal(180)  # related within settings too: found
    assert stats.within_setting_spearman(x, z, g)["rho"] > 0.5
