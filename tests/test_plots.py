"""vae.views.plots: figures hold the numbers they were given; images have the study's layout."""

from pathlib import Path

import numpy as np
import pytest

from vae.base.paths import data_root, datasets_root, runs_root
from vae.views import plots


def _metrics():
    rows = []
    for epoch in (1, 2):
        for step in (5, 10):
            rows.append(
                dict(
                    kind="batch",
                    epoch=epoch,
                    step=step,
                    global_step=(epoch - 1) * 10 + step,
                    loss=1.0 / (epoch * step),
                    recon=0.5,
                    beta_kl=0.1,
                    gamma_entanglement=0.01,
                    ent_seed=0.3,
                    ent_covariance=0.2,
                    ent_dip_i=0.4,
                    time=epoch * step,
                    images_per_s=100,
                )
            )
        rows.append(
            dict(
                kind="epoch",
                epoch=epoch,
                step=10,
                global_step=epoch * 10,
                loss=0.2,
                val_loss=0.25 / epoch,
                recon=0.5,
                val_recon=0.6,
                beta_kl=0.1,
                val_beta_kl=0.1,
            )
        )
    return rows


def test_paths_follow_vae_lab_home(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path))
    assert data_root() == tmp_path and datasets_root() == tmp_path / "datasets" and runs_root() == tmp_path / "runs"
    assert not runs_root().exists() and runs_root(create=True).is_dir()
    monkeypatch.delenv("VAE_LAB_HOME")
    assert data_root() == Path.cwd()


def test_loss_latex_shows_the_weights():
    tex = plots.loss_latex(0.001, 1e-4, "seed")
    assert "0.001" in tex and "0.0001" in tex and r"\mu_i\mu_j" in tex
    assert r"3\times10^{-7}" in plots.loss_latex(3e-7, 0, "covariance")


def test_loss_curves_hold_train_and_validation_points():
    fig = plots.loss_curves(_metrics(), steps_per_epoch=10)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["total (train)"].y) == pytest.approx([0.2, 0.1, 0.1, 0.05])
    assert list(by_name["total (train)"].x) == [0.5, 1.0, 1.5, 2.0]
    assert list(by_name["total (validation)"].y) == pytest.approx([0.25, 0.125])
    assert "γ·entanglement (train)" in by_name
    assert plots.loss_curves(_metrics(), log_y=True).layout.yaxis.type == "log"


def test_loss_curves_of_no_metrics_is_empty():
    assert len(plots.loss_curves([]).data) == 0


def test_entanglement_diagnostics_draws_all_three_modes():
    names = {t.name for t in plots.entanglement_diagnostics(_metrics()).data}
    assert {"seed (train)", "covariance (train)", "dip-i (train)"} <= names


def test_pairs_grid_is_two_pairs_by_ten_rows():
    inputs = np.full((20, 8, 8), 200, np.uint8)
    recons = np.full((20, 8, 8), 100, np.uint8)
    img = plots.pairs_grid(inputs, recons, columns=2, pad=2)
    assert img.shape == (10 * 10 + 2, 4 * 10 + 2)
    assert img[2, 2] == 200 and img[2, 12] == 100 and img[2, 22] == 200


def test_transect_strip_boxes_hole_points_in_yellow():
    truth = np.zeros((5, 10, 10), np.uint8)
    img = plots.transect_strip(truth, truth, [False, False, True, False, False], pad=3, box=2)
    assert img.shape == (2 * 13 + 3, 5 * 13 + 3, 3)
    x_hole = 3 + 2 * 13 - 1  # left edge of point 3's box
    assert (img[8, x_hole] == plots.YELLOW).all()
    assert not (img == plots.YELLOW).all(axis=-1)[:, : 3 + 13 * 2 - 2].any()


def test_parameter_space_draws_splits_transects_and_hole():
    rng = np.random.default_rng(0)
    n = 50
    cols = dict(
        a=rng.uniform(0.5, 2, n),
        b=rng.uniform(0, 2, n),
        split=np.array(["train"] * 30 + ["validation"] * 10 + ["hole"] * 5 + ["transects"] * 5),
        transect=np.array([""] * 45 + ["P1"] * 5),
        point=np.r_[np.zeros(45), np.arange(5, 0, -1)],
    )
    fig = plots.parameter_space(cols, ["a", "b"], hole=((1.25, 1.0), 0.3))
    names = [t.name for t in fig.data]
    assert names[:3] == ["train (30)", "validation (10)", "hole (5)"] and "transect P1" in names
    p1 = next(t for t in fig.data if t.name == "transect P1")
    assert list(p1.x) == list(cols["a"][45:][::-1])  # in point order
    assert fig.layout.shapes[0].type == "circle"


