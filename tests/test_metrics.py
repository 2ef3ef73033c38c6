"""Known answers for vae.measures.metrics: perfect, rotated, constant and independent codes, and hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sklearn

from vae.base.errors import UserError
from vae.measures.metrics import (
    active_units,
    beta_vae_score,
    cheap_metrics,
    dci,
    dci_from_importance,
    discretize_factors,
    evaluate_all,
    factor_vae_score,
    gaussian_total_correlation,
    histogram_discretize,
    mig,
    modularity,
    sap,
)

N_TRAIN, N_TEST = 1500, 500
FAST_DCI = dict(n_estimators=10, max_train=800)


def _factors(n, sizes=(10, 10), seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.integers(0, s, n) for s in sizes])


def _split(codes, factors):
    return codes[:N_TRAIN], factors[:N_TRAIN], codes[N_TRAIN:], factors[N_TRAIN:]


@pytest.fixture(scope="module")
def cases():
    """Codes equal to the factors, the same rotated 45 degrees, constant, and independent of the factors."""
    n = N_TRAIN + N_TEST
    f = _factors(n)
    rng = np.random.default_rng(1)
    ident = f + 0.01 * rng.normal(size=f.shape)
    t = math.pi / 4
    rot = (ident - ident.mean(0)) @ np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]).T
    return {
        "factors": f,
        "identity": ident,
        "rotated": rot,
        "constant": np.zeros((n, 2)),
        "independent": rng.normal(size=(n, 2)),
    }


@pytest.fixture(scope="module")
def dci_results(cases):
    f = cases["factors"]
    return {
        name: dci(*_split(cases[name], f), **FAST_DCI) for name in ("identity", "rotated", "constant", "independent")
    }


# ---- MIG


def test_mig_is_one_for_codes_equal_to_factors_and_low_when_rotated(cases):
    f = cases["factors"]
    ident = mig(cases["identity"], f)
    assert ident["score"] > 0.95
    assert mig(cases["rotated"], f)["score"] < 0.3
    assert mig(cases["constant"], f)["score"] == 0.0
    assert mig(cases["independent"], f)["score"] < 0.05
    assert ident["num_bins"] == 20 and ident["n_train"] == len(f) and ident["sklearn_version"] == sklearn.__version__


def _mi_by_counts(x, y):
    """Mutual information in nats from an explicit contingency table."""
    xs, xi = np.unique(x, return_inverse=True)
    ys, yi = np.unique(y, return_inverse=True)
    table = np.zeros((xs.size, ys.size))
    np.add.at(table, (xi, yi), 1)
    p = table / table.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / (px @ py)[nz])))


def test_mig_matches_a_hand_computation_on_a_two_factor_toy():
    # factor 0 in {0,1}, factor 1 in {0,1,2}; code 0 copies factor 0 but flips 1 in 4; code 1 is factor 1 mod 2.
    f0 = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 3)
    f1 = np.array([0, 1, 2] * 8)
    c0 = f0.copy()
    c0[::4] = 1 - c0[::4]
    c1 = f1 % 2
    codes = np.column_stack([c0, c1]).astype(float)
    factors = np.column_stack([f0, f1])
    out = mig(codes, factors, num_bins=2)
    mi = np.array([[_mi_by_counts(c, y) for y in (f0, f1)] for c in (c0, c1)])
    h = np.array([_mi_by_counts(y, y) for y in (f0, f1)])
    assert h[0] == pytest.approx(math.log(2)) and h[1] == pytest.approx(math.log(3))
    expected = np.mean([(mi[:, k].max() - mi[:, k].min()) / h[k] for k in range(2)])
    assert out["mutual_info"] == pytest.approx(mi)
    assert out["score"] == pytest.approx(expected)
    assert 0.05 < out["score"] < 0.9


def test_histogram_discretize_uses_equal_width_bins_like_disentanglement_lib():
    x = np.array([[0.0], [0.24], [0.26], [0.99], [1.0]])
    assert histogram_discretize(x, 4)[:, 0].tolist() == [1, 1, 2, 4, 4]


# ---- DCI


def test_dci_is_one_for_codes_equal_to_factors_and_low_when_rotated(dci_results):
    assert dci_results["identity"]["disentanglement"] > 0.9
    assert dci_results["identity"]["completeness"] > 0.9
    assert dci_results["identity"]["informativeness_test"] > 0.95
    assert dci_results["rotated"]["disentanglement"] < 0.3
    assert dci_results["constant"]["disentanglement"] == 0.0
    assert dci_results["constant"]["completeness"] == 0.0
    assert dci_results["independent"]["disentanglement"] < 0.2


def test_dci_records_its_subsample_and_reduced_trees(dci_results):
    out = dci_results["identity"]
    assert out["subsampled"] is True and out["n_train"] == 800 and out["n_train_given"] == N_TRAIN
    assert out["n_estimators"] == 10 and "800" in out["note"] and "n_estimators" in out["note"]
    assert out["importance_matrix"].shape == (2, 2)


def test_dci_scores_match_a_hand_computation_from_an_importance_matrix():
    # 2 codes x 3 factors, so the entropy bases (3 over factors, 2 over codes) differ.
    r = np.array([[0.6, 0.2, 0.0], [0.0, 0.1, 0.3]])

    def h(p, base):
        p = np.asarray(p, dtype=float) / np.sum(p)
        p = p[p > 0]
        return float(-np.sum(p * np.log(p)) / math.log(base))

    expected_d = (1 - h([0.6, 0.2], 3)) * 0.8 / 1.2 + (1 - h([0.1, 0.3], 3)) * 0.4 / 1.2
    expected_c = (1.0 * 0.6 + (1 - h([0.2, 0.1], 2)) * 0.3 + 1.0 * 0.3) / 1.2
    d, c, _, _ = dci_from_importance(r)
    assert d == pytest.approx(expected_d, abs=1e-6)
    assert c == pytest.approx(expected_c, abs=1e-6)


# ---- SAP


def test_sap_continuous_is_one_for_codes_equal_to_factors_and_low_when_rotated(cases):
    f = cases["factors"]
    assert sap(*_split(cases["identity"], f), continuous_factors=True)["score"] > 0.95
    assert sap(*_split(cases["rotated"], f), continuous_factors=True)["score"] < 0.1
    assert sap(*_split(cases["constant"], f), continuous_factors=True)["score"] == 0.0
    assert sap(*_split(cases["independent"], f), continuous_factors=True)["score"] < 0.05


def test_sap_discrete_is_near_one_for_binary_factors_and_ranks_identity_above_rotation():
    # A 1-D linear classifier separates two classes; with balanced weights the other code scores ~0.5.
    f = _factors(N_TRAIN + N_TEST, sizes=(2, 2), seed=5)
    codes = f + 0.01 * np.random.default_rng(5).normal(size=f.shape)
    ident = sap(*_split(codes, f))
    assert ident["score_matrix"][[0, 1], [0, 1]] == pytest.approx([1.0, 1.0])
    assert ident["score"] == pytest.approx(0.5, abs=0.06)
    t = math.pi / 4
    rot = (codes - codes.mean(0)) @ np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]).T
    assert sap(*_split(rot, f))["score"] < 0.1
    assert sap(*_split(np.zeros_like(codes), f))["score"] == 0.0


def test_sap_continuous_matches_squared_correlation_by_hand():
    rng = np.random.default_rng(6)
    y = rng.normal(size=(200, 1))
    codes = np.column_stack([y[:, 0] + rng.normal(size=200), y[:, 0] + 3 * rng.normal(size=200)])
    out = sap(codes, y, codes, y, continuous_factors=True)
    r2 = [np.corrcoef(codes[:, i], y[:, 0])[0, 1] ** 2 for i in range(2)]
    assert out["score"] == pytest.approx(abs(r2[0] - r2[1]))


# ---- modularity


def test_modularity_is_one_for_codes_equal_to_factors_and_zero_for_constant(cases):
    f = cases["factors"]
    assert modularity(cases["identity"], f)["score"] > 0.99
    assert modularity(cases["rotated"], f)["score"] < 0.2
    assert modularity(cases["constant"], f)["score"] == 0.0


def test_modularity_matches_hand_computation_from_mutual_information():
    f0 = np.array([0, 1] * 20)
    f1 = np.repeat([0, 1], 20)
    code = np.column_stack([f0, f0 ^ f1]).astype(float)  # code 0 = factor 0; code 1 = XOR (no MI with either)
    out = modularity(code, np.column_stack([f0, f1]), num_bins=2)
    mi = out["mutual_info"]
    assert mi[0, 0] == pytest.approx(math.log(2)) and mi[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert mi[1] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert out["per_code"].tolist() == pytest.approx([1.0, 0.0])
    assert out["score"] == pytest.approx(0.5)


# ---- total correlation, active units, cheap metrics


def test_total_correlation_of_a_known_gaussian_is_minus_half_log_one_minus_rho_squared():
    rho = 0.6
    rng = np.random.default_rng(7)
    white = rng.normal(size=(5000, 2))
    white = (white - white.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(white, rowvar=False))).T
    codes = white @ np.linalg.cholesky(np.array([[4.0, rho * 2], [rho * 2, 1.0]])).T
    assert gaussian_total_correlation(codes) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-9)
    assert gaussian_total_correlation(white) == pytest.approx(0.0, abs=1e-9)


def test_total_correlation_ignores_dead_dims_and_is_infinite_for_copies():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(500, 2))
    with_dead = np.column_stack([x, np.zeros(500)])
    assert gaussian_total_correlation(with_dead) == pytest.approx(gaussian_total_correlation(x))
    assert math.isinf(gaussian_total_correlation(np.column_stack([x[:, 0], x[:, 0]])))


def test_active_units_counts_dims_whose_means_vary():
    rng = np.random.default_rng(9)
    codes = rng.normal(size=(1000, 4)) * [1.0, 0.5, 0.05, 0.0]  # variances 1, 0.25, 0.0025, 0
    out = active_units(codes)
    assert out["count"] == 2
    assert out["active"].tolist() == [True, True, False, False]
    assert active_units(codes, threshold=0.001)["count"] == 3


def test_cheap_metrics_are_json_numbers():
    rng = np.random.default_rng(10)
    out = cheap_metrics(rng.normal(size=(1000, 3)) * [2.0, 1.0, 0.5])
    assert set(out) == {"pca_alignment", "pca_alignment_reason", "total_correlation", "active_units", "alignment_codes"}
    assert out["pca_alignment"] > 0.9 and out["active_units"] == 3 and out["total_correlation"] < 0.01
    assert out["alignment_codes"] == "validation"
    json.dumps(out)
    diverged = cheap_metrics(np.full((10, 3), np.nan), np.zeros((10, 2)))
    assert diverged == {
        "factor_alignment": None,
        "pca_alignment": None,
        "total_correlation": None,
        "active_units": None,
        "alignment_codes": "validation",
    }


def test_cheap_metrics_headline_is_the_factor_alignment_with_pca_beside_it():
    rng = np.random.default_rng(11)
    f = rng.uniform(size=(500, 2))
    codes = np.column_stack([(f - f.mean(0)) / f.std(0), np.zeros(500)])  # tied variances: PCA undefined
    out = cheap_metrics(codes, f)
    assert out["factor_alignment"] >= 0.95
    assert out["pca_alignment"] is None and "principal axes not defined" in out["pca_alignment_reason"]


# ---- discretisation


def test_discretize_factors_bins_continuous_values_and_keeps_small_discrete_ones():
    rng = np.random.default_rng(11)
    values = np.column_stack([rng.uniform(0.5, 2.0, 1000), rng.integers(0, 3, 1000)])
    out = discretize_factors(values, num_bins=20)
    assert out["num_bins"] == [20, 3] and out["method"] == ["histogram", "unique"]
    assert out["labels"][:, 0].min() == 0 and out["labels"][:, 0].max() == 19
    assert out["labels"][:, 1].tolist() == values[:, 1].astype(int).tolist()
    again = discretize_factors(values[:10], reference=out)
    assert again["labels"].tolist() == out["labels"][:10].tolist()


def test_metrics_refuse_continuous_factors_without_binning():
    with pytest.raises(UserError, match="discretize_factors"):
        mig(np.zeros((10, 2)), np.linspace(0, 1, 20).reshape(10, 2))


# ---- generator-based scores: a fake ground truth whose images are the factors themselves


class FakeGroundTruth:
    factor_names = ["x", "y", "z"]
    factor_sizes = [5, 6, 7]

    def sample_factors(self, n, rng):
        return np.column_stack([rng.integers(0, s, n) for s in self.factor_sizes])

    def render(self, idx):
        return np.asarray(idx, dtype=np.uint8)[:, None, :]  # (n, 1, K) "images"


def identity_encode(images):
    return images.reshape(len(images), -1).astype(float)


def random_encode(images):
    return np.random.default_rng(int(images.sum()) + len(images)).normal(size=(len(images), 3))


GEN = dict(batch_size=32, num_train=300, num_eval=300)


def test_factor_vae_score_is_one_for_identity_encode_and_chance_for_random():
    gt = FakeGroundTruth()
    ident = factor_vae_score(gt, identity_encode, num_variance_estimate=1000, **GEN)
    assert ident["eval_accuracy"] == 1.0 and ident["num_active_dims"] == 3
    rand = factor_vae_score(gt, random_encode, num_variance_estimate=1000, **GEN)
    assert rand["eval_accuracy"] < 0.5  # chance is 1/3
    assert ident["batch_size"] == 32 and ident["prune_threshold"] == 0.05


def test_factor_vae_score_ignores_dead_dims():
    gt = FakeGroundTruth()
    out = factor_vae_score(
        gt, lambda im: np.column_stack([identity_encode(im), np.zeros(len(im))]), num_variance_estimate=1000, **GEN
    )
    assert out["num_active_dims"] == 3 and out["eval_accuracy"] == 1.0


def test_beta_vae_score_is_high_for_identity_encode_and_chance_for_random():
    gt = FakeGroundTruth()
    assert beta_vae_score(gt, identity_encode, **GEN)["eval_accuracy"] > 0.95
    assert beta_vae_score(gt, random_encode, **GEN)["eval_accuracy"] < 0.5


# ---- everything at once


@pytest.mark.slow  # more than 2 s on the 2-core machine
def test_evaluate_all_is_json_and_records_small_splits_and_binning():
    rng = np.random.default_rng(12)
    f = np.column_stack([rng.uniform(0.5, 2.0, 1200), rng.uniform(0.0, 2.0, 1200)])
    codes = np.column_stack([f, rng.normal(size=1200)])
    out = evaluate_all(
        codes[:1000],
        f[:1000],
        codes[1000:],
        f[1000:],
        ground_truth=FakeGroundTruth(),
        encode=identity_encode,
        generator_settings={
            "factor_vae": {"num_train": 50, "num_eval": 50, "num_variance_estimate": 500},
            "beta_vae": {"num_train": 50, "num_eval": 50},
        },
    )
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    s = out["settings"]
    assert s["n_train"] == 1000 and s["n_test"] == 200 and s["subsampled"] is False
    assert "only 1000 training points" in s["note"] and "only 200 test points" in s["note"]
    assert s["factor_binning"]["num_bins"] == [20, 20]
    assert out["versions"]["sklearn"] == sklearn.__version__
    assert out["mig"]["score"] > 0.6  # each code holds one binned factor
    assert out["sap_continuous"]["score"] > 0.9
    assert out["active_units"]["count"] == 3
    assert out["factor_vae"]["num_train"] == 50 and out["beta_vae"]["eval_accuracy"] > 0.9
    for key in ("mig", "dci", "sap", "modularity", "total_correlation", "pca_alignment", "factor_vae"):
        assert key in out["seconds"]


@pytest.mark.slow  # more than 2 s on the 2-core machine
def test_evaluate_all_subsamples_to_the_study_sizes():
    rng = np.random.default_rng(13)
    n = 10300
    f = rng.integers(0, 4, (n, 2))
    codes = f + 0.1 * rng.normal(size=(n, 2))
    out = evaluate_all(codes[:10100], f[:10100], codes[10100:], f[10100:])
    assert out["settings"]["n_train"] == 10000 and out["settings"]["subsampled"] is True
    assert out["mig"]["n_train"] == 10000
    assert "factor_vae" not in out
