"""AppTest for every page: widgets are there, actions reach the library, charts hold the run folder's data."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


def _decode(value):
    """Plotly JSON stores numpy arrays as {"dtype", "bdata"}: turn them back into lists."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def figure(at: AppTest, k: int = 0) -> dict:
    """The k-th plotly chart on the page as a plain dict (data, layout)."""
    return _decode(json.loads(at.get("plotly_chart")[k].proto.spec))


def chart_traces(at: AppTest) -> list[dict]:
    """Every trace of every plotly chart on the page."""
    return [t for k in range(len(at.get("plotly_chart"))) for t in figure(at, k)["data"]]


def captions(at: AppTest) -> list[str]:
    return [c for el in at.get("image") for c in el.captions]


NO_TF_SCRIPT = """
import sys
from streamlit.testing.v1 import AppTest
for name in sys.argv[1:]:
    at = AppTest.from_file(name, default_timeout=60).run()
    assert not at.exception, (name, at.exception)
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print("HEAVY", heavy)
"""


@pytest.mark.slow  # more than 2 s on the 2-core machine
def test_no_page_loads_tensorflow_until_the_user_decodes(tiny_dataset, fake_run):
    """A fresh process renders the app and every page with a run on disk; TensorFlow stays unloaded."""
    fake_run("r1", dataset=str(tiny_dataset))
    files = [str(ROOT / "app.py")] + [
        str(ROOT / "pages" / f"{p}.py")
        for p in ("home", "dataset", "train", "reconstructions", "embedding", "compare", "sweep")
    ]
    out = subprocess.run(
        [sys.executable, "-c", NO_TF_SCRIPT, *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert "HEAVY []" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


# ------------------------------------------------------------------ compare


def test_compare_tabulates_every_run_of_a_dataset(fake_run):
    fake_run("r1", beta=0.0, gamma=0.0)
    fake_run("r2", beta=0.01, gamma=1e-4, entanglement="covariance")
    at = page("compare").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["r1", "r2"]
    assert set(table["beta"]) == {0.0, 0.01}
    assert table["alignment_score (old: PCA, validation codes)"].notna().all()  # fake runs log the old key
    assert len(at.get("plotly_chart")) == 1


def test_compare_prefers_evaluation_json_and_adds_its_metrics(fake_run):
    run = fake_run("r1")
    (run / "evaluation.json").write_text(
        json.dumps(
            {
                "summary": {
                    "factor_alignment": 0.91,
                    "pca_alignment": None,
                    "mig": 0.4,
                    "pca_alignment_reason": "principal axes not defined: two principal variances within 2%",
                }
            }
        )
    )
    table = page("compare").run().dataframe[0].value
    assert table["factor_alignment"][0] == 0.91 and table["mig"][0] == 0.4
    assert table["pca_reason"][0].startswith("principal axes not defined")
    assert table["alignment from"][0] == "evaluation.json (best model)"


def test_compare_with_no_runs_says_so(tmp_workspace):
    at = page("compare").run()
    assert not at.exception and "No runs yet" in at.info[0].value


# ------------------------------------------------------------------ app shell and home


def test_app_shell_navigates_over_every_page_and_starts_on_home(tmp_workspace):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "VAE Disentanglement Lab"
    assert any(b.label == "Quick start" for b in at.button)
    source = (ROOT / "app.py").read_text()
    for name in ("Home", "Dataset", "Train", "Reconstructions", "Embedding", "Compare", "Sweeps"):
        assert f'title="{name}"' in source
    # every page file (not the _helpers) is in the menu, each with its icon
    files = sorted(f.name for f in (ROOT / "pages").glob("*.py") if not f.name.startswith("_"))
    assert len(files) == 7 and all(f'st.Page("pages/{f}", title=' in source for f in files)
    assert source.count(":material/") >= 8  # the app's own icon and one per page


def test_home_on_an_empty_machine_lists_nothing(tmp_workspace):
    at = page("home").run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Quick start"]
    assert sum("None yet" in c.value for c in at.caption) == 2


def test_home_lists_datasets_and_runs_with_their_states(tiny_dataset, fake_run):
    fake_run("r-done", dataset=str(tiny_dataset))
    fake_run("r-broken", state="failed", message="boom", dataset=str(tiny_dataset))
    at = page("home").run()
    assert not at.exception
    datasets_table, runs_table = at.dataframe[0].value, at.dataframe[1].value
    assert list(datasets_table["name"]) == ["tiny"]
    assert set(runs_table["name"]) == {"r-done", "r-broken"}
    assert any("failed" in s for s in runs_table["state"])


def test_quick_start_generates_the_default_dataset_and_starts_a_run(tmp_workspace, monkeypatch):
    from vae.data import datasets
    from vae.data import presets
    from vae.jobs import launcher

    started = []
    real_preset = presets.preset_spec
    monkeypatch.setattr(presets, "preset_spec", lambda name, **kw: real_preset(name, **{**kw, "n": 50}))
    monkeypatch.setattr(
        launcher, "start_run", lambda cfg, runs_root, name=None: started.append(cfg) or (Path(runs_root) / "quick")
    )
    at = page("home").run()
    at.button[0].click().run()
    assert not at.exception and "Started run quick" in at.success[0].value
    target = tmp_workspace / "datasets" / "seed-full-64"
    assert (target / "dataset.json").exists()
    assert started and started[0].dataset == str(target) and started[0].image_size == 64
    assert datasets.load_dataset(target).meta["preset"] == "seed-full"


# ------------------------------------------------------------------ dataset


def test_dataset_page_previews_before_generating(tmp_workspace):
    at = page("dataset").run()
    assert not at.exception
    assert at.selectbox(key="preset").value == "seed-full"
    assert at.number_input(key="seed-full_n").value == 5000
    assert any("Preview: 16 of the 5,045 images" in c for c in captions(at))
    names = {t["name"].split(" (")[0] for t in chart_traces(at)}
    assert {"train", "validation", "transect P1", "transect P2", "transect P3"} <= names
    assert not list((tmp_workspace / "datasets").iterdir())  # nothing written before Generate


def test_dataset_page_generates_with_progress_and_lists_the_result(tmp_workspace):
    at = page("dataset").run()
    at.selectbox(key="preset").set_value("seed-punctured").run()
    at.number_input(key="seed-punctured_n").set_value(100).run()
    at.selectbox(key="seed-punctured_size").set_value(32).run()
    names = {t["name"].split(" (")[0] for t in chart_traces(at)}
    assert "hole" in names
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception
    assert any("Saved seed-punctured-32" in s.value for s in at.success)
    assert (tmp_workspace / "datasets" / "seed-punctured-32" / "dataset.json").exists()
    assert any("seed-punctured-32" in m.value for m in at.markdown)


def test_dataset_page_shows_library_errors_without_traceback(tmp_workspace):
    at = page("dataset").run()
    at.checkbox(key="seed-full_hole").check().run()
    at.number_input(key="seed-full_hr").set_value(0.01).run()
    at.slider(key="seed-full_b").set_value((1.0, 1.0)).run()
    assert not at.exception
    assert at.error and "b range" in at.error[0].value


def test_dataset_page_deletes_after_confirmation(tiny_dataset):
    at = page("dataset").run()
    at.button(key="ask_delete::dataset:tiny").click().run()
    assert tiny_dataset.exists()  # asking only opens the confirmation
    at.button(key="confirm_delete::dataset:tiny").click().run()
    assert not at.exception and not tiny_dataset.exists()


def test_dataset_page_imports_a_folder_of_images(tmp_workspace):
    from PIL import Image

    src = tmp_workspace / "pngs"  # the page imports from under the data root (or VAE_LAB_IMPORT_ROOTS)
    src.mkdir()
    for i in range(12):
        Image.fromarray(np.full((20, 30), i * 20, np.uint8)).save(src / f"{i:02d}.png")
    at = page("dataset").run()
    at.text_input[1].input(str(src)).run()
    at.text_input(key="import_name").input("mine").run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception and any("into mine" in s.value for s in at.success)
    assert (tmp_workspace / "datasets" / "mine" / "dataset.json").exists()


# ------------------------------------------------------------------ train


def test_train_page_without_a_dataset_points_to_the_dataset_page(tmp_workspace):
    at = page("train").run()
    assert not at.exception and "No dataset yet" in at.info[0].value


def test_train_page_has_every_setting_and_the_loss_formula(tiny_dataset):
    at = page("train").run()
    assert not at.exception
    for key in ("beta_slider", "gamma_slider"):
        assert at.select_slider(key=key).options[:3] == ["0", "1e-06", "2e-06"]
    for key in ("beta", "gamma", "epochs", "batch_size", "lr", "seed"):
        assert at.number_input(key=key)
    assert at.selectbox(key="entanglement").options == ["seed", "covariance", "dip-i"]
    assert at.selectbox(key="arch").options == ["burgess", "seed"]
    assert at.selectbox(key="variance").options == ["constant", "learned"]
    assert at.slider(key="latent_dim").min == 2 and at.slider(key="latent_dim").max == 10
    assert at.checkbox(key="sample_weights")
    assert r"\mu_i\mu_j" in at.latex[0].value


def test_train_page_keeps_slider_and_exact_number_in_sync(tiny_dataset):
    at = page("train").run()
    at.select_slider(key="beta_slider").set_value(0.01).run()
    assert at.number_input(key="beta").value == 0.01
    at.number_input(key="gamma").set_value(0.003).run()
    assert at.select_slider(key="gamma_slider").value == 0.002  # nearest on the log ladder
    assert "0.003" in at.latex[0].value


def test_study_settings_button_fills_in_the_studys_values(tiny_dataset):
    at = page("train").run()
    next(b for b in at.button if b.label == "Study settings").click().run()
    assert at.number_input(key="beta").value == 0.001 and at.number_input(key="gamma").value == 0.0001
    assert at.selectbox(key="arch").value == "seed" and at.number_input(key="batch_size").value == 8
    assert at.number_input(key="lr").value == 1e-4 and at.selectbox(key="variance").value == "constant"
    assert at.selectbox(key="entanglement").value == "seed" and at.slider(key="latent_dim").value == 3


@pytest.mark.slow
def test_start_creates_a_run_folder_through_vae_jobs(tiny_dataset, tmp_workspace):
    from vae.jobs import launcher

    at = page("train").run()
    at.number_input(key="epochs").set_value(1).run()
    at.number_input(key="batch_size").set_value(32).run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception and not at.error
    runs = list((tmp_workspace / "runs").glob("tiny-*"))
    assert len(runs) == 1 and (runs[0] / "config.json").exists()
    cfg = json.loads((runs[0] / "config.json").read_text())["config"]
    assert cfg["epochs"] == 1 and cfg["batch_size"] == 32 and cfg["dataset"] == str(tiny_dataset)
    assert launcher.wait_for(runs[0], timeout=600)["state"] == "finished"
    at.run()  # a fresh look at the page finds the finished run
    assert any("finished" in p.proto.text for p in at.get("progress"))


def test_train_chart_holds_the_run_folders_metrics(tiny_dataset, fake_run):
    from vae.runs import folder

    run = fake_run("r1", dataset=str(tiny_dataset), epochs=2)
    at = page("train").run()
    assert not at.exception
    traces = {t["name"]: t for t in chart_traces(at)}
    batch = folder.read_metrics(run, "batch")
    assert traces["total (train)"]["y"] == pytest.approx([m["loss"] for m in batch])
    assert traces["total (validation)"]["y"] == pytest.approx(
        [m["val_loss"] for m in folder.read_metrics(run, "epoch")]
    )
    assert {"seed (train)", "covariance (train)", "dip-i (train)"} <= set(traces)
    assert "epoch 2/2" in at.get("progress")[0].proto.text


def test_train_page_reattaches_to_a_running_run_and_offers_stop(tiny_dataset, fake_run):
    fake_run("older", dataset=str(tiny_dataset))
    run = fake_run("live", state="running", done_epochs=1, epochs=5, pid=os.getpid(), dataset=str(tiny_dataset))
    at = page("train").run()  # a fresh session, as after a reload or in a second tab
    assert at.selectbox(key="train_run").value == "live"
    assert "running" in at.get("progress")[0].proto.text
    at.button(key="stop").click().run()
    assert (run / "stop").exists()


def test_train_page_says_why_a_run_failed(tiny_dataset, fake_run):
    fake_run("bad", state="diverged", message="loss became NaN at epoch 2", dataset=str(tiny_dataset))
    at = page("train").run()
    assert "loss became NaN" in at.error[0].value


# ------------------------------------------------------------------ reconstructions


def test_reconstructions_show_the_studys_pair_grid_per_snapshot(tiny_dataset, fake_run):
    fake_run("r1", dataset=str(tiny_dataset), epochs=3)
    at = page("reconstructions").run()
    assert not at.exception
    assert at.select_slider[0].options == ["1", "2", "3"] and at.select_slider[0].value == 3
    from vae.data import datasets

    n_val = min(20, len(datasets.load_dataset(tiny_dataset).indices("validation")))  # 211/4510 of the covered draws
    assert f"First {n_val} validation images" in captions(at)[0] and "epoch 3" in captions(at)[0]
    at.select_slider[0].set_value(1).run()
    assert "epoch 1" in captions(at)[0]
    assert any(b.label == "Reconstruct transects and hole" for b in at.button)


def test_reconstructions_of_a_run_whose_dataset_is_gone_say_so(fake_run):
    fake_run("r1", dataset="/nowhere/ds")
    at = page("reconstructions").run()
    assert not at.exception and "is gone" in at.error[0].value


# ------------------------------------------------------------------ embedding


def test_embedding_draws_latent_means_and_transects_with_the_pca_comparison(tiny_dataset, fake_run):
    from vae.measures import analysis
    from vae.runs import folder

    run = fake_run("r1", dataset=str(tiny_dataset), epochs=2, latent_dim=4)
    at = page("embedding").run()
    assert not at.exception
    snap = folder.load_snapshot(run, 2)
    first = figure(at)["data"]
    assert first[0]["x"] == pytest.approx(snap["mu_train"][:, 0].tolist(), rel=1e-5)
    assert [t["name"] for t in first[1:4]] == ["P1", "P2", "P3"]
    assert [t["line"]["color"] for t in first[1:4]] == ["blue", "green", "red"]
    score = analysis.pca_alignment(snap["mu_train"])["score"]
    assert any(m.value == (f"{score:.3f}" if score is not None else "undefined") for m in at.metric)
    table = at.dataframe[1].value
    assert list(table["principal axis"]) == ["PC1", "PC2", "PC3", "PC4"]
    # latent, principal, factor movement, PC |cos|, hole profile, entanglement profile, variance, covariance,
    # correlation
    assert len(at.get("plotly_chart")) == 9
    at.selectbox(key="dim2").set_value(3).run()
    assert figure(at)["layout"]["scene"]["zaxis"]["title"]["text"] == "μ4"


def test_embedding_colours_by_factor(tiny_dataset, fake_run):
    fake_run("r1", dataset=str(tiny_dataset))
    at = page("embedding").run()
    colour = next(s for s in at.selectbox if s.label == "Colour")
    colour.set_value("b").run()
    trace = figure(at)["data"][0]
    assert trace["marker"]["showscale"] is True


@pytest.mark.slow
def test_embedding_decodes_with_a_trained_model(trained_run):
    """Slow path: a real run (the session's, copied), then the decoding sliders and the traversals."""
    at = page("embedding").run()
    at.toggle(key="decode").set_value(True).run(timeout=120)
    assert not at.exception
    shown = captions(at)
    assert any(c.startswith("decode(") for c in shown)
    assert any("latent axis" in c for c in shown) and any("principal axis" in c for c in shown)


def test_user_chosen_names_are_shown_literally_in_markdown():
    from pages._ui import md_escape

    assert md_escape("**bold** [x](http://y)") == r"\*\*bold\*\* \[x\]\(http://y\)"
    assert md_escape("plain_name-1.2") == r"plain\_name-1.2"
