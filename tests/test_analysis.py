"""Known answers for vae.measures.analysis: PCA alignment, transect geometry, the hole."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from vae.base.errors import UserError
from vae.base.fileio import jsonable
from vae.measures.analysis import (
    covered_region_mask,
    hole_analysis,
    pca_alignment,
    pixel_pca,
    transect_geometry,
    transects_geometry,
)


def rotation(deg):
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


@pytest.mark.slow  # more than 2 s on the 2-core machine
def test_analysis_and_metrics_never_import_tensorflow_or_keras():
    code = (
        "import sys, vae.measures.analysis, vae.measures.metrics; "
        "bad = [m for m in ('tensorflow', 'keras', 'streamlit') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- PCA alignment


def test_axis_aligned_codes_score_one():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(2000, 3)) * [3.0, 1.0, 0.3]
    out = pca_alignment(codes)
    assert out["score"] == pytest.approx(1.0, abs=0.01)
    assert np.all(out["angles_deg"] < 3)
    assert out["nearest_axis"].tolist() == [0, 1, 2]
    assert not out["degenerate"].any()
    assert out["explained_variance_ratio"].sum() == pytest.approx(1.0)
    assert np.allclose(np.linalg.norm(out["components"], axis=1), 1.0)


def test_codes_rotated_45_degrees_score_zero_and_angles_45():
    rng = np.random.default_rng(1)
    codes = (rng.normal(size=(4000, 2)) * [3.0, 1.0]) @ rotation(45).T
    out = pca_alignment(codes)
    assert out["score"] == pytest.approx(0.0, abs=0.02)
    assert out["angles_deg"] == pytest.approx([45, 45], abs=1.5)
    assert out["abs_cos"] == pytest.approx(np.full((2, 2), 1 / math.sqrt(2)), abs=0.02)


def test_alignment_score_matches_hand_computation_for_a_known_covariance():
    # Exact covariance: a 30-degree tilt in the (0, 1) plane with variances 4 and 1, plus an axis of variance 0.25.
    r = np.eye(3)
    r[:2, :2] = rotation(30)
    cov = r @ np.diag([4.0, 1.0, 0.25]) @ r.T
    rng = np.random.default_rng(2)
    white = rng.normal(size=(20000, 3))
    white = (white - white.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(white, rowvar=False))).T
    codes = white @ np.linalg.cholesky(cov).T  # sample covariance == cov exactly
    out = pca_alignment(codes)
    floor = 1 / math.sqrt(3)
    per_axis = (math.cos(math.radians(30)) - floor) / (1 - floor)
    expected = (4 * per_axis + 1 * per_axis + 0.25 * 1.0) / 5.25
    assert out["score"] == pytest.approx(expected, abs=1e-6)
    assert out["angles_deg"] == pytest.approx([30, 30, 0], abs=1e-6)


def test_principal_axes_with_equal_variance_are_flagged_degenerate():
    rng = np.random.default_rng(3)
    codes = rng.normal(size=(5000, 3)) * [2.0, 1.0, 1.0]
    out = pca_alignment(codes)
    assert out["degenerate"].tolist() == [False, True, True]
    assert 0.2 < out["degenerate_variance_fraction"] < 0.5


def test_constant_codes_have_no_alignment_score():
    out = pca_alignment(np.ones((50, 3)))
    assert out["score"] is None and out["reason"] == "the codes have no variance"
    assert json.loads(json.dumps(jsonable(out)))["score"] is None


def test_pixel_pca_finds_the_factor_that_drives_the_pixels():
    rng = np.random.default_rng(4)
    n = 300
    factors = np.column_stack([rng.uniform(0, 1, n), rng.uniform(0, 1, n)])
    images = np.zeros((n, 8, 8))
    images[:, :4, :] = 200 * factors[:, :1, None]  # top half brightness = factor 0 (strong)
    images[:, 4:, :4] = 100 * factors[:, 1:2, None]  # bottom-left brightness = factor 1 (weaker)
    out = pixel_pca(images.astype(np.uint8), factors, ["a", "b"], n_components=3)
    assert out["components"].shape == (3, 8, 8)
    assert out["abs_r"].shape == (2, 3)
    assert out["best_component"].tolist() == [0, 1]
    assert out["best_abs_r"] == pytest.approx([1.0, 1.0], abs=0.02)
    assert out["abs_r"][0, 1] < 0.1


# ---- curved factors


def test_straight_line_has_straightness_one_and_tilted_line_is_not_on_an_axis():
    t = np.linspace(0, 1, 15)[:, None]
    line = t * np.array([[1.0, 1.0, 0.0]])
    out = transect_geometry(line)
    assert out["straightness"] == pytest.approx(1.0)
    assert out["linear_ratio"] == pytest.approx(1.0)
    assert out["axis_ratio"] == pytest.approx(0.5)  # lies on a line, but between two axes
    on_axis = transect_geometry(t * np.array([[0.0, 2.0, 0.0]]))
    assert on_axis["axis_ratio"] == pytest.approx(1.0)
    assert on_axis["main_axis"] == 1


def test_half_circle_has_straightness_two_over_pi():
    th = np.linspace(0, math.pi, 2001)
    out = transect_geometry(np.column_stack([np.cos(th), np.sin(th)]))
    assert out["straightness"] == pytest.approx(2 / math.pi, abs=1e-5)
    assert out["linear_ratio"] < 0.7


def test_transects_are_grouped_by_name_and_sorted_by_point():
    mu = np.array([[2.0, 0], [0, 0], [1, 0], [9, 9], [0, 5], [0, 3]])
    labels = ["P1", "P1", "P1", "", "P2", "P2"]
    points = [3, 1, 2, 0, 2, 1]
    out = transects_geometry(mu, labels, points)
    assert sorted(out) == ["P1", "P2"]
    assert out["P1"]["path"][:, 0].tolist() == [0, 1, 2]
    assert out["P2"]["points"].tolist() == [1, 2]
    assert out["P1"]["straightness"] == pytest.approx(1.0)


# ---- the hole


def test_covered_region_is_the_ring_around_the_hole():
    a = np.array([1.25, 1.25, 1.25, 1.25, 2.0])
    b = np.array([1.0, 1.2, 1.45, 1.95, 0.0])  # distances 0, 0.2, 0.45, 0.95, far
    assert covered_region_mask(a, b).tolist() == [False, False, True, False, False]
    assert covered_region_mask(a, b, margin=None).tolist() == [False, False, True, True, True]


def test_hole_analysis_compares_reconstruction_loss_with_the_ring():
    out = hole_analysis([2.0, 4.0], [1.0, 1.0, 1.0])
    assert out["recon_ratio_mean"] == pytest.approx(3.0)
    assert out["recon_ratio_median"] == pytest.approx(3.0)
    assert out["n_hole"] == 2 and out["n_covered"] == 3
    json.dumps(jsonable(out))


def test_hole_analysis_needs_losses():
    with pytest.raises(UserError, match="at least one"):
        hole_analysis([], [1.0])
