"""What the study looked at, measured: axis alignment, curved factors, the hole.

The study (FACTS §4) judged its latent sheet by eye: a curved 2-D sheet with a hole,
"not disentangled". These functions put numbers on the same questions:

  pca_alignment       -- do the principal axes of the latent means lie on latent axes?
  pixel_pca           -- the baseline the study had in mind: PCA of the pixels vs the factors
  transect_geometry   -- is a transect's latent path straight, and does it lie on one axis?
  hole_analysis       -- the hole as a zero-shot test: reconstruction loss and distance to the sheet
  covered_region_mask -- the validation points used as the hole's comparison group

numpy + scikit-learn only (no TensorFlow): the dashboard and the trainer call these on
arrays of latent means. Results are plain dicts; `jsonable` turns one into JSON-ready data.
"""

from __future__ import annotations

import math

import numpy as np
import sklearn
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from vae.errors import UserError

# Two principal axes whose variances differ by less than this fraction of the larger one
# are flagged `degenerate`: with N samples an eigenvalue is only known to about
# lambda*sqrt(2/N) (3% at N = 2000), and the eigenvector of a near-tie can turn freely
# inside the pair, so its angle to the latent axes means nothing.
DEGENERATE_GAP = 0.1

# The study's hole (FACTS §1): a disc in (a, b), centre (1.25, 1.0), radius 0.3.
HOLE_CENTRE = (1.25, 1.0)
HOLE_RADIUS = 0.3


def jsonable(obj):
    """Recursively turn numpy arrays/scalars into lists/floats/ints; NaN and inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


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


def alignment_from_covariance(cov: np.ndarray, degenerate_gap: float = DEGENERATE_GAP) -> dict:
    """pca_alignment's numbers from a (d, d) covariance matrix (eigen-decomposition, largest first)."""
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
    return {
        "explained_variance": eigval,
        "explained_variance_ratio": ratio,
        "components": components,
        "abs_cos": abs_cos,
        "nearest_axis": np.argmax(abs_cos, axis=1),
        "angles_deg": angles,
        "axis_score": per_axis,
        "score": score,
        "degenerate": degenerate,
        "degenerate_variance_fraction": float(np.sum(ratio[degenerate])) if total > 0 else float("nan"),
        "degenerate_gap": degenerate_gap,
    }


def pca_alignment(codes, degenerate_gap: float = DEGENERATE_GAP) -> dict:
    """How well the principal axes of the latent means lie on the latent axes.

    `score` = sum_k evr_k * (max_i |cos(pc_k, e_i)| - 1/sqrt(d)) / (1 - 1/sqrt(d)): 1 when
    every principal axis lies on a latent axis, 0 for the worst tilt (all |cos| = 1/sqrt(d)).
    `degenerate[k]` is True when pc_k's variance is within `degenerate_gap` (relative to the
    larger) of a neighbour's: its direction, angle and axis score are then not meaningful.
    NaN score when the codes have no variance. Follows the PCA-of-the-latent-space idea of
    P3md (FACTS §4); no library computes this exact number.
    """
    x = _as_codes(codes)
    out = alignment_from_covariance(np.atleast_2d(np.cov(x, rowvar=False)), degenerate_gap)
    out["n"] = x.shape[0]
    out["d"] = x.shape[1]
    return out


def pixel_pca(images, factors, factor_names, n_components: int = 10, seed: int = 0) -> dict:
    """PCA of the pixels (sklearn randomized PCA) and |Pearson r| of each factor with each pixel PC.

    The baseline the study had in mind (P3md): if the factors were linear in pixel space,
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
    (FACTS §4: small, low-b shapes reconstruct worst); the ring holds shapes like the hole's,
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


def hole_analysis(mu_train, mu_hole, recon_loss_hole, recon_loss_val_covered, mu_covered=None) -> dict:
    """Reconstruction loss in the hole vs the covered region, and how far hole codes fall from the sheet.

    Distances: nearest-neighbour distance (sklearn NearestNeighbors) from each hole code to
    the training codes, divided by the median NN spacing between training codes (each to its
    nearest other training code). ~1 means the hole codes sit on the sheet as densely as
    training codes; >>1 means they land in the sheet's hole or off it. Pass `mu_covered`
    (codes of the covered validation images) for the same number on seen-like data.
    """
    tr = _as_codes(mu_train, "mu_train")
    ho = _as_codes(mu_hole, "mu_hole", min_rows=1)
    if ho.shape[1] != tr.shape[1]:
        raise UserError(f"mu_hole has {ho.shape[1]} dims but mu_train has {tr.shape[1]}.")
    lh = np.asarray(recon_loss_hole, dtype=np.float64).ravel()
    lc = np.asarray(recon_loss_val_covered, dtype=np.float64).ravel()
    if lh.size == 0 or lc.size == 0:
        raise UserError("hole_analysis needs at least one hole loss and one covered-region loss.")

    nn = NearestNeighbors(n_neighbors=2).fit(tr)
    spacing = float(np.median(nn.kneighbors(tr)[0][:, 1]))
    hole_nn = nn.kneighbors(ho, n_neighbors=1)[0][:, 0]
    rel = hole_nn / spacing if spacing > 0 else np.full(hole_nn.shape, np.nan)
    out = {
        "n_train": tr.shape[0],
        "n_hole": ho.shape[0],
        "n_covered": lc.size,
        "recon_hole_mean": float(lh.mean()),
        "recon_hole_median": float(np.median(lh)),
        "recon_covered_mean": float(lc.mean()),
        "recon_covered_median": float(np.median(lc)),
        "recon_ratio_mean": float(lh.mean() / lc.mean()) if lc.mean() != 0 else float("nan"),
        "recon_ratio_median": float(np.median(lh) / np.median(lc)) if np.median(lc) != 0 else float("nan"),
        "train_nn_spacing_median": spacing,
        "hole_nn_distance": hole_nn,
        "hole_nn_relative": rel,
        "hole_nn_relative_median": float(np.median(rel)),
        "hole_nn_relative_mean": float(np.mean(rel)),
    }
    if mu_covered is not None:
        cv = _as_codes(mu_covered, "mu_covered", min_rows=1)
        cov_rel = nn.kneighbors(cv, n_neighbors=1)[0][:, 0] / spacing if spacing > 0 else np.nan
        out["covered_nn_relative_median"] = float(np.median(cov_rel))
        out["covered_nn_relative"] = cov_rel
    return out