def test_parameter_space_of_many_factors_is_a_scatter_matrix():
    rng = np.random.default_rng(0)
    cols = {f: rng.uniform(size=20) for f in ("scale", "x", "y")}
    fig = plots.parameter_space(cols, ["scale", "x", "y"])
    assert fig.data[0].type == "splom" and len(fig.data[0].dimensions) == 3


def test_embedding_3d_has_black_points_and_coloured_transects():
    mu = np.arange(40, dtype=float).reshape(10, 4)
    fig = plots.embedding_3d(mu, dims=(1, 2, 3), transects={"P1": mu[:3], "P3": mu[3:6]})
    points, p1, p3 = fig.data
    assert list(points.x) == list(mu[:, 1]) and points.marker.color == "black" and points.marker.size == 1.5
    assert p1.line.color == "blue" and p3.line.color == "red" and p1.mode == "lines+markers"
    assert list(p3.z) == list(mu[3:6, 3]) and fig.layout.scene.xaxis.title.text == "μ2"


def test_embedding_3d_colours_by_factor_or_split():
    mu = np.random.default_rng(0).normal(size=(6, 2))
    by_factor = plots.embedding_3d(mu, dims=(0, 1), colour=np.arange(6.0), colour_name="a")
    assert by_factor.data[0].marker.showscale and list(by_factor.data[0].z) == [0.0] * 6
    by_split = plots.embedding_3d(mu, colour=np.array(["train"] * 4 + ["hole"] * 2), dims=(0, 1))
    assert sorted(t.name for t in by_split.data) == ["hole", "train"]


def test_heatmap_and_explained_variance_hold_values():
    m = np.array([[1.0, -0.5], [-0.5, 2.0]])
    fig = plots.heatmap(m, ["μ1", "μ2"])
    assert np.allclose(fig.data[0].z, m) and list(fig.data[0].x) == ["μ1", "μ2"]
    ev = plots.explained_variance([0.7, 0.2, 0.1])
    assert list(ev.data[1].y) == pytest.approx([0.7, 0.9, 1.0])


def test_scatter_against_puts_zero_at_the_left_edge_of_a_log_axis():
    rows = [dict(name="a", beta=0.0, score=0.1), dict(name="b", beta=1e-3, score=0.2), dict(name="c", beta=1e-2)]
    fig = plots.scatter_against(rows, "beta", "score")
    assert list(fig.data[0].x) == pytest.approx([1e-4, 1e-3]) and fig.layout.xaxis.type == "log"


def test_zero_on_a_log_axis_sits_on_a_tick_that_reads_0_not_a_power_of_ten():
    rows = [
        dict(name="a", gamma=0.0, score=0.1),
        dict(name="b", gamma=1e-3, score=0.2),
        dict(name="c", gamma=1e-2, score=0.3),
    ]
    axis = plots.scatter_against(rows, "gamma", "score").layout.xaxis
    assert list(axis.ticktext) == ["0", "1e-3", "0.01"]
    assert list(axis.tickvals) == pytest.approx([1e-4, 1e-3, 1e-2])  # "0" where the γ = 0 runs are drawn


def test_only_zeros_draw_on_a_linear_axis_whose_tick_reads_0():
    rows = [dict(name="a", gamma=0.0, score=0.1), dict(name="b", gamma=0.0, score=0.2)]
    fig = plots.scatter_against(rows, "gamma", "score")
    assert fig.layout.xaxis.type != "log" and list(fig.data[0].x) == [0.0, 0.0]


def test_categories_get_distinct_qualitative_colours():
    rows = [
        dict(name=str(k), gamma=0.0, method=m, score=0.1 * k)
        for k, m in enumerate(["beta-vae", "factor-vae", "beta-tcvae"])
    ]
    fig = plots.scatter_against(rows, "gamma", "score", colour="method")
    colours = [t.marker.color for t in fig.data]
    assert len(set(colours)) == 3 and set(colours) <= set(plots.QUALITATIVE)


