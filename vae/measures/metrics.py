"""Disentanglement metrics, as disentanglement_lib computes them, with its study's settings.

Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations" (arXiv 1811.12359), and its code google-research/
disentanglement_lib (`evaluation/metrics/*.py`). Each function cites the file it follows.
Arrays here are (N, d) codes (latent means) and (N, K) integer factor labels; the library's
own arrays are transposed (d, N). Continuous factors (the starfish's a and b) are first
binned with `discretize_factors`. Every result is a dict that records its settings and the
scikit-learn version; `evaluate_all` collects them into one JSON-ready dict for
`python -m vae evaluate`, and `cheap_metrics` is the per-epoch summary the trainer logs.

numpy + scikit-learn + scipy only: no TensorFlow.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.stats
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from vae.base.errors import UserError
from vae.base.fileio import jsonable
from vae.measures.analysis import _as_codes, factor_alignment, pca_alignment

# The settings of disentanglement_lib's published study (its `config/unsupervised_study_v1/
# metric_configs/*.gin`): points used by each metric and the generator-based scores' budgets.
STUDY = {
    "num_train": 10000,
    "num_test": 5000,
    "num_bins": 20,
    "factor_vae": {
        "batch_size": 64,
        "num_train": 10000,
        "num_eval": 5000,
        "num_variance_estimate": 10000,
        "prune_threshold": 0.05,
    },
    "beta_vae": {"batch_size": 64, "num_train": 10000, "num_eval": 5000},
}

# DCI at disentanglement_lib's settings (dci.py: GradientBoostingClassifier() with sklearn's
# defaults, i.e. 100 stages; unsupervised_study_v1 dci.gin: 10,000 training and 5,000 test
# points) is the default. Fewer stages change the importances (up to 0.10 on simple cases;
# 100 stages agree with the library within 0.03), so the fast setting, for per-epoch use, is
# labelled "fast" in every result and note that carries it.
#
# The "sweep" setting is a sweep's quick evaluation (vae.training.evaluate.SWEEP_EVALUATION): half the stages
# at twice the learning rate, every training point, about half the reference's CPU. On the 30-run γ study
# (bench/quick_eval_equivalence.py, bench/RESULTS.md) its per-setting means of disentanglement, completeness
# and informativeness lie within the reference's 95% intervals; it is labelled as its own setting all the same.
DCI_N_ESTIMATORS = 100
DCI_MAX_TRAIN = 10_000
DCI_LEARNING_RATE = 0.1  # sklearn's default
DCI_SETTINGS = {
    "reference": {
        "n_estimators": DCI_N_ESTIMATORS,
        "max_train": DCI_MAX_TRAIN,
        "learning_rate": DCI_LEARNING_RATE,
        "label": "reference (disentanglement_lib: 100 boosting stages, up to 10,000 training points)",
    },
    "sweep": {
        "n_estimators": 50,
        "max_train": DCI_MAX_TRAIN,
        "learning_rate": 0.2,
        "label": "sweep (50 boosting stages at learning rate 0.2, up to 10,000 training points; a sweep's quick "
        "evaluation: about half the reference's cost, its per-setting means within the reference's intervals "
        "on the γ study)",
    },
    "fast": {
        "n_estimators": 20,
        "max_train": 2000,
        "learning_rate": DCI_LEARNING_RATE,
        "label": "fast (20 boosting stages, up to 2,000 training points; not comparable with published DCI)",
    },
}


def dci_setting_name(n_estimators: int, max_train: int | None, learning_rate: float = DCI_LEARNING_RATE) -> str:
    """ "reference" for disentanglement_lib's settings, "sweep" or "fast" for those presets, else "custom"."""
    for name, cfg in DCI_SETTINGS.items():
        if (
            n_estimators == cfg["n_estimators"]
            and learning_rate == cfg["learning_rate"]
            and (max_train or 10**9) >= cfg["max_train"]
            and (name != "fast" or max_train == cfg["max_train"])
        ):
            return name
    return "custom"


def _settings(**extra) -> dict:
    out = {"sklearn_version": sklearn.__version__}
    out.update(extra)
    return out


