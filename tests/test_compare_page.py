"""Compare page (AppTest): only comparable runs side by side, flags, Against and colour/facet.

Also the labels a scientist can read, and the Train page's study settings and duration estimate."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.test_pages import ROOT, figure
from vae.views import plots


def page(name="compare"):
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


def study_runs(fake_run):
    """The issue's mix: a γ series at 5 epochs, one 6-epoch and one 15-epoch run, and a stopped 1-epoch run."""
    for k, g in enumerate([0.0, 1e-4, 1e-3]):
        fake_run(f"g{k}", epochs=5, gamma=g)
    fake_run("e6", epochs=6, gamma=1e-2)
    fake_run("e15", epochs=15, gamma=1e-3)
    fake_run("stopped", state="stopped", epochs=10, done_epochs=1, gamma=1e-2)


def test_by_default_only_the_largest_comparable_group_is_shown(fake_run):
    study_runs(fake_run)
    at = page().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["g0", "g1", "g2"]
    assert at.multiselect(key="filter_epochs").value == [5] and at.multiselect(key="filter_state").value == ["finished"]
    assert at.selectbox[1].value == "gamma"  # Against: the setting that varies
    markers = {t["name"].split(" · ")[-1] for t in figure(at)["data"]}
    assert markers <= {"finished, converged", "finished, not converged"}


def test_widening_the_filters_shows_and_flags_the_others(fake_run):
    study_runs(fake_run)
    at = page().run()
    at.multiselect(key="filter_epochs").set_value([5, 6, 10, 15]).run()
    at.multiselect(key="filter_state").set_value(["finished", "stopped"]).run()
    table = at.dataframe[0].value
    assert set(table["name"]) == {"g0", "g1", "g2", "e6", "e15", "stopped"}
    warning = " ".join(w.value for w in at.warning)
    # 6 and 15 epochs of a 1/epoch curve are still falling; 5 epochs too; the stopped one is named as stopped
    assert "have **not converged**" in warning and "1 run(s) were **stopped**" in warning
    assert "differ in more than one setting (epochs, gamma)" in warning
    flags = dict(zip(table["name"], table["converged"]))
    assert flags["stopped"] == "-" and flags["e15"] == "still falling"
    symbols = {t["marker"]["symbol"] for t in figure(at)["data"]}
    assert "x" in symbols  # the stopped run has its own marker


def test_colour_and_facet_by_any_setting(fake_run):
    study_runs(fake_run)
    at = page().run()
    at.multiselect(key="filter_epochs").set_value([5, 6, 15]).run()
    at.selectbox[2].set_value("epochs").run()  # colour
    names = {t["name"] for t in figure(at)["data"]}
    assert any(n.startswith("epochs=5") for n in names) and any(n.startswith("epochs=15") for n in names)
    at.selectbox[3].set_value("epochs").run()  # facet
    fig = figure(at)
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["epochs = 5", "epochs = 6", "epochs = 15"]


def test_against_beta_or_gamma_is_a_log_axis_with_1e_ticks_not_si_prefixes(fake_run):
    study_runs(fake_run)
    fig = figure(page().run())
    axis = fig["layout"]["xaxis"]
    assert axis["type"] == "log" and axis["ticktext"] == ["0", "1e-4", "1e-3"]
    assert "0 on its own tick" in axis["title"]["text"]


def test_the_table_opens_with_name_method_seed_then_beta_gamma_and_the_final_losses(fake_run):
    study_runs(fake_run)
    columns = list(page().run().dataframe[0].value.columns)
    assert columns[:8] == ["name", "method", "seed", "beta", "gamma", "val_loss", "loss", "val_recon"]


def test_loss_axes_carry_their_unit_and_log_axes_print_1e_not_micro():
    rows = [dict(kind="batch", epoch=1, step=k, global_step=k, loss=1e-4 * k, recon=1e-4 * k) for k in range(1, 5)]
    fig = plots.loss_curves(rows, 4, log_y=True)
    assert fig.layout.yaxis.exponentformat == "e" and "mean BCE per pixel" in fig.layout.yaxis.title.text
    assert plots.entanglement_diagnostics(rows, 4, log_y=True).layout.yaxis.exponentformat == "e"


