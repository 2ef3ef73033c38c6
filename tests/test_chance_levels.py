"""Chance levels: an alignment measure over uniformly random rotations of the codes."""

import json

import numpy as np
import pytest
from scipy import stats as sps

from vae.base.errors import UserError
from vae.measures import analysis
from vae.sweeps import report
from vae.training import evaluate


def test_random_rotations_are_orthogonal_and_haar_uniform():
    q = analysis.random_rotations(3000, 3, seed=1)
    assert np.allclose(q @ np.swapaxes(q, 1, 2), np.eye(3), atol=1e-10)
    # Haar on O(3): any entry squared is Beta(1/2, 1) (a uniform unit vector's first coordinate squared)
    assert sps.kstest(q[:, 0, 0] ** 2, sps.beta(0.5, 1.0).cdf).pvalue > 0.01
    assert sps.kstest(q[:, 2, 1] ** 2, sps.beta(0.5, 1.0).cdf).pvalue > 0.01
    # and the first column is not biased towards positive entries (the sign fix of the QR)
    assert abs(np.mean(q[:, 0, 0] > 0) - 0.5) < 0.04


def test_pca_alignment_chance_of_a_2d_code_matches_its_closed_form():
    # An elongated 2-D cloud rotated by a uniform angle: PCA alignment = (max(|cos|, |sin|) - 1/sqrt2) / (1 - 1/sqrt2),
    # whose mean over a uniform angle is (2 sqrt2 / pi - 1/sqrt2) / (1 - 1/sqrt2) = 0.660.
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((500, 2)) * [3.0, 0.5]
    out = analysis.rotation_baseline(codes, None, "pca_alignment", n=2000, seed=3)
    expected = (2 * np.sqrt(2) / np.pi - 1 / np.sqrt(2)) / (1 - 1 / np.sqrt(2))
    assert out["mean"] == pytest.approx(expected, abs=0.02)
    assert out["n"] == 2000 and 0 <= out["lo"] < 0.1 and out["hi"] > 0.95


def test_an_aligned_code_scores_far_above_its_chance_band():
    rng = np.random.default_rng(2)
    f = rng.uniform(0, 1, (3000, 2))
    codes = np.column_stack([2 * f[:, 0] - 1, 2 * f[:, 1] - 1, 0.05 * rng.standard_normal(3000)])
    score = analysis.factor_alignment(codes, f, local=False)["score"]
    chance = analysis.rotation_baseline(codes, f, "factor_alignment", n=30, seed=0)
    assert score > 0.95 and chance["hi"] < score and 0.1 < chance["mean"] < 0.7
    assert chance["codes"] == analysis.CHANCE_MAX_CODES  # subsampled to stay cheap
    again = analysis.rotation_baseline(codes, f, "factor_alignment", n=30, seed=0)
    assert again == chance  # seeded
    # any function of (codes, factors) works; an unknown name is a one-line error
    flat = analysis.rotation_baseline(codes, f, lambda c, _: {"score": 0.25}, n=5)
    assert flat["mean"] == flat["lo"] == flat["hi"] == 0.25
    with pytest.raises(UserError, match="rotation_baseline knows"):
        analysis.rotation_baseline(codes, f, "mig")


def test_add_chance_levels_reports_beside_the_score_and_the_sweep_draws_the_band(tmp_path):
    rng = np.random.default_rng(4)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {}}))
    lines = ["id,split,a,b,transect,point,mu_1,mu_2"]
    for i in range(400):
        a, b = rng.uniform(size=2)
        lines.append(f"{i},{'train' if i < 300 else 'validation'},{a},{b},,0,{a + b},{a - b}")
    (run / "latents.csv").write_text("\n".join(lines) + "\n")
    (run / "evaluation.json").write_text(
        json.dumps({"factor_names": ["a", "b"], "settings": {"max_train": 10000}, "summary": {"factor_alignment": 0.0}})
    )
    evaluate.add_chance_levels(run, n=40)
    doc = json.loads((run / "evaluation.json").read_text())
    chance = doc["summary"]["chance"]["factor_alignment"]
    assert doc["summary"]["factor_alignment"] == 0.0  # the score stays, the chance sits beside it
    assert chance["lo"] <= chance["mean"] <= chance["hi"] and doc["chance"]["factor_alignment"]["codes"] == 300
    row = {"eval_factor_alignment": 0.0, **{f"eval_chance_factor_alignment_{k}": v for k, v in chance.items()}}
    assert report.chance_band([row, row], "eval_factor_alignment")["mean"] == pytest.approx(chance["mean"])
    assert report.metric_columns([row]) == ["eval_factor_alignment"]  # chance is a band, not a metric
    assert report.chance_band([row], "eval_mig") is None