def _labels(factors, name="factors", n=None) -> np.ndarray:
    """(N, K) integer labels; floats are accepted only when they hold whole numbers."""
    y = np.asarray(factors)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise UserError(f"{name} must be a 2-D array (N, K); got shape {y.shape}.")
    if n is not None and y.shape[0] != n:
        raise UserError(f"{name} has {y.shape[0]} rows but the codes have {n}.")
    if not np.issubdtype(y.dtype, np.integer):
        yf = y.astype(np.float64)
        if not np.all(np.isfinite(yf)) or np.any(yf != np.round(yf)):
            raise UserError(
                f"{name} holds non-integer values: bin continuous factors with "
                "discretize_factors(values, num_bins=20) first."
            )
        y = np.round(yf)
    return y.astype(np.int64)


def _pair(codes_train, factors_train, codes_test, factors_test):
    xtr = _as_codes(codes_train, "codes_train")
    xte = _as_codes(codes_test, "codes_test", min_rows=1)
    if xte.shape[1] != xtr.shape[1]:
        raise UserError(f"codes_test has {xte.shape[1]} dims but codes_train has {xtr.shape[1]}.")
    ytr = _labels(factors_train, "factors_train", xtr.shape[0])
    yte = _labels(factors_test, "factors_test", xte.shape[0])
    if yte.shape[1] != ytr.shape[1]:
        raise UserError(f"factors_test has {yte.shape[1]} factors but factors_train has {ytr.shape[1]}.")
    return xtr, ytr, xte, yte


# ---------------------------------------------------------------------------------------
# Discretisation and mutual information (disentanglement_lib evaluation/metrics/utils.py)


def histogram_discretize(codes, num_bins: int = 20) -> np.ndarray:
    """Bin each column into num_bins equal-width bins (labels 1..num_bins); utils._histogram_discretize."""
    x = _as_codes(codes, min_rows=1)
    out = np.zeros(x.shape, dtype=np.int64)
    for i in range(x.shape[1]):
        out[:, i] = np.digitize(x[:, i], np.histogram(x[:, i], num_bins)[1][:-1])
    return out


def discretize_factors(values, num_bins: int = 20, reference: dict | None = None) -> dict:
    """Integer labels (N, K) for factor values; records the bins used per factor.

    A factor with at most num_bins distinct values keeps them (labels 0..u-1, method
    "unique"); otherwise it is cut into num_bins equal-width bins over its range (method
    "histogram", as utils._histogram_discretize, labels 0..num_bins-1). Pass an earlier
    result as `reference` to bin another split the same way (values outside its range go
    to the end bins).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or not np.all(np.isfinite(v)):
        raise UserError("factor values must be a finite (N, K) array.")
    if reference is not None and len(reference["edges"]) != v.shape[1]:
        raise UserError(f"reference bins {len(reference['edges'])} factors, values have {v.shape[1]}.")
    labels = np.zeros(v.shape, dtype=np.int64)
    bins, methods, edges = [], [], []
    for k in range(v.shape[1]):
        if reference is not None:
            method, e = reference["method"][k], np.asarray(reference["edges"][k], dtype=np.float64)
        else:
            e = np.unique(v[:, k])
            method = "unique" if e.size <= num_bins else "histogram"
            if method == "histogram":
                e = np.histogram(v[:, k], num_bins)[1]
        if method == "unique":
            labels[:, k] = np.clip(np.searchsorted(e, v[:, k]), 0, e.size - 1)
            bins.append(int(e.size))
        else:
            labels[:, k] = np.clip(np.digitize(v[:, k], e[:-1]) - 1, 0, e.size - 2)
            bins.append(int(e.size - 1))
        methods.append(method)
        edges.append(e)
    return {"labels": labels, "num_bins": bins, "method": methods, "edges": edges, "requested_num_bins": num_bins}


def mutual_info_matrix(discrete_codes, labels) -> np.ndarray:
    """(d, K) MI in nats between each discretised code and each factor; utils.discrete_mutual_info."""
    c = np.asarray(discrete_codes)
    y = np.asarray(labels)
    m = np.zeros((c.shape[1], y.shape[1]))
    for i in range(c.shape[1]):
        for j in range(y.shape[1]):
            m[i, j] = mutual_info_score(y[:, j], c[:, i])
    return m


def factor_entropy(labels) -> np.ndarray:
    """(K,) entropy in nats of each factor; utils.discrete_entropy."""
    y = np.asarray(labels)
    return np.array([mutual_info_score(y[:, j], y[:, j]) for j in range(y.shape[1])])


# ---------------------------------------------------------------------------------------
# Metrics on codes and labels


def mig(codes, factors, num_bins: int = 20) -> dict:
    """Mutual Information Gap (Chen et al. 2018, arXiv 1802.04942); disentanglement_lib mig.py.

    Per factor: (top MI - second MI over code dims) / H(factor), averaged over factors.
    Factors with zero entropy (constant) are left out of the mean and named in `note`.
    """
    x = _as_codes(codes)
    y = _labels(factors, n=x.shape[0])
    m = mutual_info_matrix(histogram_discretize(x, num_bins), y)
    h = factor_entropy(y)
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if top.shape[0] > 1 else np.zeros(m.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = np.where(h > 0, (top[0] - second) / h, np.nan)
    valid = h > 0
    note = ""
    if not valid.all():
        note = f"factors {np.flatnonzero(~valid).tolist()} are constant and left out"
    score = float(np.mean(gaps[valid])) if valid.any() else 0.0
    return {
        "score": score,
        "per_factor": gaps,
        "mutual_info": m,
        "entropy": h,
        **_settings(num_bins=num_bins, n_train=x.shape[0], note=note),
    }


def _dci_entropy_score(p: np.ndarray, base: int) -> np.ndarray:
    return 1.0 - scipy.stats.entropy(p + 1e-11, base=base)


def dci_from_importance(importance) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Disentanglement and completeness of a (d, K) importance matrix; dci.py disentanglement/completeness."""
    r = np.asarray(importance, dtype=np.float64)
    d, k = r.shape
    per_code = _dci_entropy_score(r.T, k) if k > 1 else np.ones(d)
    per_factor = _dci_entropy_score(r, d) if d > 1 else np.ones(k)
    w = r if r.sum() > 0 else np.ones_like(r)
    dis = float(np.sum(per_code * w.sum(axis=1) / w.sum()))
    com = float(np.sum(per_factor * w.sum(axis=0) / w.sum()))
    if r.sum() == 0:  # nothing predicts anything: the library's formula gives 0 for both here too
        dis = com = 0.0
    return dis, com, per_code, per_factor