def test_hole_and_transect_p3_have_different_colours():
    assert plots.SPLIT_COLOURS["hole"] != plots.TRANSECT_COLOURS["P3"]
    assert plots.SPLIT_COLOURS["hole"].lower() not in ("red", "#ff0000", "#e45756", "#d62728")


# ---------------------------------------------------------------- Train page: study settings and estimate


def test_study_settings_set_ten_epochs_and_the_estimate_follows(tiny_dataset):
    at = page("train").run()
    assert not at.exception
    assert at.number_input(key="epochs").value == 15
    before = next(c.value for c in at.caption if c.value.startswith("Estimated duration"))
    next(b for b in at.button if b.label == "Study settings").click().run()
    assert at.number_input(key="epochs").value == 10 and at.selectbox(key="arch").value == "seed"
    after = next(c.value for c in at.caption if c.value.startswith("Estimated duration"))
    assert "10 epochs ×" in after and after != before and "default speed" in after


def test_the_estimate_uses_an_earlier_run_of_the_same_settings(tiny_dataset, fake_run):
    fake_run(
        "earlier", dataset=str(tiny_dataset), arch="burgess", batch_size=128, image_size=32, precision="mixed_bfloat16"
    )
    at = page("train").run()
    text = next(c.value for c in at.caption if c.value.startswith("Estimated duration"))
    assert "measured by 1 earlier run(s)" in text


def test_at_gamma_zero_the_page_says_why_gamma_entanglement_has_no_curve(tiny_dataset, fake_run):
    fake_run("g0", dataset=str(tiny_dataset), gamma=0.0)
    text = " ".join(c.value for c in page("train").run().caption)
    assert "γ = 0 for this run" in text and "running mean" in text and "mean binary cross-entropy per pixel" in text


def test_the_curves_caption_gives_the_units_and_total_of_the_runs_own_reduction_and_method(tiny_dataset, fake_run):
    fake_run("annealed-papers", dataset=str(tiny_dataset), method="annealed", reduction="papers")
    text = " ".join(c.value for c in page("train").run().caption)
    assert "summed over the pixels" in text and "recon + γ·|KL−C| + γ·entanglement" in text
    assert "per pixel" not in text and "β·KL" not in text
    axis = [c for c in page("train").run().get("plotly_chart") if "Losses" in c.proto.spec][0]
    assert "BCE summed over pixels" in axis.proto.spec


def test_run_tables_on_train_and_home_put_beta_gamma_and_final_losses_before_the_rest(tiny_dataset, fake_run):
    fake_run("r1", dataset=str(tiny_dataset))
    train = page("train").run().dataframe[-1].value
    assert list(train.columns)[:7] == ["name", "state", "beta", "gamma", "val_loss", "loss", "val_recon"]
    home = page("home").run().dataframe[1].value
    assert list(home.columns)[:5] == ["name", "state", "method", "β", "γ"]


def test_differences_use_the_sweeps_test_and_alignment_draws_its_chance_band(fake_run):
    import json

    for g, shift in ((0.0, 0.0), (1e-2, 0.3)):
        for s in range(4):
            run = fake_run(f"g{g}-s{s}", epochs=5, gamma=g, seed=s)
            (run / "evaluation.json").write_text(
                json.dumps(
                    {
                        "summary": {
                            "factor_alignment": 0.4 + shift + 0.02 * s,
                            "pca_alignment": 0.5,
                            "chance": {"factor_alignment": {"mean": 0.42, "lo": 0.05, "hi": 0.85}},
                        }
                    }
                )
            )
    at = page().run()
    assert not at.exception
    (band,) = [s for s in figure(at)["layout"]["shapes"] if s["type"] == "rect"]
    assert (band["y0"], band["y1"]) == (0.05, 0.85)
    diffs = next(df.value for df in at.dataframe if "verdict" in df.value.columns)
    (row,) = diffs.to_dict("records")
    assert row["gamma"] == 0.01 and row["paired"] and row["verdict"] == "higher" and row["n"] == 4
    assert row["answer"].startswith("factor_alignment higher by 0.3")
    assert row["effect size"] is None or row["effect size"] != row["effect size"]  # equal differences: no spread
