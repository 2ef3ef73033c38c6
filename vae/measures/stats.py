"""Statistics over seeds: every answer of a sweep as a distribution, not one run (numpy and SciPy).

Locatello et al. 2019 ("Challenging common assumptions in the unsupervised learning of
disentangled representations", §5) found that the random seed moves disentanglement scores as
much as the method or its weight. These pure functions say how much:

- `compare_settings`      every value of a swept setting against a baseline on one metric: paired t
                          test on per-seed differences when the seeds match (the same seed gives the
                          same initialisation and data order), Welch's t test otherwise; a t interval,
                          Holm-adjusted p values over the comparisons of that call (the family), Hedges'
                          g or d_z, the smallest difference detectable with 80% power (noncentral t),
                          and a verdict ("higher", "lower", "no evidence", "equivalent" by TOST);
- `mean_ci`               a setting's mean with its t interval;
- `holm`                  Holm's step-down adjustment of a family of p values;
- `verdict_words`, `power_words`  compare_settings' answer in words (never "no effect");
- `t_power`, `min_detectable`, `seeds_needed`  power of a two-sided t test (noncentral t);
- `bootstrap_mean_ci`, `difference_ci`  the percentile bootstrap (Efron & Tibshirani 1993, ch. 13),
                          the rule the Sweeps page used before; at 5 seeds its interval covers about
                          83% of the time, not 95% (tests/test_compare_settings.py), so no answer uses it;
- `variance_shares`       how much of the spread is between settings and how much is seed
                          (one-way ANOVA sums of squares: SS_total = SS_between + SS_within);
- `ranking_stability`     how well the ranking of settings agrees from seed to seed (Kendall's
                          coefficient of concordance W, and the share of seeds that pick the same best);
- `spearman`, `rank_correlations`, `within_setting_spearman`  whether unsupervised numbers
                          predict supervised ones across runs, within settings (so that the swept
                          setting, which moves both, does not make the correlation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize
from scipy import stats as sps


def _finite(values) -> np.ndarray:
    x = np.asarray([v for v in values if isinstance(v, (int, float, np.floating, np.integer))], dtype=np.float64)
    return x[np.isfinite(x)]


def bootstrap_mean_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """{'mean', 'lo', 'hi', 'n'}: the mean and its percentile-bootstrap interval (None for no values).

    One value gives an interval of width 0: a single seed says nothing about seed variation, and the
    page says so by showing n.
    """
    x = _finite(values)
    if len(x) == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return {
        "mean": float(x.mean()),
        "lo": float(np.quantile(means, a)),
        "hi": float(np.quantile(means, 1 - a)),
        "n": int(len(x)),
    }


def difference_ci(values, baseline, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """mean(values) - mean(baseline) with a bootstrap interval (the two groups resampled independently)."""
    x, b = _finite(values), _finite(baseline)
    if len(x) == 0 or len(b) == 0:
        return {"diff": None, "lo": None, "hi": None, "n": int(len(x)), "n_baseline": int(len(b))}
    rng = np.random.default_rng(seed)
    dx = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    db = b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(axis=1)
    d = dx - db
    a = (1 - level) / 2
    return {
        "diff": float(x.mean() - b.mean()),
        "lo": float(np.quantile(d, a)),
        "hi": float(np.quantile(d, 1 - a)),
        "n": int(len(x)),
        "n_baseline": int(len(b)),
    }


def variance_shares(values: Sequence[float], groups: Sequence) -> dict:
    """Share of the variance across runs that lies between settings vs within a setting (seed).

    One-way ANOVA: SS_total = sum (x - mean)^2 = SS_between + SS_within, with SS_between the
    group sizes times the squared distance of each group mean from the grand mean. Runs with a
    missing value are left out. {'setting', 'seed', 'n'}; shares are None when every value is equal.
    """
    pairs = [
        (g, float(v))
        for g, v in zip(groups, values)
        if isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))
    ]
    if len(pairs) < 2:
        return {"setting": None, "seed": None, "n": len(pairs)}
    x = np.array([v for _, v in pairs])
    total = float(((x - x.mean()) ** 2).sum())
    if total <= 0:
        return {"setting": None, "seed": None, "n": len(pairs)}
    within = 0.0
    for g in {g for g, _ in pairs}:
        xg = np.array([v for gg, v in pairs if gg == g])
        within += float(((xg - xg.mean()) ** 2).sum())
    return {"setting": (total - within) / total, "seed": within / total, "n": len(pairs)}


def ranks(x) -> np.ndarray:
    """Ranks 1..n of x, ties sharing their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def spearman(x, y) -> float | None:
    """Spearman's rank correlation (Pearson correlation of the average ranks); None if undefined."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    rx, ry = ranks(x[ok]), ranks(y[ok])
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def ranking_stability(matrix) -> dict:
    """How stable the ranking of settings is across seeds.

    `matrix[i, j]` is setting i's value with seed j (NaN where missing; seeds with any missing value
    are dropped). Kendall's W = 12 S / (m^2 (n^3 - n)), S the sum of squared deviations of the
    settings' rank sums (no tie correction): 1 when every seed ranks the settings alike, near 0 when
    the rankings are unrelated. `top_agreement`: share of seeds whose best (highest) setting is the
    setting with the highest mean.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError("matrix must be settings x seeds")
    m = m[:, np.all(np.isfinite(m), axis=0)] if m.size else m
    n, k = m.shape
    if n < 2 or k < 2:
        return {"kendall_w": None, "top_agreement": None, "settings": int(n), "seeds": int(k)}
    r = np.column_stack([ranks(m[:, j]) for j in range(k)])  # ranks of the settings within each seed
    rank_sums = r.sum(axis=1)
    s = float(((rank_sums - rank_sums.mean()) ** 2).sum())
    w = 12 * s / (k**2 * (n**3 - n))
    best = int(np.argmax(m.mean(axis=1)))
    top = float(np.mean(np.argmax(m, axis=0) == best))
    return {"kendall_w": float(w), "top_agreement": top, "settings": int(n), "seeds": int(k)}