def dci(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    n_estimators: int = DCI_N_ESTIMATORS,
    max_train: int | None = DCI_MAX_TRAIN,
    seed: int = 0,
    learning_rate: float = DCI_LEARNING_RATE,
) -> dict:
    """DCI (Eastwood & Williams 2018, ICLR); disentanglement_lib dci.py with GradientBoostingClassifier.

    Importances are |feature_importances_| of one classifier per factor; informativeness is
    its accuracy on train and test. Defaults are the library's (100 stages at learning rate 0.1,
    up to 10,000 training points); `**DCI_SETTINGS["fast"]` minus its label is the per-epoch setting,
    `DCI_SETTINGS["sweep"]` a sweep's quick evaluation. `setting` ("reference", "sweep", "fast" or
    "custom") and every number used are in the result.
    """
    xtr, ytr, xte, yte = _pair(codes_train, factors_train, codes_test, factors_test)
    n_all = xtr.shape[0]
    subsampled = max_train is not None and n_all > max_train
    if subsampled:
        rows = np.random.default_rng(seed).choice(n_all, max_train, replace=False)
        xtr, ytr = xtr[rows], ytr[rows]
    d, k = xtr.shape[1], ytr.shape[1]
    importance = np.zeros((d, k))
    acc_train, acc_test = np.zeros(k), np.zeros(k)
    for j in range(k):
        classes = np.unique(ytr[:, j])
        if classes.size < 2:  # a constant factor: nothing to learn, trivially predicted
            acc_train[j] = 1.0
            acc_test[j] = float(np.mean(yte[:, j] == classes[0]))
            continue
        model = GradientBoostingClassifier(n_estimators=n_estimators, learning_rate=learning_rate, random_state=seed)
        model.fit(xtr, ytr[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        acc_train[j] = np.mean(model.predict(xtr) == ytr[:, j])
        acc_test[j] = np.mean(model.predict(xte) == yte[:, j])
    dis, com, per_code, per_factor = dci_from_importance(importance)
    setting = dci_setting_name(n_estimators, max_train, learning_rate)
    notes = []
    if setting != "reference":
        notes.append(
            f"{setting} setting: n_estimators={n_estimators} (reference: 100)"
            + (f", learning_rate={learning_rate:g} (reference: 0.1)" if learning_rate != DCI_LEARNING_RATE else "")
            + (f", at most {max_train} training points (reference: 10,000)" if max_train else "")
        )
    if subsampled:
        notes.append(f"trees fit on a random {max_train} of {n_all} training points")
    return {
        "disentanglement": dis,
        "completeness": com,
        "informativeness_train": float(acc_train.mean()),
        "informativeness_test": float(acc_test.mean()),
        "importance_matrix": importance,
        "per_code": per_code,
        "per_factor": per_factor,
        **_settings(
            setting=setting,
            n_train=int(xtr.shape[0]),
            n_train_given=n_all,
            n_test=int(xte.shape[0]),
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            max_train=max_train,
            subsampled=subsampled,
            seed=seed,
            note="; ".join(notes),
        ),
    }


def sap(codes_train, factors_train, codes_test, factors_test, continuous_factors: bool = False) -> dict:
    """SAP score (Kumar et al. 2018, arXiv 1711.00848); disentanglement_lib sap_score.py.

    Score matrix (d, K): discrete factors -> test accuracy of LinearSVC(C=0.01, balanced)
    on one code dim; continuous -> R^2 of a linear fit (squared correlation, train only).
    SAP = mean over factors of (best - second best). Note a 1-D linear classifier cannot
    separate many ordered classes, so discrete SAP stays well below 1 even for perfect codes.
    """
    xtr = _as_codes(codes_train, "codes_train")
    xte = _as_codes(codes_test, "codes_test", min_rows=1)
    if continuous_factors:
        ytr = np.asarray(factors_train, dtype=np.float64)
        ytr = ytr[:, None] if ytr.ndim == 1 else ytr
        if ytr.ndim != 2 or ytr.shape[0] != xtr.shape[0]:
            raise UserError(f"factors_train must be (N, K) with N = {xtr.shape[0]}; got shape {ytr.shape}.")
        yte = None
    else:
        xtr, ytr, xte, yte = _pair(codes_train, factors_train, codes_test, factors_test)
    d, k = xtr.shape[1], ytr.shape[1]
    score = np.zeros((d, k))
    for i in range(d):
        for j in range(k):
            if continuous_factors:
                c = np.cov(xtr[:, i], ytr[:, j], ddof=1)
                if c[0, 0] > 1e-12 and c[1, 1] > 0:
                    score[i, j] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1])
            elif np.unique(ytr[:, j]).size < 2:
                score[i, j] = 0.0
            else:
                clf = LinearSVC(C=0.01, class_weight="balanced")
                clf.fit(xtr[:, i : i + 1], ytr[:, j])
                score[i, j] = np.mean(clf.predict(xte[:, i : i + 1]) == yte[:, j])
    srt = np.sort(score, axis=0)
    gaps = srt[-1] - (srt[-2] if d > 1 else 0.0)
    return {
        "score": float(np.mean(gaps)),
        "per_factor": gaps,
        "score_matrix": score,
        **_settings(
            n_train=xtr.shape[0],
            n_test=0 if continuous_factors else xte.shape[0],
            continuous_factors=continuous_factors,
        ),
    }


