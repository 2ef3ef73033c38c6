"""The Train page's method picker: each method's sliders, the loss formula, the equivalent paper β, the
config a Start writes, and the live charts of a method's own terms."""

import json

import pytest
from test_pages import chart_traces, page

from vae.model import methods


def test_picking_a_method_shows_its_parameters_and_updates_the_formula(tiny_dataset):
    at = page("train").run()
    assert not at.exception
    assert at.selectbox(key="method").options == [methods.get(n).label for n in methods.METHOD_NAMES]
    assert at.selectbox(key="method").value == "beta-vae"
    assert r"\underbrace{0.001}_{\beta}\,L_{\mathrm{KL}}" in at.latex[0].value
    at.selectbox(key="method").set_value("factor-vae").run()
    assert not at.exception
    assert at.select_slider(key="mp_factor-vae_gamma_tc").value == 10.0
    assert at.number_input(key="mp_factor-vae_disc_units").value == 1000
    assert r"\gamma_{TC}" in at.latex[0].value and "D(z)" in at.latex[0].value
    at.select_slider(key="mp_factor-vae_gamma_tc").set_value(20.0).run()
    assert r"\underbrace{20}_{\gamma_{TC}}" in at.latex[0].value
    at.selectbox(key="method").set_value("annealed").run()
    assert at.select_slider(key="mp_annealed_c_max").value == 25.0
    assert "C(t)" in at.latex[0].value and r"\underbrace{25}_{C_{max}}" in at.latex[0].value
    at.selectbox(key="method").set_value("beta-tcvae").run()
    assert at.selectbox(key="mp_beta-tcvae_tc_estimator").options == ["mws", "mss"]
    at.selectbox(key="mp_beta-tcvae_tc_estimator").set_value("mss").run()
    assert "MSS" in at.latex[0].value


def test_the_page_shows_the_equivalent_beta_of_the_papers(tiny_dataset):
    at = page("train").run()
    text = " ".join(m.value for m in at.markdown)
    # 32x32 images, 3 latents, beta 0.001: 2 * 1024 * 0.001 / 3 = 0.6827
    assert "β = 0.6827" in text and "of the β-VAE papers" in text
    at.selectbox(key="reduction").set_value("papers").run()
    text = " ".join(m.value for m in at.markdown)
    assert "is the papers' β" in text


@pytest.mark.slow  # more than 2 s on the 2-core machine
def test_start_writes_the_method_its_parameters_and_the_reduction(tiny_dataset, tmp_workspace):
    from vae.jobs import launcher

    at = page("train").run()
    at.selectbox(key="method").set_value("dip-vae-ii").run()
    at.selectbox(key="reduction").set_value("papers").run()
    at.select_slider(key="mp_dip-vae-ii_lambda_od").set_value(5.0).run()
    at.number_input(key="epochs").set_value(1).run()
    at.number_input(key="batch_size").set_value(32).run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception and not at.error
    run = next((tmp_workspace / "runs").glob("tiny-*"))
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["method"] == "dip-vae-ii" and cfg["reduction"] == "papers"
    assert cfg["method_params"] == {"lambda_od": 5.0, "lambda_d_factor": 1.0}
    launcher.request_stop(run)
    launcher.wait_for(run, timeout=600)


def test_live_charts_show_the_methods_own_terms(tiny_dataset, fake_run):
    run = fake_run("fv", dataset=str(tiny_dataset), epochs=2, method="factor-vae", beta=1.0)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for i, row in enumerate(lines):
        row.update(tc=0.5 / (i + 1), tc_term=5.0 / (i + 1), disc_loss=0.69, disc_accuracy=0.5 + 0.01 * i)
        if row["kind"] == "epoch":
            row.update(val_tc=0.4, val_tc_term=4.0, val_disc_loss=0.7, val_disc_accuracy=0.55)
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    at = page("train").run()
    assert not at.exception
    traces = {t["name"]: t for t in chart_traces(at)}
    for name in (
        "γ·TC (train)",
        "TC (discriminator) (train)",
        "discriminator accuracy (train)",
        "discriminator accuracy (validation)",
    ):
        assert name in traces, sorted(traces)
    batch = [r for r in lines if r["kind"] == "batch"]
    assert traces["discriminator accuracy (train)"]["y"] == pytest.approx([r["disc_accuracy"] for r in batch])


def test_a_papers_method_switches_to_the_papers_weights_and_warns_when_changed_back(tiny_dataset):
    """Issue 23: published weights mean what they say unless the user chooses otherwise, and then is told."""
    at = page("train").run()
    at.selectbox(key="method").set_value("factor-vae").run()
    assert not at.exception
    assert at.selectbox(key="reduction").value == "papers" and at.number_input(key="beta").value == 1.0
    assert not [w for w in at.warning if "come from its paper" in w.value]
    at.selectbox(key="reduction").set_value("study").run()
    assert any(
        "FactorVAE's parameters come from its paper" in w.value and "study reduction" in w.value for w in at.warning
    )
