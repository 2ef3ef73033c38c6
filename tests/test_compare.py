"""Compare's library: which runs are comparable, which have converged (no Streamlit here)."""

from __future__ import annotations

import numpy as np

from vae.views import compare


def row(name, state="finished", converged="converged", **settings):
    base = dict(
        dataset="seed-full-64",
        arch="seed",
        method="beta-vae",
        epochs=10,
        latent_dim=3,
        entanglement="seed",
        variance="constant",
        batch_size=8,
        lr=1e-4,
        beta=0.001,
        gamma=1e-4,
        image_size=64,
        sample_weights=False,
        precision="float32",
        seed=0,
    )
    return {"name": name, "state": state, "converged": converged, "stopped": state != "finished", **base, **settings}


# ---------------------------------------------------------------- convergence on made-up curves


def test_a_curve_that_has_levelled_off_is_converged():
    epochs = np.arange(1, 16)
    assert compare.convergence(0.1 + 0.5 * np.exp(-epochs)) == compare.CONVERGED


def test_a_curve_still_going_down_steadily_is_still_falling():
    assert compare.convergence(np.linspace(0.5, 0.3, 10)) == compare.FALLING


def test_noise_around_a_plateau_is_not_a_fall():
    rng = np.random.default_rng(0)
    assert compare.convergence(0.2 + 0.0005 * rng.standard_normal(12)) == compare.CONVERGED


def test_a_rising_validation_loss_is_not_still_falling():
    assert compare.convergence([0.3, 0.25, 0.22, 0.23, 0.25, 0.27]) == compare.CONVERGED


def test_the_tolerance_is_relative_to_the_last_value():
    # 0.5% per epoch: 1.5% over the 3-epoch window (falling at 1%, converged at 2% tolerance)
    curve = [1.0 * 0.995**k for k in range(8)]
    assert compare.convergence(curve, tolerance=0.01) == compare.FALLING
    assert compare.convergence(curve, tolerance=0.02) == compare.CONVERGED


def test_one_or_three_epochs_are_too_short_to_tell_and_nan_is_skipped():
    assert compare.convergence([0.3]) == compare.SHORT
    assert compare.convergence([0.3, 0.2, float("nan"), 0.1]) == compare.SHORT
    assert compare.convergence([]) == compare.SHORT


# ---------------------------------------------------------------- the default comparable group


def test_default_group_is_the_largest_set_of_finished_runs_differing_in_one_setting():
    rows = [row(f"g{k}", gamma=g) for k, g in enumerate([0.0, 1e-4, 1e-3, 1e-2])]
    rows += [row("e5", epochs=5, gamma=1e-3), row("e15", epochs=15, gamma=0.0)]
    rows += [row("stopped", state="stopped", epochs=1, gamma=0.1)]
    setting, group = compare.default_group(rows)
    assert setting == "gamma"
    assert sorted(r["name"] for r in group) == ["g0", "g1", "g2", "g3"]


def test_replicates_by_seed_stay_in_the_group():
    rows = [row(f"b{k}-s{s}", beta=b, seed=s) for k, b in enumerate([0.001, 0.01]) for s in (0, 1, 2)]
    setting, group = compare.default_group(rows)
    assert setting == "beta" and len(group) == 6


def test_stopped_and_running_runs_never_make_the_default_group():
    rows = [row("a", state="stopped", gamma=0.0), row("b", state="running", gamma=1e-3), row("c", gamma=1e-2)]
    setting, group = compare.default_group(rows)
    assert [r["name"] for r in group] == ["c"]
    assert compare.default_group([row("x", state="failed")]) == (None, [])


def test_the_setting_that_varies_becomes_against():
    rows = [row("a", beta=0.01), row("b", beta=0.1)]
    setting, group = compare.default_group(rows)
    assert setting == "beta" and len(group) == 2


def test_among_equal_groups_one_where_the_setting_takes_more_values_wins():
    # gamma groups {a, b}, entanglement groups {a, c}: equal size and values, the candidate order breaks the tie
    rows = [row("a"), row("b", gamma=0.1), row("c", entanglement="covariance")]
    setting, group = compare.default_group(rows)
    assert setting == "gamma" and sorted(r["name"] for r in group) == ["a", "b"]
    rows = [row("a"), row("a2", seed=1), row("b", gamma=0.1)]  # size 3 by gamma beats size 2 replicates
    assert compare.default_group(rows)[0] == "gamma" and len(compare.default_group(rows)[1]) == 3


# ---------------------------------------------------------------- filters and flags


def test_filters_keep_only_the_chosen_values_and_none_means_any():
    rows = [row("a", arch="seed"), row("b", arch="burgess"), row("c", arch="seed", state="stopped")]
    kept = compare.filter_rows(rows, arch=["seed"], state=["finished"], dataset=None)
    assert [r["name"] for r in kept] == ["a"]
    assert len(compare.filter_rows(rows, epochs=[10])) == 3  # numbers compared by value, whatever the type
    assert compare.filter_rows(rows, epochs=["10"]) == compare.filter_rows(rows, epochs=[10])


def test_varying_settings_names_what_differs():
    rows = [row("a", gamma=0.0), row("b", gamma=0.1, seed=3)]
    assert compare.varying_settings(rows) == ["gamma"]


def test_flags_count_not_converged_too_short_and_stopped():
    rows = [
        row("a"),
        row("b", converged=compare.FALLING),
        row("c", converged=compare.SHORT),
        row("d", state="stopped", converged="-"),
    ]
    assert compare.flag_counts(rows) == {"still falling": 1, "too short to tell": 1, "stopped": 1}
    assert [compare.marker_of(r) for r in rows] == [
        "finished, converged",
        "finished, not converged",
        "finished, not converged",
        "stopped / not finished",
    ]


def test_options_sorts_numbers_numerically():
    assert compare.options([row("a", epochs=15), row("b", epochs=5), row("c", epochs=10)], "epochs") == [5, 10, 15]


def test_run_row_reads_the_validation_curve_and_says_the_method(fake_run):
    run = fake_run("r1", epochs=6, gamma=0.0)  # the fake run's losses fall like 1/epoch: still falling
    from vae.jobs import launcher

    (listed,) = launcher.list_runs(run.parent)
    r = compare.run_row(listed)
    assert r["method"] == compare.DEFAULT_METHOD and r["gamma"] == 0.0 and r["epochs"] == 6
    assert r["converged"] == compare.FALLING and r["stopped"] is False
    assert r["val_loss"] == listed["final"]["val_loss"]
    stopped = compare.run_row({**listed, "state": "stopped"})
    assert stopped["stopped"] and stopped["converged"] == "-"


def test_the_validation_curve_is_read_again_when_metrics_change(fake_run):
    import json

    run = fake_run("r1", epochs=2)
    before = compare.validation_curve(run)
    assert len(before) == 2
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"kind": "epoch", "epoch": 3, "val_loss": 0.01}) + "\n")
    assert compare.validation_curve(run) == before + [0.01]
    assert compare.validation_curve(run.parent / "missing") == []