def modularity(codes, factors, num_bins: int = 20) -> dict:
    """Modularity (Ridgeway & Zemel 2018, arXiv 1802.05312); disentanglement_lib modularity_explicitness.py.

    Per code: 1 - (sum_k MI^2 - max MI^2) / (max MI^2 (K - 1)); 0 for a code with no MI.
    Explicitness (the other half of that file) is not computed.
    """
    x = _as_codes(codes)
    y = _labels(factors, n=x.shape[0])
    m = mutual_info_matrix(histogram_discretize(x, num_bins), y)
    sq = m**2
    mx = sq.max(axis=1)
    k = sq.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_code = 1.0 - (sq.sum(axis=1) - mx) / (mx * (k - 1)) if k > 1 else np.ones(len(mx))
    per_code = np.where(mx == 0, 0.0, per_code)
    return {
        "score": float(np.mean(per_code)),
        "per_code": per_code,
        "mutual_info": m,
        **_settings(num_bins=num_bins, n_train=x.shape[0]),
    }


def gaussian_total_correlation(codes) -> float:
    """TC of a Gaussian with covariance Cov(mu): 0.5 (sum log diag - logdet).

    As disentanglement_lib methods/unsupervised/vae.py (DIP-VAE's Cov[mu]) and Watanabe 1960.
    Dims with no variance carry nothing and are dropped; collinear codes give inf.
    """
    x = _as_codes(codes)
    return _tc_from_covariance(np.atleast_2d(np.cov(x, rowvar=False)))


