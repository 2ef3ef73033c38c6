"""Statistics over seeds: every answer of a sweep as a distribution, not one run (numpy only).

Locatello et al. 2019 ("Challenging common assumptions in the unsupervised learning of
disentangled representations", §5) found that the random seed moves disentanglement scores as
much as the method or its weight. These pure functions say how much:

- `bootstrap_mean_ci`     the mean of a setting's runs with a percentile-bootstrap 95% interval
                          (Efron & Tibshirani 1993, ch. 13);
- `difference_ci`         the difference of two settings' means with its bootstrap interval (each
                          group resampled on its own), and `effect_words` to say it in words;
- `variance_shares`       how much of the spread is between settings and how much is seed
                          (one-way ANOVA sums of squares: SS_total = SS_between + SS_within);
- `ranking_stability`     how well the ranking of settings agrees from seed to seed (Kendall's
                          coefficient of concordance W, and the share of seeds that pick the same best);
- `spearman`, `rank_correlations`  whether unsupervised numbers predict supervised ones across runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NO_EFFECT = "no effect distinguishable from seed variation"


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
    return {"mean": float(x.mean()), "lo": float(np.quantile(means, a)), "hi": float(np.quantile(means, 1 - a)),
            "n": int(len(x))}


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
    return {"diff": float(x.mean() - b.mean()), "lo": float(np.quantile(d, a)), "hi": float(np.quantile(d, 1 - a)),
            "n": int(len(x)), "n_baseline": int(len(b))}


def effect_words(diff: dict, metric: str = "the metric") -> str:
    """The difference in words: NO_EFFECT when the interval contains 0, else 'raises/lowers ...'."""
    if diff.get("diff") is None:
        return "not enough finished runs to say"
    if min(diff.get("n", 0), diff.get("n_baseline", 0)) < 2:  # one seed has no spread to compare against
        return "too few seeds to say (at least 2 per setting)"
    lo, hi = diff["lo"], diff["hi"]
    if lo <= 0 <= hi:
        return NO_EFFECT
    verb = "raises" if diff["diff"] > 0 else "lowers"
    return f"{verb} {metric} by {abs(diff['diff']):.3g} (95% interval {lo:+.3g} to {hi:+.3g})"


def variance_shares(values: Sequence[float], groups: Sequence) -> dict:
    """Share of the variance across runs that lies between settings vs within a setting (seed).

    One-way ANOVA: SS_total = sum (x - mean)^2 = SS_between + SS_within, with SS_between the
    group sizes times the squared distance of each group mean from the grand mean. Runs with a
    missing value are left out. {'setting', 'seed', 'n'}; shares are None when every value is equal.
    """
    pairs = [(g, float(v)) for g, v in zip(groups, values)
             if isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))]
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
    w = 12 * s / (k ** 2 * (n ** 3 - n))
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
