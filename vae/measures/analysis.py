"""What the study looked at, measured: axis alignment, curved factors, the hole.

The study (docs/study.md) judged its latent sheet by eye: a curved 2-D sheet with a hole,
"not disentangled". These functions put numbers on the same questions:

  factor_alignment    -- does each ground-truth factor change the codes along its own latent axis?
  pca_alignment       -- do the principal axes of the latent means lie on latent axes (when defined)?
  pixel_pca           -- the baseline the study had in mind: PCA of the pixels vs the factors
  transect_geometry   -- is a transect's latent path straight, and does it lie on one axis?
  hole_interpolation  -- the hole as a zero-shot test: are hole codes where the sheet, interpolated, puts them?
  hole_analysis       -- reconstruction loss in the hole against the covered ring around it
  covered_region_mask -- the validation points used as the hole's comparison group

numpy + scikit-learn only (no TensorFlow): the dashboard and the trainer call these on
arrays of latent means. Results are plain dicts; `vae.base.fileio.jsonable` turns one into JSON-ready data.
"""

from __future__ import annotations

import math

import numpy as np
import scipy
import scipy.stats
import sklearn
from scipy.interpolate import RBFInterpolator
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import SplineTransformer

from vae.base.errors import UserError

# Two principal axes whose variances differ by less than this fraction of the larger one
# are flagged `degenerate`: with N samples an eigenvalue is only known to about
# lambda*sqrt(2/N) (3% at N = 2000), and the eigenvector of a near-tie can turn freely
# inside the pair, so its angle to the latent axes means nothing.
DEGENERATE_GAP = 0.1
# The tie gate: two leading principal variances count as distinct only when their difference is at
# least this many standard errors. A sample variance along a direction has standard error
# sqrt(Var(p^2) / N) (lambda * sqrt(2 / N) for Gaussian codes), estimated from the codes' own
# fourth moments; an exact tie gives a sample gap below 3 standard errors in about 98% of
# resamples (Gaussian, uniform and Laplace codes, N = 200 and 2,000; tests/test_measures_known_answers.py).
TIE_Z = 3.0
# A latent is active when the variance of its mean over the data exceeds this (Burda et al. 2016,
# as vae.measures.metrics.active_units).
ACTIVE_THRESHOLD = 0.01
PCA_NAME = "principal axes on latent axes"
# A principal variance below this fraction of the total is a dead direction: ties among dead
# directions do not make the score ill-posed (their weight in it is below this fraction).
LEADING_FRACTION = 0.01

# The study's hole (docs/study.md, "The data"): a disc in (a, b), centre (1.25, 1.0), radius 0.3.
HOLE_CENTRE = (1.25, 1.0)
HOLE_RADIUS = 0.3


def _as_codes(codes, name="codes", min_rows=2) -> np.ndarray:
    x = np.asarray(codes, dtype=np.float64)
    if x.ndim != 2:
        raise UserError(f"{name} must be a 2-D array (N, d); got shape {x.shape}.")
    if x.shape[0] < min_rows:
        raise UserError(f"{name} needs at least {min_rows} rows; got {x.shape[0]}.")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{name} contains NaN or inf values.")
    return x


# ---------------------------------------------------------------------------------------
# 1. PCA axis alignment