def _tc_from_covariance(cov: np.ndarray) -> float:
    diag = np.diag(cov)
    keep = diag > 1e-12
    if keep.sum() < 2:
        return 0.0
    c = cov[np.ix_(keep, keep)]
    sign, logdet = np.linalg.slogdet(c)
    if sign <= 0:
        return float("inf")
    return float(max(0.0, 0.5 * (np.sum(np.log(np.diag(c))) - logdet)))


def active_units(codes, threshold: float = 0.01) -> dict:
    """Dims whose latent mean varies: Var_x(mu_i) > threshold (Burda et al. 2016, arXiv 1509.00519 §5.2)."""
    x = _as_codes(codes)
    var = x.var(axis=0, ddof=1)
    active = var > threshold
    return {"count": int(active.sum()), "active": active, "variances": var, "threshold": threshold, "n": x.shape[0]}


SIGMA_CONSTANT = 0.1  # the study's fixed encoder std (vae.model.losses.SIGMA_CONSTANT; measures import no model code)


def latent_usage(codes, logvar=None, num_factors: int | None = None, threshold: float = 0.01) -> dict:
    """Active units and per-latent KL: which latents the model uses, and what each costs.

    `active_units`: latents whose mean varies over the data, Var(mu_i) > threshold (Burda et al.
    2016). `kl_per_latent[i]`: the textbook KL(q(z_i|x) || N(0, 1)) = 0.5 (mu^2 + s^2 - log s^2 - 1)
    averaged over the images, in nats (s^2 = exp(logvar), or the study's constant 0.1^2 when
    `logvar` is None); `kl_total` their sum (the papers' KL). `collapsed` (the stable key the
    Sweeps answer names as a cost): fewer active latents than the data has factors (`num_factors`),
    or none active when the factors are not known; `collapsed_latents` = d - active_units.
    """
    x = _as_codes(codes)
    var = x.var(axis=0, ddof=1)
    active = var > threshold
    lv = np.full(x.shape, 2.0 * np.log(SIGMA_CONSTANT)) if logvar is None else np.asarray(logvar, dtype=np.float64)
    if lv.shape != x.shape:
        raise UserError(f"logvar has shape {lv.shape}; the codes have {x.shape}.")
    kl = 0.5 * (x**2 + np.exp(lv) - lv - 1.0).mean(axis=0)
    count = int(active.sum())
    need = int(num_factors) if num_factors else 1
    return {
        "active_units": count,
        "active": active,
        "variances": var,
        "threshold": threshold,
        "kl_per_latent": kl,
        "kl_total": float(kl.sum()),
        "collapsed": bool(count < need),
        "collapsed_latents": int(x.shape[1] - count),
        "num_factors": num_factors,
        "collapse_rule": f"fewer than {need} active latent{'s' if need != 1 else ''} (Var(mu) > {threshold})",
        "n": x.shape[0],
    }


def cheap_metrics(codes, factors=None, codes_name: str = "validation") -> dict:
    """Per-epoch numbers for the trainer (tens of milliseconds).

    `factor_alignment` (vae.measures.analysis.factor_alignment's score, global directions; only with
    `factors`), `pca_alignment` (None when the principal axes are not defined, with
    `pca_alignment_reason`), total correlation and active units, all of the same codes, named
    in `alignment_codes`. Codes with NaN/inf (a diverged epoch) give None for each number.
    """
    x = np.asarray(codes, dtype=np.float64)
    keys = ("factor_alignment", "pca_alignment", "total_correlation", "active_units")
    if x.ndim == 2 and x.shape[0] >= 2 and not np.all(np.isfinite(x)):
        return {**{k: None for k in keys}, "alignment_codes": codes_name}
    x = _as_codes(x)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    var = np.diag(cov)
    pca = pca_alignment(x)  # the tie gate uses N and the codes' fourth moments
    out = {
        "pca_alignment": pca["score"],
        "pca_alignment_reason": pca["reason"],
        "total_correlation": _tc_from_covariance(cov),
        "active_units": int(np.sum(var > 0.01)),
        "alignment_codes": codes_name,
    }
    if factors is not None and x.shape[1] >= 2 and x.shape[0] >= 8:
        out["factor_alignment"] = factor_alignment(x, factors, local=False, active=var > 0.01)["score"]
    return jsonable(out)


