"""Known answers for vae.measures.analysis.factor_alignment and the well-posed pca_alignment (docs/measures.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vae.base.errors import UserError
from vae.measures.analysis import factor_alignment, pca_alignment


def plane_rotation(d, i, j, deg):
    r = np.eye(d)
    t = math.radians(deg)
    r[i, i] = r[j, j] = math.cos(t)
    r[i, j], r[j, i] = -math.sin(t), math.sin(t)
    return r


def factors(n=2000, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, size=(n, k)) * np.linspace(1.5, 2.0, k) + np.linspace(0.5, 0.0, k)


def standardised(f):
    return (f - f.mean(0)) / f.std(0)


def test_factors_on_their_own_axes_score_one_in_any_order_sign_and_scale():
    f = factors()
    s = standardised(f)
    z = np.column_stack([np.zeros(len(f)), -7.0 * s[:, 1], 0.02 * s[:, 0]])  # dead axis, swapped, signs, scales
    out = factor_alignment(z, f)
    assert out["score"] >= 0.95
    assert out["nearest_axis"].tolist() == [2, 1] and out["assigned_axis"].tolist() == [2, 1]
    assert out["angles_deg"] == pytest.approx([0, 0], abs=1)
    assert np.allclose(np.linalg.norm(out["directions"], axis=1), 1.0)
    assert out["abs_cos"].shape == (2, 3) and out["r2"] == pytest.approx([1, 1], abs=0.01)


def test_dead_noise_dims_and_monotone_warps_still_score_high():
    f = factors(seed=1)
    s = standardised(f)
    rng = np.random.default_rng(2)
    z = np.column_stack(
        [
            rng.normal(0, 1, len(f)),  # a noise dim as wide as the codes
            -np.exp(2 * s[:, 1]),  # monotone warp of factor 1
            1e-6 * rng.normal(size=len(f)),  # a dead dim
            s[:, 0] ** 3 + 0.5 * s[:, 0],
        ]
    )  # monotone warp of factor 0
    out = factor_alignment(z, f)
    assert out["score"] >= 0.95
    assert out["assigned_axis"].tolist() == [3, 1]
    assert out["r2"].min() > 0.9


@pytest.mark.parametrize("d,k", [(2, 1), (2, 2), (3, 2), (5, 3), (10, 5), (4, 4)])
def test_any_d_and_k_on_distinct_axes_score_one(d, k):
    rng = np.random.default_rng(d * 10 + k)
    f = factors(k=k, seed=d)
    axes = rng.permutation(d)[:k]
    z = 0.01 * rng.normal(size=(len(f), d))
    for j, ax in enumerate(axes):
        z[:, ax] += rng.choice([-1, 1]) * rng.uniform(0.2, 5) * standardised(f)[:, j]
    out = factor_alignment(z, f)
    assert out["score"] >= 0.95
    assert out["assigned_axis"].tolist() == axes.tolist()


def test_rotation_within_a_plane_lowers_the_score_to_zero_at_45_degrees():
    f = factors(seed=3)
    z = np.column_stack([standardised(f), np.zeros(len(f))])
    scores = [factor_alignment(z @ plane_rotation(3, 0, 1, th).T, f)["score"] for th in (0, 10, 20, 30, 40, 45)]
    assert scores[0] >= 0.95
    assert all(a > b for a, b in zip(scores, scores[1:]))
    assert scores[-1] <= 0.05
    # a tilt towards a dead axis counts the same
    tilted = factor_alignment(z @ plane_rotation(3, 0, 2, 45).T, f)
    assert tilted["per_factor"][0] <= 0.05 and tilted["per_factor"][1] >= 0.95


def test_two_factors_on_one_axis_score_half_or_less():
    f = factors(seed=4)
    s = standardised(f)
    z = np.column_stack([s[:, 0] + s[:, 1], np.zeros(len(f)), np.zeros(len(f))])
    out = factor_alignment(z, f)
    assert out["score"] <= 0.55
    assert len(set(out["assigned_axis"].tolist())) == 2  # distinct axes: one factor cannot have it


def test_a_factor_the_codes_do_not_hold_counts_zero():
    f = factors(seed=5)
    rng = np.random.default_rng(5)
    z = np.column_stack([standardised(f)[:, 0], rng.normal(size=len(f)), np.zeros(len(f))])
    out = factor_alignment(z, f)
    assert out["r2"][1] < 0.1 and out["per_factor"][1] == 0.0
    assert out["score"] == pytest.approx(0.5, abs=0.02) and "not held" in out["note"]


def test_headline_and_local_versions_see_a_factor_that_bends_along_the_sheet():
    f = factors(seed=6)
    s = standardised(f)
    z = np.column_stack([np.sin(s[:, 0]), 1 - np.cos(s[:, 0]), s[:, 1]])  # factor 0 turns through ~200°
    out = factor_alignment(z, f)
    assert out["per_factor"][0] <= 0.1 and out["per_factor"][1] >= 0.95  # the headline sees the bend
    assert out["score"] <= 0.55
    assert out["local"]["per_factor"][0] <= 0.3 and out["local"]["per_factor"][1] >= 0.95
    straight = factor_alignment(np.column_stack([s, np.zeros(len(f))]), f)
    assert straight["local"]["score"] >= 0.95


def test_factor_alignment_rejects_bad_input():
    with pytest.raises(UserError, match="rows"):
        factor_alignment(np.zeros((10, 3)), np.zeros((9, 2)))
    with pytest.raises(UserError, match="NaN"):
        factor_alignment(np.full((10, 3), np.nan), np.zeros((10, 2)))


# ---- PCA, well-posed


def test_pca_of_tied_variances_is_undefined_not_scored():
    f = factors(seed=7)
    z = np.column_stack([standardised(f), np.zeros(len(f))])  # (a, b) standardised plus a dead axis
    for codes in (z, z @ plane_rotation(3, 0, 1, 45).T):
        out = pca_alignment(codes)
        assert out["conditioned"] is False and out["score"] is None
        assert out["eigengap"] < 1.1
        assert "principal axes not defined: two principal variances differ by" in out["reason"]
    assert factor_alignment(z, f)["score"] >= 0.95
    assert factor_alignment(z @ plane_rotation(3, 0, 1, 45).T, f)["score"] <= 0.05


def test_pca_with_distinct_variances_is_conditioned_and_scored():
    rng = np.random.default_rng(8)
    codes = rng.normal(size=(4000, 3)) * [3.0, 1.0, 0.01]  # the dead axis's tie-free: it is not leading
    out = pca_alignment(codes)
    assert out["conditioned"] is True and out["score"] == pytest.approx(1.0, abs=0.01)
    assert out["eigengap"] == pytest.approx(9.0, rel=0.1) and out["reason"] == ""
