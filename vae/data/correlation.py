"""Subsamples of a factor table in which two factors are correlated (numpy only).

Träuble et al. 2021, "On Disentangled Representations Learned from Correlated Data" (ICML), section 3:
a pair of factors (c1, c2) is correlated by sampling from p(c1, c2) ∝ exp(-(c1 - α·c2)² / 2σ²), the factors
scaled to [0, 1], with α = 1 for a positive and α = -1 (here c2 -> 1 - c2) for a negative correlation.
Here the same kernel weights the rows of any factor table, and rows are drawn without replacement in
proportion to it (the Gumbel-top-k trick: the n largest log w + Gumbel noise, which is successive
sampling without replacement; Kool et al. 2019). The kernel's strength is chosen by bisection so that the drawn
subsample's Pearson correlation of the pair equals the one asked for; both factors keep their support.
"""

from __future__ import annotations

import numpy as np

from vae.base.errors import UserError


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(np.min(x)), float(np.max(x))
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)


def _draw(gumbel: np.ndarray, log_w: np.ndarray, n: int) -> np.ndarray:
    """n rows without replacement, drawn successively with probability ∝ exp(log_w) (Gumbel-top-k)."""
    return np.sort(np.argpartition(-(log_w + gumbel), n - 1)[:n])


def correlated_rows(f1, f2, rho: float, n: int, seed: int = 0, tol: float = 0.005) -> np.ndarray:
    """Sorted indices of n rows of a factor table whose factors f1 and f2 have Pearson correlation ≈ rho.

    `f1`, `f2`: the two factor columns (any numeric values; each is scaled to [0, 1]). Raises UserError
    when n is out of range, the factors are constant, or |rho| is beyond what the table can reach.
    """
    f1, f2 = _unit(f1), _unit(f2)
    N = len(f1)
    if not isinstance(n, (int, np.integer)) or not 2 <= n <= N:
        raise UserError(f"a correlated subsample needs 2..{N:,} rows (the table's size), not {n!r}")
    if not -1.0 < float(rho) < 1.0:
        raise UserError(f"correlation must be strictly between -1 and 1, not {rho!r}")
    if np.ptp(f1) == 0 or np.ptp(f2) == 0:
        raise UserError("both factors must take more than one value to be correlated")
    gumbel = np.random.default_rng(seed).gumbel(size=N)

    def sample(t: float) -> tuple[np.ndarray, float]:
        # t in (-1, 1): strength k = |t| / (1 - |t|) of the kernel exp(-k·(f1 - f2')²), f2' = f2 or 1 - f2
        if t == 0.0:
            log_w = np.zeros(N)
        else:
            other = f2 if t > 0 else 1.0 - f2
            k = 50.0 * abs(t) / (1.0 - abs(t))
            log_w = -k * (f1 - other) ** 2
        rows = _draw(gumbel, log_w, n)
        return rows, float(np.corrcoef(f1[rows], f2[rows])[0, 1])

    lo, hi = -0.9999, 0.9999
    rows_lo, r_lo = sample(lo)
    rows_hi, r_hi = sample(hi)
    if not r_lo - tol <= rho <= r_hi + tol:
        raise UserError(
            f"a correlation of {rho:g} cannot be drawn from this table with {n:,} rows; "
            f"it reaches {r_lo:.2f} to {r_hi:.2f}"
        )
    best = min(((abs(r_lo - rho), rows_lo), (abs(r_hi - rho), rows_hi)), key=lambda p: p[0])
    for _ in range(60):
        mid = (lo + hi) / 2
        rows, r = sample(mid)
        if abs(r - rho) < best[0]:
            best = (abs(r - rho), rows)
        if best[0] <= tol / 5:
            break
        if r < rho:
            lo = mid
        else:
            hi = mid
    return best[1]