# ---------------------------------------------------------------------------------------
# Scores that need a generator: ground_truth (.factor_names, .factor_sizes,
# .sample_factors(n, rng) -> int (n, K), .render(idx) -> uint8 (n, H, W)) and encode(images) -> (n, d)


def _encode_factors(ground_truth, encode, factors, chunk: int = 4096) -> np.ndarray:
    parts = [
        np.asarray(encode(ground_truth.render(factors[s : s + chunk])), dtype=np.float64)
        for s in range(0, factors.shape[0], chunk)
    ]
    return np.concatenate(parts, axis=0)


def _factor_vae_votes(gt, encode, rng, num_points, batch_size, global_var, active, chunk_batches=64):
    k = len(gt.factor_sizes)
    votes = np.zeros((k, global_var.shape[0]), dtype=np.int64)
    active_idx = np.flatnonzero(active)
    for start in range(0, num_points, chunk_batches):
        nb = min(chunk_batches, num_points - start)
        which = rng.integers(k, size=nb)
        f = np.asarray(gt.sample_factors(nb * batch_size, rng)).reshape(nb, batch_size, k)
        f[np.arange(nb), :, which] = f[np.arange(nb), 0, which][:, None]
        z = _encode_factors(gt, encode, f.reshape(nb * batch_size, k)).reshape(nb, batch_size, -1)
        local = z.var(axis=1, ddof=1)
        best = active_idx[np.argmin(local[:, active] / global_var[active], axis=1)]
        np.add.at(votes, (which, best), 1)
    return votes


def factor_vae_score(
    ground_truth,
    encode,
    seed: int = 0,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
) -> dict:
    """FactorVAE score (Kim & Mnih 2018, arXiv 1802.05983); disentanglement_lib factor_vae.py.

    Fix one factor in a batch, find the code dim with the least variance (normalised by
    its global variance); a majority-vote classifier maps dims to factors. Dims whose
    global std is below prune_threshold are not considered.
    """
    rng = np.random.default_rng(seed)
    z = _encode_factors(ground_truth, encode, np.asarray(ground_truth.sample_factors(num_variance_estimate, rng)))
    global_var = z.var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    settings = _settings(
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
        prune_threshold=prune_threshold,
        seed=seed,
    )
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0, **settings}
    train_votes = _factor_vae_votes(ground_truth, encode, rng, num_train, batch_size, global_var, active)
    classifier = np.argmax(train_votes, axis=0)
    cols = np.arange(train_votes.shape[1])
    eval_votes = _factor_vae_votes(ground_truth, encode, rng, num_eval, batch_size, global_var, active)
    return {
        "train_accuracy": float(train_votes[classifier, cols].sum() / train_votes.sum()),
        "eval_accuracy": float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
        "num_active_dims": int(active.sum()),
        "votes": train_votes,
        **settings,
    }


def _beta_vae_points(gt, encode, rng, num_points, batch_size, chunk_batches=64):
    k = len(gt.factor_sizes)
    labels, feats = [], []
    for start in range(0, num_points, chunk_batches):
        nb = min(chunk_batches, num_points - start)
        which = rng.integers(k, size=nb)
        f1 = np.asarray(gt.sample_factors(nb * batch_size, rng)).reshape(nb, batch_size, k)
        f2 = np.asarray(gt.sample_factors(nb * batch_size, rng)).reshape(nb, batch_size, k)
        f2[np.arange(nb), :, which] = f1[np.arange(nb), :, which]
        z1 = _encode_factors(gt, encode, f1.reshape(-1, k)).reshape(nb, batch_size, -1)
        z2 = _encode_factors(gt, encode, f2.reshape(-1, k)).reshape(nb, batch_size, -1)
        feats.append(np.abs(z1 - z2).mean(axis=1))
        labels.append(which)
    return np.concatenate(feats), np.concatenate(labels)