def test_traversal_codes_move_along_the_direction():
    codes = plots.traversal_codes(np.zeros(3), np.array([0, 2.0, 0]), spread=1.0, steps=5, span=2.0)
    assert codes.shape == (5, 3) and list(codes[:, 1]) == [-2, -1, 0, 1, 2] and not codes[:, [0, 2]].any()


def test_montage_and_stack_strips_shapes():
    m = plots.montage(np.zeros((7, 4, 4), np.uint8), ncols=3, pad=1)
    assert m.shape == (3 * 5 + 1, 3 * 5 + 1)
    s = plots.stack_strips([np.zeros((4, 10), np.uint8), np.zeros((4, 6), np.uint8)], pad=2)
    assert s.shape == (10, 10)


def test_analysis_curves_chart_alignment_and_each_transects_straightness():
    from vae.views.plots import analysis_curves

    rows = [{"kind": "batch", "epoch": 1, "step": 5}] + [
        {"kind": "epoch", "epoch": e, "alignment_score": 0.1 * e, "straightness_P1": 0.9, "straightness_P2": 0.8}
        for e in (1, 2, 3)
    ]
    fig = analysis_curves(rows)
    names = [t.name for t in fig.data]
    assert names == ["PCA alignment (validation codes, older run)", "straightness P1", "straightness P2"]
    assert list(fig.data[0].y) == [0.1, 0.2, 0.30000000000000004]


def test_own_axis_angle_is_measured_to_the_own_axis_not_the_nearest():
    abs_cos = np.array([[0.2, 0.9, 0.1], [0.1, 0.95, 0.3]])  # both factors nearest μ2; the second owns μ3
    angles = plots.own_axis_angles(abs_cos, [1, 2])
    assert angles == [
        pytest.approx(np.degrees(np.arccos(0.9)), abs=0.05),
        pytest.approx(np.degrees(np.arccos(0.3)), abs=0.05),
    ]
    assert plots.own_axis_angles(abs_cos, [1, -1])[1] is None


def test_principal_axes_have_distinct_colours_and_no_arrow_outgrows_the_cloud():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(500, 3)) * [1.0, 0.5, 0.2]
    pca = {"components": np.eye(3), "explained_variance": codes.var(0), "conditioned": True}
    fa = {"directions": np.array([[1.0, 0, 0]]), "slopes": [1000.0]}  # a factor the codes barely follow
    arrows = plots.alignment_arrows(codes, rng.normal(size=500), fa, pca, ["a"])
    pcs = [a for a in arrows if a["name"].startswith("PC")]
    assert len({a["colour"] for a in pcs}) == 3
    cap = 4 * np.sqrt(codes.var(0).sum())
    assert all(np.linalg.norm(a["vector"]) <= cap + 1e-9 for a in arrows)
    assert "cut" in arrows[0]["name"]


def test_a_collapsed_latent_does_not_flatten_the_3d_box():
    rng = np.random.default_rng(0)
    codes = np.column_stack([rng.normal(size=300), rng.normal(size=300), 1e-4 * rng.normal(size=300)])
    scene = plots.embedding_3d(codes).layout.scene
    assert scene.aspectmode == "manual" and scene.aspectratio.z == 0.15  # not 1e-4: the camera stays outside
    assert max(scene.aspectratio.x, scene.aspectratio.y) == 1.0  # the box within the unit cube
    spread = rng.normal(size=(300, 3)) * [2.0, 1.0, 0.5]
    healthy = plots.embedding_3d(spread).layout.scene.aspectratio  # otherwise drawn to scale
    assert healthy.y / healthy.x == pytest.approx(np.ptp(spread[:, 1]) / np.ptp(spread[:, 0]))


def test_hole_and_validation_colours_are_far_apart():
    def rgb(h):
        return np.array([int(h[i : i + 2], 16) for i in (1, 3, 5)], float)

    c = plots.SPLIT_COLOURS
    assert np.linalg.norm(rgb(c["hole"]) - rgb(c["validation"])) > 150  # yellow vs orange was ~75
