"""Known answers for the measures (numpy only): factor alignment of mixed, bent and shared
codes; PCA alignment's tie gate and its trivial case; what the entanglement terms prefer on the data.

Each of these failed on the measures of 2026-11-29 (CHANGELOG.md); the numbers those gave are in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from vae.base.errors import UserError
from vae.measures.analysis import (
    PCA_NAME,
    entanglement_profile,
    entanglement_value,
    factor_alignment,
    factor_movement,
    pca_alignment,
)

N = 2000


def ab(n=N, seed=0):
    rng = np.random.default_rng(seed)
    f = np.column_stack([rng.uniform(0.5, 2.0, n), rng.uniform(0.0, 2.0, n)])
    s = (f - f.mean(0)) / f.std(0)
    return f, s[:, 0], s[:, 1], rng


def score(z, f):
    return factor_alignment(z, f, local=False)["score"]


# ---- factor alignment


def test_scaling_a_latent_axis_does_not_change_the_score():
    f, a, b, _ = ab()
    zero = np.zeros(N)
    even = score(np.column_stack([a + b, a - b, zero]), f)
    stretched = score(np.column_stack([a + b, 10 * (a - b), zero]), f)  # main: 0.49 against 0.00
    assert stretched == pytest.approx(even, abs=1e-9) and even <= 0.05
    rng = np.random.default_rng(1)
    z = np.column_stack([a + 0.3 * b, b - 0.2 * a, 0.1 * rng.normal(size=N)])
    assert score(z * [-3.0, 0.01, 70.0], f) == pytest.approx(score(z, f), abs=1e-9)


def test_a_shared_nuisance_axis_lowers_the_score_the_more_of_it_there_is():
    f, a, b, rng = ab(seed=2)
    noise = 0.05 * rng.normal(size=(N, 3))
    scores = [score(np.column_stack([a, b, k * (a + b)]) + noise, f) for k in (0.0, 0.3, 1.0, 3.0)]
    # main: 0.86 / 0.00 / 0.41 for k = 0.3 / 1 / 3 (a larger shared axis raised the score)
    assert scores[0] >= 0.95
    assert all(later <= earlier + 1e-9 for earlier, later in zip(scores, scores[1:]))
    assert max(scores[1:]) <= 0.6
    assert score(np.column_stack([f[:, 0], f[:, 1], f[:, 0] * f[:, 1]]), f) <= 0.6  # main: 0.13, ab shared


def test_a_factor_on_a_semicircle_across_two_axes_scores_low_in_the_headline():
    f, _, b, _ = ab(seed=3)
    t = (f[:, 0] - 0.5) / 1.5 * np.pi
    z = np.column_stack([np.cos(t), np.sin(t), b])  # main: 1.00 (only the local block saw the bend)
    out = factor_alignment(z, f, local=False)
    assert out["per_factor"][0] <= 0.1 and out["per_factor"][1] >= 0.95
    assert out["score"] <= 0.55


def test_movement_attributes_correlated_factors_jointly():
    rng = np.random.default_rng(4)
    a = rng.normal(size=N)
    b = 0.6 * a + 0.8 * rng.normal(size=N)  # corr(a, b) = 0.6
    f = np.column_stack([a, b])
    m = factor_movement(np.column_stack([a, b, np.zeros(N)]), f)["movement"]
    assert m[0, 0] == pytest.approx(1.0, abs=0.05) and m[1, 1] == pytest.approx(1.0, abs=0.05)
    assert m[0, 1] <= 0.1 and m[1, 0] <= 0.1 and np.all(m[:, 2] == 0)
    assert score(np.column_stack([a, b, np.zeros(N)]), f) >= 0.95


def test_old_known_answers_hold_for_perfect_codes_rotations_and_shared_axes():
    f, a, b, rng = ab(seed=5)
    zero = np.zeros(N)
    perfect = np.column_stack([1e-7 * rng.normal(size=N), -np.exp(2 * b), a**3 + 0.5 * a, rng.normal(size=N)])
    assert score(perfect, f) >= 0.95  # permutation, sign, monotone warps, a dead and a noise latent
    assert score(np.column_stack([(a + b) / 2**0.5, (a - b) / 2**0.5, zero]), f) <= 0.05
    assert score(np.column_stack([a + b, zero, zero]), f) == pytest.approx(0.5, abs=0.05)


# ---- PCA alignment: principal axes on latent axes


def test_an_exact_tie_at_200_codes_is_not_scored_in_95_percent_of_resamples():
    rng = np.random.default_rng(6)
    scored = sum(pca_alignment(rng.normal(size=(200, 2)))["score"] is not None for _ in range(300))
    assert scored <= 15  # main: 81% scored
    uniform = sum(pca_alignment(rng.uniform(-1, 1, (200, 2)))["score"] is not None for _ in range(300))
    assert uniform <= 15
    clear = pca_alignment(rng.normal(size=(200, 2)) * [2.0, 1.0])
    assert clear["score"] is not None and clear["tie_z"] >= 3


def test_pca_alignment_is_named_for_what_it_is_and_cannot_see_mixing():
    f, a, b, _ = ab(seed=7)
    z = np.column_stack([a + b, 0.5 * (a - b)])
    pca = pca_alignment(z)
    assert pca["name"] == PCA_NAME == "principal axes on latent axes"
    assert pca["score"] == pytest.approx(1.0, abs=0.01)  # its principal axes do lie on latent axes
    assert score(z, f) <= 0.05  # the factors do not


def test_pca_alignment_is_trivial_with_fewer_than_two_active_latents():
    rng = np.random.default_rng(8)
    z = np.column_stack([rng.normal(size=N), 1e-3 * rng.normal(size=N), np.zeros(N)])
    out = pca_alignment(z)  # main: 1.000, read as the study's goal
    assert out["trivial"] is True and out["active"] == 1 and out["score"] is None
    assert out["reason"].startswith("trivial: 1 active latent")
    assert pca_alignment(z * [1.0, 300.0, 1.0])["trivial"] is False


# ---- what the entanglement terms prefer


def test_the_seed_term_prefers_a_uniform_square_mixed_and_a_laplace_one_aligned():
    rng = np.random.default_rng(9)
    square = entanglement_profile(rng.uniform(-1, 1, (20000, 2)), mode="seed", angles=[0, 15, 30, 45, 60, 90])
    assert square["best_angle"].tolist() == [45.0]
    assert square["values"][0][0] == pytest.approx(0.25, abs=0.01)  # E|z1 z2| aligned
    assert square["values"][0][3] == pytest.approx(1 / 6, abs=0.01)  # at 45 degrees
    laplace = entanglement_profile(rng.laplace(size=(20000, 2)), mode="seed")
    assert laplace["best_angle"].tolist() == [0.0]
    assert laplace["values"][0][0] == pytest.approx(1.0, abs=0.05)
    assert laplace["values"][0][9] == pytest.approx(1.5, abs=0.08)


def test_entanglement_profile_covers_every_plane_and_term():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(500, 3)) * [1.0, 2.0, 0.5]
    for mode in ("seed", "covariance", "dip-i"):
        out = entanglement_profile(x, mode=mode)
        assert out["planes"] == [(0, 1), (0, 2), (1, 2)] and out["values"].shape == (3, 19)
        assert out["values"][:, 0] == pytest.approx([entanglement_value(x, mode)] * 3)
        assert out["relative"][:, 0] == pytest.approx(1.0)
    # covariance of independent axes with different spreads: mixing them creates covariance
    assert set(entanglement_profile(x, mode="covariance")["best_angle"].tolist()) <= {0.0, 90.0}  # 90: swapped
    with pytest.raises(UserError, match="mode"):
        entanglement_profile(x, mode="nope")


# ---- active units, per-latent KL and the collapse flag; one checkpoint rule


def test_latent_usage_counts_active_latents_kl_per_latent_and_flags_collapse():
    from vae.measures.metrics import latent_usage

    rng = np.random.default_rng(11)
    mu = np.column_stack([rng.normal(0, 1.0, N), rng.normal(0, 2.0, N), 1e-3 * rng.normal(size=N)])
    out = latent_usage(mu, num_factors=2)
    assert out["active_units"] == 2 and out["collapsed"] is False and out["collapsed_latents"] == 1
    # textbook KL with the study's constant sigma 0.1: 0.5 (mu^2 + 0.01 - log 0.01 - 1), mean over images
    expect = 0.5 * ((mu**2).mean(0) + 0.01 - np.log(0.01) - 1.0)
    assert out["kl_per_latent"] == pytest.approx(expect) and out["kl_total"] == pytest.approx(expect.sum())
    assert latent_usage(mu[:, [0, 2]], num_factors=2)["collapsed"] is True
    logvar = np.log(np.full(mu.shape, 0.25))
    learned = latent_usage(mu, logvar=logvar)["kl_per_latent"]
    assert learned == pytest.approx(0.5 * ((mu**2).mean(0) + 0.25 - np.log(0.25) - 1.0))


def test_the_checkpoint_rule_is_reconstruction_plus_kl_whatever_the_method_adds():
    from vae.model.methods import selection_loss

    study = {"val_recon": 0.03, "val_kl": 4.0, "val_loss": 0.07, "val_tc": -26.0, "val_gamma_entanglement": 9.0}
    # study reduction: per-pixel mean BCE x 4096 pixels + KL mean over 3 latents (no 1/2) x 3/2
    assert selection_loss(study, "study", 64 * 64, 3) == pytest.approx(0.03 * 4096 + 4.0 * 1.5)
    assert selection_loss({**study, "val_tc": 100.0}, "study", 4096, 3) == selection_loss(study, "study", 4096, 3)
    assert selection_loss({"val_recon": 120.0, "val_kl": 6.0}, "papers", 4096, 3) == pytest.approx(126.0)
    assert selection_loss({"val_loss": 1.0}, "study", 4096, 3) == float("inf")


def test_compare_rows_say_which_epoch_was_evaluated_and_whether_latents_collapsed():
    from vae.views.compare import alignment_columns

    summary = {
        "factor_alignment": 0.4,
        "pca_alignment": None,
        "evaluated_epoch": 7,
        "active_units": 1,
        "collapsed": True,
    }
    out = alignment_columns(summary, {"epoch": 15, "active_units": 3})
    assert out["evaluated epoch"] == 7 and out["active_units"] == 1 and out["collapsed"] is True
    assert alignment_columns({}, {"factor_alignment": 0.2, "epoch": 15})["evaluated epoch"] == 15


# ---- data that separates the two questions


@pytest.mark.parametrize("preset", ["seed-correlated", "seed-correlated-punctured"])
def test_a_perfect_factor_code_on_correlated_starfish_aligns_factors_not_principal_axes(preset):
    from vae.data import presets

    plan = presets.plan(presets.preset_spec(preset))
    train = plan["split"] == "train"
    f = np.column_stack([plan["a"], plan["b"]])[train]
    assert np.corrcoef(f.T)[0, 1] == pytest.approx(presets.CORRELATED_RHO, abs=0.05)
    x, y = ((f - f.min(0)) / np.ptp(f, axis=0) - 0.5).T  # the box scaled to [-0.5, 0.5]^2
    assert not np.any((x > 0.25) & (y < -0.25)) and not np.any((x < -0.25) & (y > 0.25))  # corners a box fills
    rng = np.random.default_rng(12)
    z = np.column_stack([f[:, 0], f[:, 1], np.zeros(len(f))]) + 0.01 * rng.normal(size=(len(f), 3))
    fa = factor_alignment(z, f, local=False)["score"]
    pca = pca_alignment(z)
    assert fa >= 0.95
    assert pca["score"] is not None and pca["score"] <= 0.7 and fa - pca["score"] >= 0.25  # 0.65 at rho = 0.6


# ---- published weights mean what they say


def test_a_papers_method_defaults_to_the_papers_reduction_and_kl_weight(tmp_path, tiny_dataset):
    from vae.cli import _config_from_args, build_parser
    from vae.model import methods

    def config(*extra):
        return _config_from_args(build_parser().parse_args(["train", "--data", str(tiny_dataset), *extra]))

    for method in ("factor-vae", "beta-tcvae", "dip-vae-i"):
        cfg = config("--method", method)
        assert (cfg.reduction, cfg.beta) == ("papers", 1.0)
        assert methods.papers_mismatch(method, cfg.reduction, cfg.beta) == ""
    annealed = config("--method", "annealed")
    assert annealed.reduction == "papers" and annealed.beta == config().beta  # AnnealedVAE does not use β
    plain = config("--method", "beta-vae")
    assert (plain.reduction, plain.beta) == (config().reduction, config().beta)  # β-VAE's β is the user's
    chosen = config("--method", "factor-vae", "--reduction", "study", "--beta", "0.001")
    assert (chosen.reduction, chosen.beta) == ("study", 0.001)  # the user can still choose otherwise
    warning = methods.papers_mismatch("factor-vae", chosen.reduction, chosen.beta)
    assert "study reduction" in warning and "β = 0.001" in warning and "paper uses 1" in warning


def test_a_collapsed_latent_that_still_wiggles_with_a_factor_is_dead_when_marked_inactive():
    from vae.measures.analysis import active_latents

    f, a, b, _ = ab(seed=13)
    z = np.column_stack([a, b, 0.005 * (a + b)])  # a collapsed latent (Var 5e-5) that follows both factors
    assert score(z, f) <= 0.6  # scale-free: any latent that varies counts
    active = active_latents(z)
    assert active.tolist() == [True, True, False]
    assert factor_alignment(z, f, local=False, active=active)["score"] >= 0.95


def test_active_units_and_collapse_reach_the_sweeps_metric_list():
    from vae.sweeps.sweep import _flatten
    from vae.sweeps.report import label, metric_columns

    summary = {
        "factor_alignment": 0.3,
        "active_units": 2,
        "collapsed": False,
        "collapsed_latents": 1,
        "kl_total": 6.1,
        "kl_per_latent": {"1": 1.9, "2": 1.8, "3": 2.4},
    }
    flat = {}
    _flatten("", summary, flat)
    row = {"state": "finished", **{f"eval_{k}": v for k, v in flat.items()}}
    cols = metric_columns([row])
    assert {"eval_active_units", "eval_collapsed_latents", "eval_kl_total", "eval_kl_per_latent_1"} <= set(cols)
    assert row["eval_collapsed"] is False  # the stable key the Sweeps answer reads
    assert label("eval_active_units") == "active units"


def test_evaluated_epoch_reads_the_trainers_best_epoch_or_names_the_old_rule(tmp_path):
    import json as _json

    from vae.training.evaluate import evaluated_epoch

    rows = [{"kind": "epoch", "epoch": e, "val_loss": v} for e, v in ((1, 3.0), (2, 1.0), (3, 2.0))]
    (tmp_path / "metrics.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in rows))
    epoch, rule = evaluated_epoch(tmp_path)
    assert epoch == 2 and "before the one checkpoint rule" in rule
    rows[-1]["best_epoch"] = 3  # the trainer's own record wins
    (tmp_path / "metrics.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in rows))
    assert evaluated_epoch(tmp_path)[0] == 3