def beta_vae_score(
    ground_truth, encode, seed: int = 0, batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000
) -> dict:
    """BetaVAE score (Higgins et al. 2017, ICLR); disentanglement_lib beta_vae.py (sklearn version).

    Pairs of batches share one factor; a logistic regression predicts which factor from the
    mean |z1 - z2| per code dim. Chance is 1/K.
    """
    rng = np.random.default_rng(seed)
    xtr, ytr = _beta_vae_points(ground_truth, encode, rng, num_train, batch_size)
    xev, yev = _beta_vae_points(ground_truth, encode, rng, num_eval, batch_size)
    settings = _settings(batch_size=batch_size, num_train=num_train, num_eval=num_eval, seed=seed)
    if np.unique(ytr).size < 2:
        return {"train_accuracy": 1.0, "eval_accuracy": float(np.mean(yev == ytr[0])), **settings}
    model = LogisticRegression(random_state=seed, max_iter=1000).fit(xtr, ytr)
    return {"train_accuracy": float(model.score(xtr, ytr)), "eval_accuracy": float(model.score(xev, yev)), **settings}


# ---------------------------------------------------------------------------------------
# Everything at once


def _study_subsample(x, y, raw, limit, rng):
    if x.shape[0] <= limit:
        return x, y, raw
    rows = rng.choice(x.shape[0], limit, replace=False)
    return x[rows], y[rows], (raw[rows] if raw is not None else None)