def rank_correlations(rows: list[dict], unsupervised: Sequence[str], supervised: Sequence[str]) -> dict:
    """{(u, s): Spearman correlation across runs} for every pair present in the rows."""
    out = {}
    for u in unsupervised:
        for s in supervised:
            xs = [(r.get(u), r.get(s)) for r in rows]
            xs = [(a, b) for a, b in xs if isinstance(a, (int, float)) and isinstance(b, (int, float))]
            if len(xs) >= 3:
                out[(u, s)] = spearman([a for a, _ in xs], [b for _, b in xs])
    return out


# ---------------------------------------------------------------------------------------
# Comparing settings over seeds: t tests, Holm, effect sizes, power

POWER = 0.8  # the power `mde` and `seeds_needed` are computed for
MAX_SEEDS = 1000  # seeds_needed says None ("more than this") beyond
VERDICTS = ("higher", "lower", "no evidence", "equivalent")


def _num(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and math.isfinite(v)


def _same(a, b) -> bool:
    """Two setting values are the same (1e-3 == 0.001; "0" from a form against 0.0)."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def mean_ci(values, level: float = 0.95) -> dict:
    """{'mean', 'lo', 'hi', 'n', 'sd'}: the mean and its t interval, mean ± t_(n-1) sd / sqrt(n).

    The t interval has its nominal coverage for normal data at any n (the percentile bootstrap covers
    about 83% at n = 5). lo and hi are None under 2 values: one seed says nothing about seed variation.
    """
    x = _finite(values)
    n = len(x)
    if n == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0, "sd": None}
    if n < 2:
        return {"mean": float(x[0]), "lo": None, "hi": None, "n": 1, "sd": None}
    sd = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": float(x.mean()), "lo": float(x.mean() - half), "hi": float(x.mean() + half), "n": int(n), "sd": sd}


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p values over the last axis (each row one family).

    Sorted ascending, p_(j) is multiplied by (m - j + 1), made non-decreasing, and capped at 1. Rejecting
    where the adjusted p < alpha keeps the chance of any false rejection in the family <= alpha, whatever
    the dependence between the tests (Holm 1979).
    """
    p = np.asarray(p, dtype=np.float64)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    adj = np.minimum(1.0, np.maximum.accumulate(ps * (m - np.arange(m)), axis=-1))
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


def _t_answer(diff, se, df, level, smallest_effect=None) -> dict:
    """p, interval and TOST p of t = diff / se with df degrees of freedom (arrays, broadcast)."""
    diff, se, df = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (diff, se, df)))
    tcrit = sps.t.ppf(0.5 + level / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / se
    flat = se <= 0  # every per-seed difference equal: no spread to test against (see _spread)
    p = np.where(flat, np.where(diff == 0, 1.0, 0.0), 2 * sps.t.sf(np.abs(np.where(flat, 0.0, t)), df))
    out = {"diff": diff, "se": se, "df": df, "lo": diff - tcrit * se, "hi": diff + tcrit * se, "p": p}
    if smallest_effect is not None:
        d = float(smallest_effect)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_low = sps.t.sf((diff + d) / se, df)  # H0: diff <= -d
            p_high = sps.t.cdf((diff - d) / se, df)  # H0: diff >= +d
        p_eq = np.maximum(p_low, p_high)
        out["p_equivalence"] = np.where(flat, np.where(np.abs(diff) < d, 0.0, 1.0), p_eq)
    return out


def _spread(sd, x, b, power: int = 1):
    """sd (power 1) or variance (power 2) set to 0 where it is rounding error, below (1e-12 x the values'
    size)^power: equal per-seed differences computed in floating point leave an sd of ~1e-17, which would
    make t and d_z absurd."""
    scale = np.maximum(np.abs(x).max(axis=-1), np.abs(b).max(axis=-1))
    return np.where(np.abs(sd) <= (1e-12 * scale) ** power, 0.0, sd)


def paired_t(x, b, level: float = 0.95, smallest_effect=None) -> dict:
    """Paired t test of x - b over the last axis (seeds matched by position), batched over leading axes.

    {'mean', 'baseline_mean', 'diff', 'se', 'df', 'lo', 'hi', 'p', 'sd', 'effect_size' (d_z = mean
    difference / sd of the differences)[, 'p_equivalence']}.
    """
    x, b = np.asarray(x, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = x - b
    n = d.shape[-1]
    sd = _spread(d.std(axis=-1, ddof=1), x, b)
    out = _t_answer(d.mean(axis=-1), sd / math.sqrt(n), n - 1, level, smallest_effect)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["effect_size"] = np.where(sd > 0, out["diff"] / sd, np.nan)
    out.update(mean=x.mean(axis=-1), baseline_mean=b.mean(axis=-1), sd=sd)
    return out


def welch_t(x, b, level: float = 0.95, smallest_effect=None) -> dict:
    """Welch's t test of mean(x) - mean(b) over the last axes (unequal variances), batched over leading axes.

    df by Welch-Satterthwaite; `effect_size` is Hedges' g (the difference over the pooled sd, times
    J = 1 - 3 / (4 (n_x + n_b) - 9)); `sd` is the pooled sd.
    """
    x, b = np.asarray(x, dtype=np.float64), np.asarray(b, dtype=np.float64)
    nx, nb = x.shape[-1], b.shape[-1]
    vx, vb = _spread(x.var(axis=-1, ddof=1), x, x, 2), _spread(b.var(axis=-1, ddof=1), b, b, 2)
    se = np.sqrt(vx / nx + vb / nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(se > 0, se**4 / ((vx / nx) ** 2 / (nx - 1) + (vb / nb) ** 2 / (nb - 1)), nx + nb - 2.0)
    diff = x.mean(axis=-1) - b.mean(axis=-1)
    out = _t_answer(diff, se, df, level, smallest_effect)
    sp = np.sqrt(((nx - 1) * vx + (nb - 1) * vb) / (nx + nb - 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["effect_size"] = np.where(sp > 0, (1 - 3 / (4 * (nx + nb) - 9)) * diff / sp, np.nan)
    out.update(mean=x.mean(axis=-1), baseline_mean=b.mean(axis=-1), sd=sp)
    return out


def t_power(ncp, df, level: float = 0.95):
    """Power of the two-sided t test at `level` when t is noncentral t(df, ncp) (ncp = true diff / se)."""
    tcrit = sps.t.ppf(0.5 + level / 2, df)
    # scipy's noncentral t returns NaN for some far tails (e.g. cdf(-12.7; df 1, ncp 8), about 1e-17): a far
    # tail holds no probability worth counting
    far = np.abs(ncp) > 4
    return np.where(far & (np.asarray(ncp) < 0), 0.0, np.nan_to_num(sps.nct.sf(tcrit, df, ncp), nan=0.0)) + np.where(
        far & (np.asarray(ncp) > 0), 0.0, np.nan_to_num(sps.nct.cdf(-tcrit, df, ncp), nan=0.0)
    )


def min_detectable(se: float, df: float, level: float = 0.95, power: float = POWER) -> float | None:
    """The smallest true difference the two-sided t test detects with `power`: ncp * se, the ncp solving
    t_power(ncp, df) = power (noncentral t). None without a spread (se 0 or missing) or df < 1."""
    if not (_num(se) and _num(df)) or se <= 0 or df < 1:
        return None
    hi = 1.0
    while t_power(hi, df, level) < power:
        hi *= 2
    return float(optimize.brentq(lambda c: t_power(c, df, level) - power, 0.0, hi, xtol=1e-6)) * se


def seeds_needed(
    diff: float, sd: float, paired: bool, level: float = 0.95, power: float = POWER, max_seeds: int = MAX_SEEDS
) -> int | None:
    """About how many seeds (per setting) detect a true difference `diff` with `power`, at spread `sd`.

    Paired: sd is the sd of the per-seed differences, se = sd / sqrt(n), df = n - 1. Unpaired: sd is the
    pooled sd, n seeds in each group, se = sd sqrt(2 / n), df = 2n - 2. None when it would take more than
    `max_seeds`, or without a spread or a difference.
    """
    if not (_num(diff) and _num(sd)) or sd <= 0 or diff == 0:
        return None
    n = np.arange(2, max_seeds + 1, dtype=np.float64)
    se = sd / np.sqrt(n) if paired else sd * np.sqrt(2 / n)
    df = n - 1 if paired else 2 * n - 2
    ok = np.flatnonzero(t_power(abs(diff) / se, df, level) >= power)
    return int(n[ok[0]]) if ok.size else None


def _sort_key(v):
    return (0, float(v), "") if _num(v) else (1, 0.0, str(v))


def compare_settings(
    rows, metric: str, key: str, baseline, seed_key: str = "seed", smallest_effect=None, level: float = 0.95
) -> list[dict]:
    """Each value of `key` other than `baseline` against the baseline, on `metric`, over seeds.

    `rows`: dicts like results.csv rows (rows without a finite number in `metric` are left out).
    Paired when both settings have the same seeds, each once: the test is then the paired t test on
    per-seed differences (the same seed gives the same initialisation and data order, so the seed's
    share of the spread cancels). When one setting's seeds are all among the other's (a sweep still
    running, a failed run), it is paired on those seeds and the other runs are left out of this
    comparison (`unpaired_left_out` counts them; `n`, `n_baseline`, the means are of the paired runs).
    Otherwise Welch's t test on all runs. `lo`, `hi`: the t interval of the
    difference at `level`. `p_adjusted`: Holm's adjustment over the family, which is **the
    comparisons this call returns** (every value of `key` against the baseline, on one metric):
    the chance that any of them says "higher" or "lower" when no setting differs is at most 1 - level.
    Each metric and each combination of other settings is its own family. `effect_size`: d_z (mean
    difference / sd of the differences) when paired, else Hedges' g. `mde`: the smallest true
    difference detectable with 80% power at this n and spread (two-sided at `level`, noncentral t).
    `seeds_needed`: about how many seeds per setting would detect a difference of `detect` (the
    smallest_effect if given, else the observed |diff|) with 80% power at this spread.
    `verdict`: "higher" / "lower" when p_adjusted < 1 - level; else "equivalent" when
    `smallest_effect` is given and both one-sided tests of |diff| < smallest_effect pass (TOST,
    Holm-adjusted over the family too); else "no evidence" (which is not "no effect").
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}")
    if smallest_effect is not None and not (_num(smallest_effect) and smallest_effect > 0):
        raise ValueError(f"smallest_effect must be a positive number, not {smallest_effect!r}")
    groups: dict = {}
    for r in rows:
        v = r.get(metric)
        if not _num(v):
            continue
        value = next((g for g in groups if _same(g, r.get(key))), r.get(key))
        groups.setdefault(value, []).append((r.get(seed_key), float(v)))
    base_value = next((g for g in groups if _same(g, baseline)), None)
    base = groups.get(base_value, []) if base_value is not None else []
    out = []
    for value in sorted((g for g in groups if base_value is None or not _same(g, base_value)), key=_sort_key):
        out.append(_compare_one(value, groups[value], base, level, smallest_effect))
    valid = [i for i, c in enumerate(out) if c["p"] is not None]
    if valid:
        adj = holm([out[i]["p"] for i in valid])
        adj_eq = holm([out[i]["p_equivalence"] for i in valid]) if smallest_effect is not None else None
        for j, i in enumerate(valid):
            out[i]["p_adjusted"] = float(adj[j])
            if adj_eq is not None:
                out[i]["p_equivalence_adjusted"] = float(adj_eq[j])
    alpha = 1 - level
    for c in out:
        c.update(
            metric=metric,
            key=key,
            baseline=baseline,
            level=level,
            smallest_effect=smallest_effect,
            family_size=len(valid),
        )
        if c["p_adjusted"] is not None and c["p_adjusted"] < alpha:
            c["verdict"] = "higher" if c["diff"] > 0 else "lower"
        elif smallest_effect is not None and (c.get("p_equivalence_adjusted") or 1.0) < alpha:
            c["verdict"] = "equivalent"
        else:
            c["verdict"] = "no evidence"
    return out


def _compare_one(value, pairs, base, level, smallest_effect) -> dict:
    seeds, seeds_b = [s for s, _ in pairs], [s for s, _ in base]
    x, b = np.array([v for _, v in pairs]), np.array([v for _, v in base])
    c = {
        "value": value,
        "n": len(x),
        "n_baseline": len(b),
        "paired": False,
        "mean": float(x.mean()) if len(x) else None,
        "baseline_mean": float(b.mean()) if len(b) else None,
        "diff": None,
        "lo": None,
        "hi": None,
        "p": None,
        "p_adjusted": None,
        "effect_size": None,
        "effect_size_name": None,
        "mde": None,
        "sd": None,
        "detect": None,
        "seeds_needed": None,
        "unpaired_left_out": 0,
    }
    if smallest_effect is not None:
        c.update(p_equivalence=None, p_equivalence_adjusted=None)
    if len(x) and len(b):
        c["diff"] = c["mean"] - c["baseline_mean"]
    unique = len(set(seeds)) == len(seeds) and len(set(seeds_b)) == len(seeds_b) and None not in seeds
    shared = [s for s in seeds if s in set(seeds_b)] if unique else []
    # Paired when one setting's seeds are all among the other's (a sweep still running, or a failed run):
    # the runs whose seed the other setting lacks are left out, and n, n_baseline and `unpaired_left_out` say so.
    paired = len(shared) >= 2 and len(shared) == min(len(seeds), len(seeds_b))
    if paired:
        vx, vb = dict(pairs), dict(base)
        x, b = np.array([vx[s] for s in shared]), np.array([vb[s] for s in shared])
        c.update(
            n=len(shared),
            n_baseline=len(shared),
            mean=float(x.mean()),
            baseline_mean=float(b.mean()),
            unpaired_left_out=len(seeds) + len(seeds_b) - 2 * len(shared),
        )
        t = paired_t(x, b, level, smallest_effect)
    elif len(x) >= 2 and len(b) >= 2:
        t = welch_t(x, b, level, smallest_effect)
    else:
        return c
    c["paired"] = bool(paired)
    for k in ("diff", "lo", "hi", "p", "sd", *(("p_equivalence",) if smallest_effect is not None else ())):
        c[k] = float(t[k])
    es = float(t["effect_size"])
    c["effect_size"] = es if math.isfinite(es) else None
    c["effect_size_name"] = "d_z" if paired else "Hedges' g"
    c["mde"] = min_detectable(float(t["se"]), float(t["df"]), level)
    c["detect"] = float(smallest_effect) if smallest_effect is not None else abs(c["diff"])
    c["seeds_needed"] = seeds_needed(c["detect"], c["sd"], paired, level)
    return c


def verdict_words(c: dict, metric: str = "the metric") -> str:
    """compare_settings' verdict in words, with the difference, its interval, effect size and adjusted p.
    "no evidence of a difference" is never "no effect": a test with few seeds misses real differences."""
    if c.get("p") is None:
        if c.get("diff") is None:
            return "not enough finished runs to say"
        return "too few seeds to test (at least 2 per setting)"
    pct = f"{c['level']:.0%}"
    es = "" if c.get("effect_size") is None else f", {c['effect_size_name']} {c['effect_size']:+.2f}"
    detail = f"({pct} interval {c['lo']:+.3g} to {c['hi']:+.3g}{es}, Holm-adjusted p {c['p_adjusted']:.2g})"
    if c["verdict"] in ("higher", "lower"):
        return f"{metric} {c['verdict']} by {abs(c['diff']):.3g} {detail}"
    if c["verdict"] == "equivalent":
        return f"equivalent within ±{c['smallest_effect']:.3g} (TOST): difference {c['diff']:+.3g} {detail}"
    return f"no evidence of a difference in {metric}: difference {c['diff']:+.3g} {detail}"


def power_words(c: dict) -> str:
    """What this many seeds can detect: the smallest detectable difference (80% power) and about how many
    seeds would detect the difference seen (or the smallest effect of interest)."""
    if c.get("mde") is None:
        return ""
    n = min(c["n"], c["n_baseline"])
    text = f"smallest detectable difference at {n} seeds: {c['mde']:.3g} (80% power)"
    if c.get("detect"):
        need = c.get("seeds_needed")
        x = f"{c['detect']:.3g}"
        text += (
            f"; about {need} seeds would detect a difference of {x}"
            if need
            else f"; more than {MAX_SEEDS} seeds would be needed to detect a difference of {x}"
        )
    return text


def within_setting_spearman(x, y, groups) -> dict:
    """Spearman's correlation of x and y with the setting partialled out: ranks taken within each setting
    (group), centred on the group's mean rank, then pooled (the pooled within-group correlation of ranks).
    A setting that moves both x and y makes no correlation here. {'rho', 'n', 'settings'}; rho None under
    3 runs in groups of at least 2, or without spread."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    g = np.asarray([str(v) for v in groups])
    ok = np.isfinite(x) & np.isfinite(y)
    rx, ry, used = [], [], 0
    for v in np.unique(g[ok]):
        m = ok & (g == v)
        if m.sum() < 2:
            continue
        a, b = ranks(x[m]), ranks(y[m])
        rx.append(a - a.mean())
        ry.append(b - b.mean())
        used += 1
    if not rx:
        return {"rho": None, "n": 0, "settings": 0}
    rx, ry = np.concatenate(rx), np.concatenate(ry)
    n = len(rx)
    den = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    rho = float((rx * ry).sum() / den) if n >= 3 and den > 0 else None
    return {"rho": rho, "n": n, "settings": used}