def alignment_from_covariance(
    cov: np.ndarray,
    degenerate_gap: float = DEGENERATE_GAP,
    n: int | None = None,
    fourth: np.ndarray | None = None,
    active: int | None = None,
) -> dict:
    """pca_alignment's numbers from a (d, d) covariance matrix (eigen-decomposition, largest first).

    `n` (the number of codes) turns on the tie gate: each leading pair's gap must be at least
    TIE_Z standard errors, the standard error of a principal variance being sqrt(fourth_k / n)
    with `fourth[k]` = Var(p_k^2) of the codes' projections (2 lambda_k^2 when not given: Gaussian).
    Without `n` the gate is the relative gap `degenerate_gap` alone (as before). `active` (the
    number of active latents) below 2 marks the score `trivial` (None): one direction lies on a
    latent axis whatever the codes do.
    """
    cov = np.asarray(cov, dtype=np.float64)
    d = cov.shape[0]
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval = np.clip(eigval[order], 0.0, None)
    components = eigvec[:, order].T  # rows are principal axes, unit length
    # A fixed sign (largest entry positive) so the result does not flip between epochs.
    signs = np.sign(components[np.arange(d), np.argmax(np.abs(components), axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]

    total = eigval.sum()
    ratio = eigval / total if total > 0 else np.full(d, np.nan)
    abs_cos = np.clip(np.abs(components), 0.0, 1.0)  # |<principal k, e_i>| = |component k, entry i|
    best = abs_cos.max(axis=1)
    angles = np.degrees(np.arccos(np.clip(best, 0.0, 1.0)))

    floor = 1.0 / math.sqrt(d)
    per_axis = (best - floor) / (1.0 - floor) if d > 1 else np.ones(d)
    score = float(np.sum(ratio * per_axis)) if total > 0 else float("nan")

    degenerate = np.zeros(d, dtype=bool)
    for k in range(d - 1):
        top = max(eigval[k], eigval[k + 1])
        if top <= 0 or (eigval[k] - eigval[k + 1]) / top < degenerate_gap:
            degenerate[k] = degenerate[k + 1] = True
    # The leading principal variances (each >= LEADING_FRACTION of the total) and the smallest
    # ratio lambda_k / lambda_k+1 among them and the next one: 1.0 is an exact tie.
    leading = ratio >= LEADING_FRACTION if total > 0 else np.zeros(d, dtype=bool)
    gaps = [eigval[k] / eigval[k + 1] if eigval[k + 1] > 0 else math.inf for k in range(d - 1) if leading[k]]
    eigengap = float(min(gaps)) if gaps else math.inf
    tie_z = math.inf
    if n is not None and n > 1:
        v4 = np.asarray(fourth, dtype=np.float64) if fourth is not None else 2.0 * eigval**2
        se = np.sqrt(np.clip(v4, 0.0, None) / n)
        zs = [
            (eigval[k] - eigval[k + 1]) / math.hypot(se[k], se[k + 1]) if math.hypot(se[k], se[k + 1]) > 0 else math.inf
            for k in range(d - 1)
            if leading[k]
        ]
        tie_z = float(min(zs)) if zs else math.inf
        conditioned = bool(total > 0 and tie_z >= TIE_Z)
    else:
        conditioned = bool(total > 0 and eigengap >= 1.0 / (1.0 - degenerate_gap))
    trivial = active is not None and active < 2
    if total <= 0:
        reason = "the codes have no variance"
    elif trivial:
        reason = (
            f"trivial: {active} active latent{'s' if active != 1 else ''} (variance > {ACTIVE_THRESHOLD}); "
            "one direction lies on a latent axis whatever the codes do"
        )
    elif not conditioned and n is not None:
        reason = (
            f"principal axes not defined: two principal variances differ by {tie_z:.1f} standard "
            f"errors at N = {n} (needs {TIE_Z:.0f})"
        )
    elif not conditioned:
        reason = (
            f"principal axes not defined: two principal variances within "
            f"{(1 - 1 / eigengap) * 100:.0f}% (needs a gap of {degenerate_gap:.0%})"
        )
    else:
        reason = ""
    return {
        "name": PCA_NAME,
        "explained_variance": eigval,
        "explained_variance_ratio": ratio,
        "components": components,
        "abs_cos": abs_cos,
        "nearest_axis": np.argmax(abs_cos, axis=1),
        "angles_deg": angles,
        "axis_score": per_axis,
        "score": score if conditioned and not trivial else None,
        "score_if_defined": score,
        "conditioned": conditioned,
        "trivial": bool(trivial),
        "active": active,
        "eigengap": eigengap,
        "tie_z": tie_z,
        "tie_z_needed": TIE_Z if n is not None else None,
        "reason": reason,
        "leading": leading,
        "degenerate": degenerate,
        "degenerate_variance_fraction": float(np.sum(ratio[degenerate])) if total > 0 else float("nan"),
        "degenerate_gap": degenerate_gap,
    }


def active_latents(codes, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Boolean (d,): which latents are active, Var(mean code) > threshold (Burda et al. 2016)."""
    x = _as_codes(codes, min_rows=1)
    return x.var(axis=0, ddof=1) > threshold


def pca_alignment(codes, degenerate_gap: float = DEGENERATE_GAP) -> dict:
    """Principal axes on latent axes: how well the principal axes of the latent means lie on the latent axes.

    It says nothing about the factors (codes mixing two factors at any angle can score 1 if
    their principal axes happen to lie on latent axes); factor_alignment asks that question.
    `score` = sum_k evr_k * (max_i |cos(pc_k, e_i)| - 1/sqrt(d)) / (1 - 1/sqrt(d)): 1 when
    every principal axis lies on a latent axis, 0 for the worst tilt (all |cos| = 1/sqrt(d)).
    `degenerate[k]` is True when pc_k's variance is within `degenerate_gap` (relative to the
    larger) of a neighbour's.
    The tie gate uses the number of codes N: a principal variance is known to about
    sqrt(Var(p^2) / N) (lambda sqrt(2 / N) for Gaussian codes), and when two leading principal
    variances (>= 1% of the total) differ by fewer than TIE_Z such standard errors (`tie_z`)
    the principal axes are not defined (any rotation of a near-tied pair fits about as well):
    `conditioned` is False, `score` is None and `reason` says why. With fewer than two active
    latents (variance > ACTIVE_THRESHOLD) the score is `trivial` and None as well.
    `score_if_defined` keeps the number the eigen-solver's directions give, for diagnostics only.
    Follows the PCA-of-the-latent-space idea of the study's part 3 post (docs/study.md); no library
    computes this exact number.
    """
    x = _as_codes(codes)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    eigval, eigvec = np.linalg.eigh(cov)
    proj = (x - x.mean(axis=0)) @ eigvec[:, np.argsort(eigval)[::-1]]
    fourth = np.var(proj**2, axis=0)
    out = alignment_from_covariance(
        cov, degenerate_gap, n=x.shape[0], fourth=fourth, active=int(active_latents(x).sum())
    )
    out["n"] = x.shape[0]
    out["d"] = x.shape[1]
    return out


# ---------------------------------------------------------------------------------------
# 1b. Factor-axis alignment: the supervised answer

# A factor the codes explain less than this (held-out R^2 of the additive spline fit) has no
# direction in code space worth scoring: it counts 0 in the score.
MIN_R2 = 0.1
LOCAL_NEIGHBOURS = 40


def _as_factors(factors, n: int) -> np.ndarray:
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[0] != n:
        raise UserError(f"factors must be an (N, K) array with N = {n} rows (one per code); got shape {f.shape}.")
    if f.shape[1] < 1:
        raise UserError("factors needs at least one column.")
    if not np.all(np.isfinite(f)):
        raise UserError("factors contains NaN or inf values.")
    return f


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norm, out=np.zeros_like(m), where=norm > 0)


def _fit_r2(codes: np.ndarray, f: np.ndarray, seed: int = 0) -> np.ndarray:
    """Held-out R^2 (2-fold) of each factor from an additive cubic-spline fit on the codes.

    Additive (one cubic B-spline per code dim, up to 6 knots, no cross terms): a monotone warp
    of a factor on one axis is explained, noise and dead dims add almost nothing.
    """
    n = codes.shape[0]
    sd = codes.std(axis=0)
    keep = sd > 1e-9 * max(sd.max(), 1e-300)
    if not keep.any():
        return np.zeros(f.shape[1])
    z = (codes[:, keep] - codes[:, keep].mean(axis=0)) / sd[keep]
    knots = int(np.clip(n // 40, 2, 6))
    feats = np.column_stack(
        [np.ones(n), SplineTransformer(n_knots=knots, degree=3, include_bias=False).fit_transform(z)]
    )
    order = np.random.default_rng(seed).permutation(n)
    folds = (order[: n // 2], order[n // 2 :])
    pred = np.zeros_like(f)
    for train, test in (folds, folds[::-1]):
        a = feats[train].T @ feats[train]
        ridge = 1e-6 * np.trace(a) / a.shape[0] * np.eye(a.shape[0])  # the spline basis is collinear
        coef = np.linalg.solve(a + ridge, feats[train].T @ f[train])
        pred[test] = feats[test] @ coef
    ss_res = ((f - pred) ** 2).sum(axis=0)
    ss_tot = ((f - f.mean(axis=0)) ** 2).sum(axis=0)
    return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)


def _alignment_score(abs_cos: np.ndarray, r2: np.ndarray, min_r2: float = MIN_R2):
    """Per-factor scores and their mean from a (K, d) |cos| matrix (see factor_alignment)."""
    k, d = abs_cos.shape
    floor = 1.0 / math.sqrt(2.0)
    rows, cols = linear_sum_assignment(-abs_cos)  # factors on distinct axes, largest total |cos|
    assigned = np.full(k, -1)
    assigned[rows] = cols
    per = np.zeros(k)
    for j in range(k):
        if assigned[j] >= 0 and r2[j] >= min_r2:
            per[j] = np.clip((abs_cos[j, assigned[j]] - floor) / (1.0 - floor), 0.0, 1.0)
    return per, assigned, float(per.mean())


def _local_abs_cos(codes, f, neighbours, max_centres, seed):
    """Local |cos| (K, d): the root-mean-square local Jacobian dz/df, debiased for noise.

    Around each of `max_centres` random centres, codes ~ c + J (f - f0) is fitted on the
    `neighbours` nearest points in standardised factor space. Noise in the codes adds its
    variance to every J^2 (about sigma^2 (X'X)^-1, from the fit's residuals); that variance is
    subtracted before the mean over centres, so independent noise dims average out to ~0.
    A factor whose direction turns along the sheet gets weight on every axis it turns through.
    """
    n, k = f.shape
    sd = f.std(axis=0)
    fs = (f - f.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    neighbours = int(min(max(neighbours, 2 * (k + 1)), n))
    rng = np.random.default_rng(seed)
    centres = rng.choice(n, min(max_centres, n), replace=False)
    _, idx = NearestNeighbors(n_neighbors=neighbours).fit(fs).kneighbors(fs[centres])
    sq = np.zeros((k, codes.shape[1]))
    noise = np.zeros((k, codes.shape[1]))
    used = 0
    for rows in idx:
        x = np.column_stack([np.ones(len(rows)), fs[rows] - fs[rows].mean(axis=0)])
        xtx_inv = np.linalg.pinv(x.T @ x)
        coef = xtx_inv @ x.T @ codes[rows]  # (1 + K, d)
        dof = len(rows) - (k + 1)
        if dof <= 0:
            continue
        resid_var = ((codes[rows] - x @ coef) ** 2).sum(axis=0) / dof  # (d,)
        sq += coef[1:] ** 2
        noise += np.diag(xtx_inv)[1:, None] * resid_var[None, :]
        used += 1
    rms = np.sqrt(np.clip((sq - noise) / max(used, 1), 0.0, None))
    return _unit_rows(rms), neighbours, used


def _rank_standardise(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each live latent replaced by its normal scores (ranks -> standard normal quantiles); dead ones dropped.

    Invariant to any strictly monotone map of a latent (a scale, a sign, a warp). Returns the
    transformed (N, d_live) codes and the indices of the live latents.
    """
    n = codes.shape[0]
    sd = codes.std(axis=0)
    live = np.flatnonzero(sd > 1e-9 * max(sd.max(), 1e-300))
    if live.size == 0:
        return np.zeros((n, 0)), live
    ranks = scipy.stats.rankdata(codes[:, live], axis=0)  # ties share their mean rank
    z = scipy.stats.norm.ppf((ranks - 0.5) / n)
    return (z - z.mean(axis=0)) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0), live


_DESIGN_CACHE: dict = {}  # the last factors' spline design: chance_levels scores 200 rotations of the same factors


def _factor_design(f: np.ndarray, knots: int):
    """factor_movement's additive spline design of the factors, its column blocks and its ridged normal matrix.

    It depends on the factors alone, so the last one is kept (the same numbers, computed once for the
    rotations of one set of codes)."""
    key = (f.shape, knots, f.tobytes())
    if key in _DESIGN_CACHE:
        return _DESIGN_CACHE[key]
    n, k = f.shape
    blocks, cols = [], []
    start = 1
    for j in range(k):
        fj = f[:, j : j + 1]
        if np.ptp(fj) <= 0:
            blocks.append(np.zeros((n, 0)))
            cols.append(slice(start, start))
            continue
        basis = SplineTransformer(n_knots=knots, degree=3, knots="quantile", include_bias=False).fit_transform(fj)
        basis = basis - basis.mean(axis=0)
        blocks.append(basis)
        cols.append(slice(start, start + basis.shape[1]))
        start += basis.shape[1]
    design = np.column_stack([np.ones(n), *blocks])
    a = design.T @ design
    ridge = 1e-8 * np.trace(a) / a.shape[0] * np.eye(a.shape[0])
    ridge[0, 0] = 0.0
    a = a + ridge
    for arr in (design, a):
        arr.setflags(write=False)
    _DESIGN_CACHE.clear()
    _DESIGN_CACHE[key] = (design, cols, a)
    return _DESIGN_CACHE[key]


def factor_movement(codes, factors, seed: int = 0) -> dict:
    """How much each factor moves each latent, nonlinearly and scale-free: the (K, d) matrix `movement`.

    Each live latent is rank-transformed to normal scores (`_rank_standardise`: unit variance,
    invariant to scale, sign and monotone warps), then fitted by an additive model in the factors,
    z_i ~ c + sum_k g_ik(f_k), one cubic B-spline per factor (knots at the factor's quantiles, so a
    non-rectangular or correlated support is covered). movement[k, i] = std of g_ik(f_k), debiased
    for noise (the variance a spline of p_k columns fits to pure noise, p_k / N times the residual
    variance, is subtracted): the part of latent i that factor k alone moves, in units of latent
    i's own spread. Correlated factors are attributed jointly (z_1 = a gives movement 0 to b even
    when a and b correlate); a latent that bends with a factor (sin, cos of it) is moved by it just
    as a straight one is; dead latents get 0. A latent moved by an interaction alone (a * b of
    centred factors, uncorrelated with each) has no additive part and is not seen.
    """
    x = _as_codes(codes, min_rows=3)
    f = _as_factors(factors, x.shape[0])
    n, d = x.shape
    k = f.shape[1]
    z, live = _rank_standardise(x)
    movement = np.zeros((k, d))
    if live.size == 0:
        return {"movement": movement, "live": live}
    knots = int(np.clip(n // 60, 2, 6))
    design, cols, a_ridge = _factor_design(f, knots)
    coef = np.linalg.solve(a_ridge, design.T @ z)  # (1 + sum p_k, d_live)
    resid_var = ((z - design @ coef) ** 2).sum(axis=0) / max(n - design.shape[1], 1)
    for j, sl in enumerate(cols):
        p = sl.stop - sl.start
        if p == 0:
            continue
        part = design[:, sl] @ coef[sl]  # (N, d_live)
        var = part.var(axis=0) - p / n * resid_var
        movement[j, live] = np.sqrt(np.clip(var, 0.0, None))
    return {"movement": movement, "live": live, "knots": knots}


def factor_alignment(
    codes,
    factors,
    local: bool = True,
    neighbours: int = LOCAL_NEIGHBOURS,
    max_centres: int = 300,
    seed: int = 0,
    min_r2: float = MIN_R2,
    active=None,
) -> dict:
    """Does each ground-truth factor move the codes along its own latent axis, and that axis only?

    `codes` (N, d) latent means, `factors` (N, K) continuous ground truth (K <= d to score 1).
    `movement[k, i]` (factor_movement): how much factor k alone moves latent i, nonlinearly, in
    units of latent i's spread (each latent rank-transformed first, so the score is unchanged by
    scaling, flipping or monotonically warping any latent axis). `abs_cos[k]` = movement[k] /
    |movement[k]|: 1 on the latent factor k moves when it moves one latent only; 1/sqrt(2) when
    it moves two latents as much (45 degrees, a factor bent over two axes as on a semicircle, or
    a factor that also moves a latent shared with another factor).
    `r2[k]`: held-out R^2 of factor k from an additive spline fit on the codes (how much of it
    the codes hold). `assigned_axis`: factors put on distinct axes (Hungarian assignment,
    largest total |cos|); two factors on one axis cannot both get it.

    score = mean over factors of clip((abs_cos[k, assigned axis] - 1/sqrt(2)) / (1 - 1/sqrt(2)),
    0, 1), a factor with r2 < min_r2 counting 0: 1 when every factor moves its own axis only;
    0 at 45 degrees between two axes, or for a factor spread evenly over two axes; about 0.5 when
    two of two factors share one axis; about 0.37 for z = (a, b, a + b) (a shared nuisance axis,
    whatever its scale: the more of it the codes carry the lower the score).

    `directions` / `slopes`: the global linear direction of each factor in code space (a
    least-squares fit codes ~ c + A factors, debiased for noise) for drawing arrows; they are not
    scored. With `local`, `local` holds the linear directions' |cos| from local neighbourhoods
    (the Jacobian of codes on factors fitted on the `neighbours` nearest points in standardised
    factor space around `max_centres` random centres) and their score, reported, not scored.

    `active` (boolean (d,), e.g. active_latents(codes) for a VAE's latent means): latents marked
    False are treated as dead (movement 0). The rank transform gives any latent that varies at all
    a full spread, so a latent the model has collapsed below its encoder's noise (Var(mu) <= 0.01
    against the prior's 1) but that still wiggles with a factor would otherwise count as an axis.
    Without `active` every latent counts, and the score is invariant to each latent's scale.
    """
    x = _as_codes(codes, min_rows=3)
    f = _as_factors(factors, x.shape[0])
    n, d = x.shape
    if active is not None:
        mask = np.asarray(active, dtype=bool).ravel()
        if mask.size != d:
            raise UserError(f"active must have one entry per latent ({d}); got {mask.size}.")
        x = np.where(mask[None, :], x, 0.0)
    k = f.shape[1]
    if not 2 <= d <= 64:
        raise UserError(f"factor_alignment needs 2 to 64 code dims; got {d}.")
    if n < 2 * (k + 1):
        raise UserError(f"factor_alignment needs at least {2 * (k + 1)} rows for {k} factors; got {n}.")
    design = np.column_stack([np.ones(n), f - f.mean(axis=0)])
    xtx_inv = np.linalg.pinv(design.T @ design)
    coef = xtx_inv @ design.T @ x  # (1 + K, d)
    jac = coef[1:]
    # Debias for noise: a code dim that does not depend on factor k still gets a slope of
    # about its residual std / (std_k sqrt N); its expected square is subtracted.
    resid_var = ((x - design @ coef) ** 2).sum(axis=0) / max(n - k - 1, 1)
    sampling_var = np.diag(xtx_inv)[1:, None] * resid_var[None, :]
    debiased = np.sign(jac) * np.sqrt(np.clip(jac**2 - sampling_var, 0.0, None))
    directions = _unit_rows(debiased)
    moved = factor_movement(x, f, seed)
    movement = moved["movement"]
    abs_cos = _unit_rows(movement)
    best = abs_cos.max(axis=1)
    r2 = _fit_r2(x, f, seed)
    per, assigned, score = _alignment_score(abs_cos, r2, min_r2)
    notes = []
    if k > d:
        notes.append(f"{k} factors on {d} axes: at most {d} can have their own axis")
    weak = np.flatnonzero(r2 < min_r2)
    if weak.size:
        notes.append(f"factors {weak.tolist()} are not held by the codes (R^2 < {min_r2}) and count 0")
    out = {
        "directions": directions,
        "slopes": np.linalg.norm(jac, axis=1),
        "movement": movement,
        "abs_cos": abs_cos,
        "nearest_axis": np.argmax(abs_cos, axis=1),
        "angles_deg": np.degrees(np.arccos(np.clip(best, 0.0, 1.0))),
        "assigned_axis": assigned,
        "per_factor": per,
        "r2": r2,
        "score": score,
        "score_uses": "nonlinear movement of each rank-transformed latent by each factor (additive splines)",
        "n": n,
        "d": d,
        "k": k,
        "min_r2": min_r2,
        "active": None if active is None else np.asarray(active, dtype=bool),
        "note": "; ".join(notes),
    }
    if local:
        loc_cos, used_neighbours, centres = _local_abs_cos(x, f, neighbours, max_centres, seed)
        loc_per, loc_assigned, loc_score = _alignment_score(loc_cos, r2, min_r2)
        out["local"] = {
            "abs_cos": loc_cos,
            "nearest_axis": np.argmax(loc_cos, axis=1),
            "assigned_axis": loc_assigned,
            "per_factor": loc_per,
            "score": loc_score,
            "neighbours": used_neighbours,
            "centres": centres,
        }
    return out


def pixel_pca(images, factors, factor_names, n_components: int = 10, seed: int = 0) -> dict:
    """PCA of the pixels (sklearn randomized PCA) and |Pearson r| of each factor with each pixel PC.

    The baseline the study had in mind (its part 3 post): if the factors were linear in pixel space,
    each factor would line up with one pixel principal component. `abs_r[k, j]` =
    |corr(factor k, projection on PC j)| (0 where either is constant).
    """
    imgs = np.asarray(images)
    if imgs.ndim < 2:
        raise UserError(f"images must be (N, H, W) or (N, P); got shape {imgs.shape}.")
    n = imgs.shape[0]
    x = imgs.reshape(n, -1).astype(np.float32) / 255.0
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim == 1:
        f = f[:, None]
    if f.shape[0] != n:
        raise UserError(f"factors has {f.shape[0]} rows but there are {n} images.")
    names = list(factor_names)
    if len(names) != f.shape[1]:
        raise UserError(f"{len(names)} factor names for {f.shape[1]} factor columns.")
    k = int(min(n_components, n - 1, x.shape[1]))
    if k < 1:
        raise UserError("pixel_pca needs at least 2 images.")
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed)
    proj = pca.fit_transform(x)
    abs_r = np.zeros((f.shape[1], k))
    fc = f - f.mean(axis=0)
    pc = proj - proj.mean(axis=0)
    fs = np.sqrt((fc**2).sum(axis=0))
    ps = np.sqrt((pc**2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (fc.T @ pc) / np.outer(fs, ps)
    abs_r = np.nan_to_num(np.abs(r), nan=0.0, posinf=0.0, neginf=0.0)
    shape = imgs.shape[1:]
    return {
        "factor_names": names,
        "n_components": k,
        "explained_variance_ratio": pca.explained_variance_ratio_,
        "components": pca.components_.reshape((k,) + tuple(shape)),
        "mean_image": pca.mean_.reshape(shape),
        "projections": proj,
        "abs_r": abs_r,
        "best_component": np.argmax(abs_r, axis=1),
        "best_abs_r": abs_r.max(axis=1),
        "n": n,
        "svd_solver": "randomized",
        "sklearn_version": sklearn.__version__,
    }


# ---------------------------------------------------------------------------------------
# 1c. What the entanglement terms prefer on given codes (numpy versions of vae.model.losses')

ENTANGLEMENT_MODES = ("seed", "covariance", "dip-i")
DIP_LAMBDA_D = 10.0  # as vae.model.losses.DIP_LAMBDA_D


def entanglement_value(codes, mode: str = "seed") -> float:
    """One entanglement term of (N, d) codes, in numpy, as vae.model.losses.entanglement computes it
    on a batch: `seed` mean over pairs i<j of mean |z_i z_j| (uncentred), `covariance` mean over
    pairs of |Cov_ij|, `dip-i` sum_{i!=j} Cov_ij^2 + 10 sum_i (Cov_ii - 1)^2 (Cov with N - 1)."""
    x = _as_codes(codes)
    return float(_entanglement_values(x[None], mode)[0])


def _entanglement_values(x: np.ndarray, mode: str) -> np.ndarray:
    """The term for a stack (M, N, d) of code sets; shape (M,)."""
    d = x.shape[2]
    iu = np.triu_indices(d, k=1)
    if mode == "seed":
        vals = np.stack([np.mean(np.abs(x[:, :, i] * x[:, :, j]), axis=1) for i, j in zip(*iu)], axis=1)
        return vals.mean(axis=1)
    xc = x - x.mean(axis=1, keepdims=True)
    cov = np.einsum("mni,mnj->mij", xc, xc) / max(x.shape[1] - 1, 1)
    if mode == "covariance":
        return np.abs(cov[:, iu[0], iu[1]]).mean(axis=1)
    if mode == "dip-i":
        diag = np.diagonal(cov, axis1=1, axis2=2)
        off = (cov**2).sum(axis=(1, 2)) - (diag**2).sum(axis=1)
        return off + DIP_LAMBDA_D * ((diag - 1.0) ** 2).sum(axis=1)
    raise UserError(f"unknown entanglement mode {mode!r}; use one of {', '.join(ENTANGLEMENT_MODES)}")


def entanglement_profile(codes, mode: str = "seed", angles=None, max_codes: int = 5000, seed: int = 0) -> dict:
    """What an entanglement term prefers on these codes: its value as the codes are rotated in each latent plane.

    For each pair of latents (i, j) the codes are rotated by each angle (degrees) in the (i, j)
    plane, the other latents unchanged, and the term `mode` (entanglement_value) is computed.
    `values[p]` is the profile of plane `planes[p]` over `angles`, `relative[p]` the same divided
    by its value at 0 degrees, `best_angle[p]` the angle with the lowest value: 0 (or 90) when the
    term prefers the codes as they are, 45 when it prefers them mixed. Known answers
    (tests/test_measures_known_answers.py): the `seed` term on a uniform square is lowest at 45
    degrees (E|z1 z2| = 1/4 aligned, 1/6 at 45 for the unit square [-1, 1]^2), on a Laplace one at 0.
    Up to `max_codes` codes are used (a random subset).
    """
    x = _as_codes(codes)
    if mode not in ENTANGLEMENT_MODES:
        raise UserError(f"unknown entanglement mode {mode!r}; use one of {', '.join(ENTANGLEMENT_MODES)}")
    n, d = x.shape
    if d < 2:
        raise UserError("entanglement_profile needs codes with at least 2 latents.")
    if n > max_codes:
        x = x[np.sort(np.random.default_rng(seed).choice(n, max_codes, replace=False))]
    ang = np.arange(0.0, 90.1, 5.0) if angles is None else np.asarray(angles, dtype=np.float64).ravel()
    if ang.size == 0 or not np.all(np.isfinite(ang)):
        raise UserError("angles must be a non-empty list of finite numbers (degrees).")
    planes = [(i, j) for i in range(d) for j in range(i + 1, d)]
    values = np.zeros((len(planes), ang.size))
    t = np.radians(ang)
    for p, (i, j) in enumerate(planes):
        stack = np.repeat(x[None], ang.size, axis=0)  # (A, N, d)
        c, s_ = np.cos(t)[:, None], np.sin(t)[:, None]
        stack[:, :, i] = c * x[None, :, i] - s_ * x[None, :, j]
        stack[:, :, j] = s_ * x[None, :, i] + c * x[None, :, j]
        values[p] = _entanglement_values(stack, mode)
    at0 = np.array([float(_entanglement_values(x[None], mode)[0])] * len(planes))
    relative = values / np.where(at0 != 0, at0, 1.0)[:, None]
    return {
        "mode": mode,
        "angles": ang,
        "planes": planes,
        "values": values,
        "relative": relative,
        "best_angle": ang[np.argmin(values, axis=1)],
        "value_at_0": at0,
        "n": int(x.shape[0]),
        "d": d,
    }


# ---------------------------------------------------------------------------------------
# 2. Curved factors: the latent paths of the transects


def transect_geometry(mu_path) -> dict:
    """Shape of an ordered (L, d) latent path.

    straightness = chord / path length (1 on a line, 2/pi on a half circle);
    linear_ratio = s_1 / sum(s) of the centred points' singular values (1: lies on a line);
    axis_ratio = max_i std_i / sum_i std_i (1: moves along one latent axis only).
    A path can be linear but tilted (linear_ratio 1, axis_ratio < 1) or curved.
    """
    p = _as_codes(mu_path, "mu_path")
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    length = float(seg.sum())
    chord = float(np.linalg.norm(p[-1] - p[0]))
    centred = p - p.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    std = p.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        straightness = chord / length if length > 0 else float("nan")
        linear_ratio = float(s[0] / s.sum()) if s.sum() > 0 else float("nan")
        axis_ratio = float(std.max() / std.sum()) if std.sum() > 0 else float("nan")
    return {
        "path": p,
        "n_points": p.shape[0],
        "path_length": length,
        "chord": chord,
        "straightness": float(straightness),
        "singular_values": s,
        "linear_ratio": linear_ratio,
        "main_direction": vt[0],
        "std": std,
        "axis_ratio": axis_ratio,
        "main_axis": int(np.argmax(std)),
    }


def transects_geometry(mu, transect_labels, point_numbers) -> dict:
    """transect_geometry for each transect (P1, P2, P3...), points sorted by point number.

    Rows whose label is empty or None are skipped; returns {name: geometry}, names sorted.
    """
    m = _as_codes(mu, "mu", min_rows=1)
    labels = np.asarray(transect_labels, dtype=object)
    points = np.asarray(point_numbers)
    if labels.shape[0] != m.shape[0] or points.shape[0] != m.shape[0]:
        raise UserError("mu, transect_labels and point_numbers must have the same number of rows.")
    names = sorted({str(v) for v in labels if v is not None and str(v) not in ("", "nan")})
    out = {}
    for name in names:
        rows = np.flatnonzero(np.array([str(v) == name for v in labels]))
        rows = rows[np.argsort(points[rows], kind="stable")]
        if rows.size < 2:
            continue
        geo = transect_geometry(m[rows])
        geo["points"] = points[rows]
        out[name] = geo
    return out


# ---------------------------------------------------------------------------------------
# 3. The hole, as a zero-shot test


def covered_region_mask(a, b, centre=HOLE_CENTRE, radius: float = HOLE_RADIUS, margin: float | None = 0.3):
    """Validation points to compare the hole with: the ring radius < dist <= radius + margin.

    The ring, not all of the covered region, because difficulty varies across (a, b)
    (the study: small, low-b shapes reconstruct worst); the ring holds shapes like the hole's,
    so a higher loss in the hole is due to the missing training data, not to harder shapes.
    With the default margin 0.3 the ring is 3x the hole's area: 61 of the punctured set's
    211 validation points (147 of the full set's 501). margin=None gives simply "outside
    the hole".
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    dist = np.hypot(a - centre[0], b - centre[1])
    outside = dist > radius
    if margin is None:
        return outside
    return outside & (dist <= radius + margin)


def hole_analysis(recon_loss_hole, recon_loss_val_covered) -> dict:
    """Reconstruction loss in the hole against the covered ring (covered_region_mask).

    Where the codes sit is hole_interpolation's question; this is the decoder's side: a
    `recon_ratio_*` near 1 means unseen shapes reconstruct about as well as seen ones nearby.
    """
    lh = np.asarray(recon_loss_hole, dtype=np.float64).ravel()
    lc = np.asarray(recon_loss_val_covered, dtype=np.float64).ravel()
    if lh.size == 0 or lc.size == 0:
        raise UserError("hole_analysis needs at least one hole loss and one covered-region loss.")
    return {
        "n_hole": lh.size,
        "n_covered": lc.size,
        "recon_hole_mean": float(lh.mean()),
        "recon_hole_median": float(np.median(lh)),
        "recon_covered_mean": float(lc.mean()),
        "recon_covered_median": float(np.median(lc)),
        "recon_ratio_mean": float(lh.mean() / lc.mean()) if lc.mean() != 0 else float("nan"),
        "recon_ratio_median": float(np.median(lh) / np.median(lc)) if np.median(lc) != 0 else float("nan"),
    }


HOLE_NEIGHBOURS = 64
HOLE_SMOOTHING = 1.0
HOLE_AVERAGE = 16
HOLE_BINS = 4


def hole_interpolation(
    codes_train,
    factors_train,
    codes_eval,
    factors_eval,
    centre=HOLE_CENTRE,
    radius: float = HOLE_RADIUS,
    margin: float = 0.3,
    smoothing: float = HOLE_SMOOTHING,
    neighbours: int | None = HOLE_NEIGHBOURS,
    average: int = HOLE_AVERAGE,
    bins: int = HOLE_BINS,
) -> dict:
    """The hole as a zero-shot test: are the hole images' codes where the sheet, interpolated, puts them?

    A smooth map factors -> codes is fitted on the training set only (scipy RBFInterpolator:
    thin-plate spline with a linear term, `smoothing` against encoder noise, each prediction
    from the `neighbours` nearest training points; factors standardised first). It is exact for
    a linear map. The evaluated images' codes are predicted from their factors; each image's
    error |prediction - code| is first averaged (as a vector) over the image and its
    `average` - 1 nearest images of the same group (hole or covered ring) in factor space: the
    systematic error, where the encoder puts those shapes, not its scatter from image to image.
    Errors are fractions of the hole's diameter in code space as the fitted map places it (the
    mean distance between the images of opposite points of the hole's rim).

      ring_error = root-mean-square error over the covered ring radius < dist <= radius + margin
                   (the same ring as covered_region_mask): the floor that encoder noise and the
                   map's own error give where training images were seen
      profile    = the hole cut into `bins` annuli of equal area by distance from the rim (the
                   last one is the inner half of the radius); per annulus its RMS error and its
                   `excess` over the ring, sqrt(max(rms^2 - ring_error^2, 0))
      hole_error = the largest excess over the annuli (annuli with fewer than 5 images are left
                   out): a defect confined to the inner part of the hole is not hidden by a median
                   over the whole disc, and noise the ring has as well is not counted

    `hole_error_raw` is the largest annulus RMS without the ring subtracted, `hole_rms` the RMS
    over the whole hole, `ratio` = hole_rms / ring_error (about 1 when unseen shapes land on the
    sheet as well as seen ones; read it with care when ring_error is near 0),
    `hole_error_median` the median systematic error over the hole (the earlier headline).
    Known answers (tests/test_hole.py): a smooth sheet (linear or gently curved) with noise up to
    10% of its extent gives a lower hole_error than hole codes snapped to the code of the nearest
    covered training image with the same noise; collapsing the hole onto one code scores at least
    the mean distance the collapse implies (about 1/3 of the diameter for the centre's code, about
    0.57 for a rim code); a bump confined to the hole's inner half is caught.
    """
    ctr = _as_codes(codes_train, "codes_train", min_rows=3)
    cev = _as_codes(codes_eval, "codes_eval", min_rows=1)
    if cev.shape[1] != ctr.shape[1]:
        raise UserError(f"codes_eval has {cev.shape[1]} dims but codes_train has {ctr.shape[1]}.")
    ftr = _as_factors(factors_train, ctr.shape[0])
    fev = _as_factors(factors_eval, cev.shape[0])
    centre = np.asarray(centre, dtype=np.float64).ravel()
    if ftr.shape[1] != centre.size or fev.shape[1] != centre.size:
        raise UserError(
            f"the hole's centre has {centre.size} coordinates; the factors need as many columns "
            f"(got {ftr.shape[1]} and {fev.shape[1]})."
        )
    if not radius > 0:
        raise UserError(f"hole radius must be > 0, not {radius!r}")
    mean, sd = ftr.mean(axis=0), ftr.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    nb = None if neighbours is None or neighbours >= ctr.shape[0] else int(neighbours)
    fit = RBFInterpolator(
        (ftr - mean) / sd, ctr, kernel="thin_plate_spline", degree=1, smoothing=smoothing, neighbors=nb
    )

    def predict(fac):
        return fit((np.atleast_2d(fac) - mean) / sd)

    # the hole's rim: a circle in the first two factor dims (a segment when K = 1; per axis above 2)
    if centre.size >= 2:
        t = np.linspace(0.0, np.pi, 32, endpoint=False)
        dirs = np.zeros((t.size, centre.size))
        dirs[:, 0], dirs[:, 1] = np.cos(t), np.sin(t)
        if centre.size > 2:
            dirs = np.vstack([dirs, np.eye(centre.size)[2:]])
    else:
        dirs = np.ones((1, 1))
    rim_a, rim_b = predict(centre + radius * dirs), predict(centre - radius * dirs)
    diameter = float(np.mean(np.linalg.norm(rim_a - rim_b, axis=1)))

    dist = np.linalg.norm(fev - centre, axis=1)
    in_hole = dist <= radius
    in_ring = (dist > radius) & (dist <= radius + margin)
    resid = cev - predict(fev) if cev.shape[0] else np.zeros((0, ctr.shape[1]))
    scale = diameter if diameter > 0 else float("nan")
    # Systematic error: each image's residual averaged with its group's `average` nearest
    # images in factor space (the encoder's scatter averages out, a displacement does not).
    systematic = np.full(cev.shape[0], np.nan)
    for group in (in_hole, in_ring):
        rows = np.flatnonzero(group)
        if rows.size:
            kk = int(min(average, rows.size))
            _, idx = NearestNeighbors(n_neighbors=kk).fit((fev[rows] - mean) / sd).kneighbors((fev[rows] - mean) / sd)
            systematic[rows] = np.linalg.norm(resid[rows][idx].mean(axis=1), axis=1) / scale
    rel = np.linalg.norm(resid, axis=1) / scale
    ring_error = float(np.sqrt(np.mean(systematic[in_ring] ** 2))) if in_ring.any() else float("nan")
    floor = ring_error if math.isfinite(ring_error) else 0.0
    from_rim = radius - dist  # 0 at the rim, radius at the centre
    # equal-area annuli: radius * sqrt(k / bins) from the centre
    edges_r = radius * np.sqrt(np.arange(bins + 1) / bins)  # from the centre outwards
    profile = []
    for j in range(bins):
        lo_r, hi_r = edges_r[bins - 1 - j], edges_r[bins - j]  # outermost annulus first
        rows = in_hole & (dist > lo_r if lo_r > 0 else dist >= 0) & (dist <= hi_r)
        count = int(rows.sum())
        rms = float(np.sqrt(np.mean(systematic[rows] ** 2))) if count else float("nan")
        excess = float(np.sqrt(max(rms**2 - floor**2, 0.0))) if count else float("nan")
        profile.append(
            {
                "from_rim_lo": float(radius - hi_r),
                "from_rim_hi": float(radius - lo_r),
                "from_rim_mid": float(np.median(from_rim[rows])) if count else float(radius - (lo_r + hi_r) / 2),
                "n": count,
                "rms": rms,
                "excess": excess,
            }
        )
    scored = [p for p in profile if p["n"] >= 5]
    hole_error = max((p["excess"] for p in scored), default=float("nan"))
    hole_raw = max((p["rms"] for p in scored), default=float("nan"))
    hole_rms = float(np.sqrt(np.mean(systematic[in_hole] ** 2))) if in_hole.any() else float("nan")
    notes = []
    if not in_hole.any():
        notes.append("no evaluated image lies in the hole")
    if not in_ring.any():
        notes.append("no evaluated image lies in the covered ring")
    return {
        "hole_error": hole_error,
        "hole_error_raw": hole_raw,
        "hole_rms": hole_rms,
        "hole_error_median": float(np.median(systematic[in_hole])) if in_hole.any() else float("nan"),
        "ring_error": ring_error,
        "ratio": hole_rms / ring_error if ring_error and math.isfinite(ring_error) else float("nan"),
        "profile": profile,
        "diameter": diameter,
        "n_train": ctr.shape[0],
        "n_hole": int(in_hole.sum()),
        "n_ring": int(in_ring.sum()),
        "hole_scatter": float(np.median(rel[in_hole])) if in_hole.any() else float("nan"),
        "ring_scatter": float(np.median(rel[in_ring])) if in_ring.any() else float("nan"),
        "errors": systematic,
        "errors_single": rel,
        "in_hole": in_hole,
        "in_ring": in_ring,
        "from_rim": from_rim,
        "center": centre,
        "radius": float(radius),
        "margin": float(margin),
        "settings": {
            "map": "scipy RBFInterpolator, thin_plate_spline, degree 1 (linear term)",
            "smoothing": smoothing,
            "neighbors": nb,
            "factors": "standardised by the training set",
            "average": average,
            "bins": bins,
            "headline": "largest RMS excess over the covered ring among equal-area annuli of the hole",
            "scipy_version": scipy.__version__,
        },
        "note": "; ".join(notes),
    }


def hole_of_spec(spec) -> tuple[tuple[float, float], float]:
    """A dataset's hole as (centre, radius) in (a, b), from its spec (dataset.json's `spec`); the study's
    hole when the spec names none (datasets written before the hole could be moved)."""
    spec = spec or {}
    centre = spec.get("hole_center", HOLE_CENTRE)
    return (float(centre[0]), float(centre[1])), float(spec.get("hole_radius", HOLE_RADIUS))


def snapshot_alignments(codes, factors=None) -> tuple[dict | None, dict]:
    """(factor alignment, PCA alignment) of one set of codes: the pair the Embedding page and evaluation.json
    report side by side. The factor alignment (over the active latents) is None without factors (an imported
    dataset)."""
    pca = pca_alignment(codes)
    return (None if factors is None else factor_alignment(codes, factors, active=active_latents(codes))), pca


def hole_test(codes_train, ab_train, codes_hole, ab_hole, codes_validation, ab_validation, spec=None) -> dict:
    """The hole as a zero-shot test of one model's codes: `hole_interpolation` fitted on the training codes
    and their (a, b), evaluated on the hole images and the validation images (whose covered ring is the
    reference), with the dataset's own hole (`hole_of_spec`)."""
    centre, radius = hole_of_spec(spec)
    return hole_interpolation(
        codes_train,
        ab_train,
        np.concatenate([codes_hole, codes_validation]),
        np.concatenate([ab_hole, ab_validation]),
        centre=centre,
        radius=radius,
    )


# ---------------------------------------------------------------------------------------
# Chance levels: what an alignment measure scores on randomly rotated codes

# The measures rotation_baseline knows by name; each returns a number (or None where undefined).
CHANCE_MEASURES = {
    "factor_alignment": lambda codes, factors: factor_alignment(
        codes, factors, local=False, active=active_latents(codes)
    )["score"],
    "pca_alignment": lambda codes, factors: pca_alignment(codes)["score"],
}
CHANCE_MAX_CODES = 2000  # rotation_baseline subsamples the codes to this many (seeded) to stay cheap


def random_rotations(n: int, d: int, seed: int = 0) -> np.ndarray:
    """(n, d, d) orthogonal matrices drawn uniformly (Haar measure on O(d)): the QR decomposition of a
    standard Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri 2007). The alignment
    measures do not see the sign of a latent axis, so O(d) and SO(d) give them the same distribution."""
    g = np.random.default_rng(seed).standard_normal((n, d, d))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]


def rotation_baseline(
    codes, factors, measure, n: int = 200, seed: int = 0, level: float = 0.95, max_codes: int = CHANCE_MAX_CODES
) -> dict:
    """Chance for an alignment measure: its value over `n` uniformly random rotations of the codes.

    With an objective that does not prefer any direction of the latent space (isotropic noise, an L2 KL:
    the constant-σ network at γ = 0) a trained code's orientation is arbitrary, and its alignment is what
    a random rotation of its sheet scores. `measure`: a name in CHANCE_MEASURES ("factor_alignment": the
    global score; "pca_alignment"), or a callable (codes, factors) -> number or {'score': number}. The
    codes are centred, then rotated (codes @ Q, Q Haar-uniform; see random_rotations); more than
    `max_codes` codes are subsampled (seeded, without replacement) first, the same rows for every
    rotation. {'mean', 'lo', 'hi' (the central `level` band of the rotated scores), 'sd', 'n' (rotations
    that gave a number), 'rotations', 'codes' (rows used), 'measure'}; mean/lo/hi None when no rotation
    gave a number (e.g. PCA alignment where the principal axes are not defined).
    """
    x = _as_codes(codes, min_rows=3)
    f = None if factors is None else _as_factors(factors, x.shape[0])
    if isinstance(measure, str):
        if measure not in CHANCE_MEASURES:
            raise UserError(
                f"rotation_baseline knows {', '.join(CHANCE_MEASURES)}; got {measure!r} "
                "(or pass a function of (codes, factors))."
            )
        name, fn = measure, CHANCE_MEASURES[measure]
    elif callable(measure):
        name, fn = getattr(measure, "__name__", "measure"), measure
    else:
        raise UserError("measure must be a measure's name or a function of (codes, factors).")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"rotation_baseline needs n >= 1 rotations; got {n!r}.")
    rng = np.random.default_rng(seed)
    if x.shape[0] > max_codes:
        keep = np.sort(rng.choice(x.shape[0], max_codes, replace=False))
        x = x[keep]
        f = None if f is None else f[keep]
    x = x - x.mean(axis=0)
    scores = []
    for q in random_rotations(int(n), x.shape[1], seed):
        v = fn(x @ q, f)
        v = v.get("score") if isinstance(v, dict) else v
        if v is not None and math.isfinite(float(v)):
            scores.append(float(v))
    out = {"measure": name, "rotations": int(n), "n": len(scores), "codes": int(x.shape[0]), "level": level}
    if not scores:
        return {**out, "mean": None, "lo": None, "hi": None, "sd": None}
    s = np.asarray(scores)
    a = (1 - level) / 2
    return {
        **out,
        "mean": float(s.mean()),
        "lo": float(np.quantile(s, a)),
        "hi": float(np.quantile(s, 1 - a)),
        "sd": float(s.std(ddof=1)) if len(s) > 1 else 0.0,
    }


def chance_levels(codes, factors, n: int = 200, seed: int = 0) -> dict:
    """rotation_baseline of every measure in CHANCE_MEASURES on the same codes: {measure: its dict}."""
    return {name: rotation_baseline(codes, factors, name, n=n, seed=seed) for name in CHANCE_MEASURES}