def evaluate_all(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    ground_truth=None,
    encode=None,
    seed: int = 0,
    num_bins: int = 20,
    generator_settings: dict | None = None,
    dci_setting: str = "reference",
) -> dict:
    """All metrics in one JSON-ready dict (what `python -m vae evaluate` writes).

    Uses the study's sizes: at most 10,000 training and 5,000 test points (seeded subsample),
    and says so in `note` when fewer are available. Factor values that are not whole numbers
    are binned with discretize_factors (edges from the training split, applied to both).
    The FactorVAE and BetaVAE scores run only with `ground_truth` and `encode`;
    `generator_settings` = {"factor_vae": {...}, "beta_vae": {...}} overrides their budgets.
    `dci_setting`: a name in DCI_SETTINGS: "reference" (disentanglement_lib's, the default), "sweep" (a sweep's
    quick evaluation) or "fast" (per-epoch use). `notes` says, next to each metric that carries little information here, why.
    """
    if dci_setting not in DCI_SETTINGS:
        raise UserError(f"dci_setting must be one of {', '.join(DCI_SETTINGS)}, not {dci_setting!r}")
    t_all = time.perf_counter()
    xtr = _as_codes(codes_train, "codes_train")
    xte = _as_codes(codes_test, "codes_test", min_rows=1)
    ftr = np.asarray(factors_train)
    fte = np.asarray(factors_test)
    ftr = ftr[:, None] if ftr.ndim == 1 else ftr
    fte = fte[:, None] if fte.ndim == 1 else fte
    if ftr.shape[0] != xtr.shape[0] or fte.shape[0] != xte.shape[0]:
        raise UserError("codes and factors must have the same number of rows in each split.")
    integer_valued = (np.issubdtype(ftr.dtype, np.integer) and np.issubdtype(fte.dtype, np.integer)) or (
        np.all(np.isfinite(ftr))
        and np.all(ftr == np.round(ftr))
        and np.all(np.isfinite(fte))
        and np.all(fte == np.round(fte))
    )
    if integer_valued:
        ytr, yte, raw_tr = ftr.astype(np.int64), fte.astype(np.int64), None
        binning = None
    else:
        binning = discretize_factors(ftr, num_bins)
        ytr = binning["labels"]
        yte = discretize_factors(fte, num_bins, reference=binning)["labels"]
        raw_tr = ftr.astype(np.float64)
    rng = np.random.default_rng(seed)
    n_tr_given, n_te_given = xtr.shape[0], xte.shape[0]
    xtr, ytr, raw_tr = _study_subsample(xtr, ytr, raw_tr, STUDY["num_train"], rng)
    xte, yte, _ = _study_subsample(xte, yte, None, STUDY["num_test"], rng)
    notes = []
    if n_tr_given < STUDY["num_train"]:
        notes.append(f"only {n_tr_given} training points (study: {STUDY['num_train']})")
    if n_te_given < STUDY["num_test"]:
        notes.append(f"only {n_te_given} test points (study: {STUDY['num_test']})")

    out = {
        "format": "vae-lab-evaluation",
        "format_version": 1,
        "settings": {
            "n_train": xtr.shape[0],
            "n_test": xte.shape[0],
            "n_train_given": n_tr_given,
            "n_test_given": n_te_given,
            "subsampled": n_tr_given > xtr.shape[0] or n_te_given > xte.shape[0],
            "num_bins": num_bins,
            "seed": seed,
            "study": STUDY,
            "note": "; ".join(notes),
            "factor_binning": None
            if binning is None
            else {"num_bins": binning["num_bins"], "method": binning["method"], "edges": binning["edges"]},
        },
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__},
        "seconds": {},
    }

    def timed(name, fn, *args, **kwargs):
        t = time.perf_counter()
        out[name] = fn(*args, **kwargs)
        out["seconds"][name] = time.perf_counter() - t

    dci_cfg = {k: v for k, v in DCI_SETTINGS[dci_setting].items() if k != "label"}
    out["settings"]["dci"] = {"setting": dci_setting, "label": DCI_SETTINGS[dci_setting]["label"], **dci_cfg}
    timed("mig", mig, xtr, ytr, num_bins)
    timed("dci", dci, xtr, ytr, xte, yte, seed=seed, **dci_cfg)
    timed("sap", sap, xtr, ytr, xte, yte, continuous_factors=False)
    timed("sap_continuous", sap, xtr, raw_tr if raw_tr is not None else ytr, xte, yte, continuous_factors=True)
    timed("modularity", modularity, xtr, ytr, num_bins)
    timed("total_correlation", gaussian_total_correlation, xtr)
    timed("active_units", active_units, xtr)
    timed("pca_alignment", pca_alignment, xtr)
    if xtr.shape[1] >= 2:
        timed("factor_alignment", factor_alignment, xtr, raw_tr if raw_tr is not None else ytr)
    if ground_truth is not None and encode is not None:
        gs = generator_settings or {}
        fv = {**STUDY["factor_vae"], **gs.get("factor_vae", {})}
        bv = {**STUDY["beta_vae"], **gs.get("beta_vae", {})}
        timed("factor_vae", factor_vae_score, ground_truth, encode, seed=seed, **fv)
        timed("beta_vae", beta_vae_score, ground_truth, encode, seed=seed, **bv)
    out["notes"] = metric_notes(out, ytr.shape[1])
    out["seconds"]["total"] = time.perf_counter() - t_all
    return jsonable(out)


def metric_notes(results: dict, num_factors: int) -> dict:
    """{metric: why its number carries little information here} for an evaluate_all result."""
    notes = {}
    if num_factors <= 2:
        for key, name, how in (
            ("factor_vae", "FactorVAE", "a majority vote over"),
            ("beta_vae", "BetaVAE", "a linear classifier choosing between"),
        ):
            if key in results:
                notes[key] = (
                    f"{name} saturates near 1.0 with {num_factors} factor(s): {how} {num_factors} "
                    f"factors (chance {1 / max(num_factors, 1):.2f}) is easy even for entangled codes; "
                    "it hardly separates good codes from poor ones here"
                )
    au = results.get("active_units") or {}
    mod = results.get("modularity") or {}
    if au and mod and "per_code" in mod:
        dead = int(np.sum(np.asarray(mod["per_code"]) == 0))
        if dead:
            notes["modularity"] = (
                f"modularity is pulled down by {dead} code dim(s) with no mutual information "
                "(dead dims score 0 and count in the mean); per-code values are in the results"
            )
    if "sap" in results and (results.get("settings") or {}).get("factor_binning"):
        notes["sap"] = (
            "discrete SAP: a 1-D linear classifier cannot split 20 ordered bins, so it stays low "
            "even for perfect codes of a continuous factor; the summary shows continuous SAP"
        )
    dci_r = results.get("dci") or {}
    if dci_r.get("setting") not in (None, "reference"):
        notes["dci"] = dci_r.get("note", "not at disentanglement_lib's settings")
    return notes
