"""The researcher's path (#24): what a sweep's answer flags and costs, reproducing a run (train --config,
Copy settings to Train, settings in the URL), export bundles, and the index that keeps Compare fast."""

from __future__ import annotations

import io
import os
import json
import subprocess
import sys
import zipfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.sweep_fixtures import fake_finished_sweep
from vae import cli
from vae.jobs import evaluation_jobs
from vae.runs import run_index
from vae.runs.config import TrainConfig, settings_from_query, settings_to_query
from vae.sweeps import export, sweep, review
from vae.views import compare, estimate

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


def _set_status(run_dir: Path, **fields) -> None:
    doc = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**doc, **fields}))


# ---------------------------------------------------------------- the sweep's flags and costs


def test_review_flags_not_converged_resumed_and_failed_with_the_ray_error(tiny_dataset, tmp_workspace):
    out = fake_finished_sweep(tmp_workspace, tiny_dataset, gammas=(0.0, 1e-2), seeds=3)
    doc = sweep.read_sweep(out)
    names = [r["name"] for r in doc["runs"]]
    falling = sweep.run_dir_of(out, names[0])  # a validation loss still falling clearly at the end
    (falling / "metrics.jsonl").write_text(
        "".join(json.dumps({"kind": "epoch", "epoch": e, "val_loss": 1.0 / e}) + "\n" for e in range(1, 6))
    )
    failed = sweep.run_dir_of(out, names[1])
    _set_status(failed, state="failed", message="the trainer process (pid 7) ended")
    status = sweep.read_status(out)
    status["runs"][names[1]].update(attempts=1, error="LocalRayletDiedError: the raylet died")
    status["runs"][names[2]].update(attempts=2)
    sweep.write_status(out, status)
    flags = {f["run"]: f for f in review.run_flags(out, sweep.result_rows(out, doc), sweep.read_status(out))}
    assert flags[names[0]]["flags"] == [review.NOT_CONVERGED]
    assert flags[names[1]]["flags"] == [review.FAILED]
    assert "LocalRayletDiedError" in flags[names[1]]["reason"]
    assert flags[names[2]]["flags"] == [review.RESUMED]
    assert set(flags) == set(names[:3])  # the other runs converged, ran once and finished
    text = "\n".join(review.flag_lines(list(flags.values())))
    assert "not converged" in text and "resumed" in text and "LocalRayletDiedError" in text


def test_costs_name_lost_latents_and_reconstruction_against_the_baseline():
    rows = [
        {"state": "finished", "gamma": 0.0, "eval_active_units": 3, "val_recon": 0.20},
        {"state": "finished", "gamma": 0.0, "eval_active_units": 3, "val_recon": 0.20},
        {"state": "finished", "gamma": 0.01, "eval_active_units": 2, "eval_collapsed": 1, "val_recon": 0.26},
        {"state": "finished", "gamma": 0.01, "eval_active_units": 1, "eval_collapsed": 2, "val_recon": 0.24},
        {"state": "failed", "gamma": 0.01, "eval_active_units": 0},
    ]  # not finished: not counted
    cost = {c["gamma"]: c for c in review.costs(rows, "gamma", 0.0, latent_dim=3)}
    assert cost["0.01"]["n"] == 2 and cost["0.01"]["active_units"] == 1.5
    assert cost["0.01"]["runs_with_collapse"] == 2 and cost["0.0"]["runs_with_collapse"] == 0
    assert cost["0.01"]["recon_change"] == pytest.approx(0.25 / 0.20 - 1)
    lines = review.cost_lines(list(cost.values()), "gamma", 0.0)
    assert len(lines) == 1 and "1.5 of 3 latents active" in lines[0] and "+25%" in lines[0]


def test_fixed_settings_and_the_sweeps_estimate():
    shown = review.fixed_settings({"epochs": 5, "method": "factor-vae"}, {"gamma": [0, 1e-3]}, "quick")
    assert shown["method"] == "factor-vae" and shown["epochs"] == 5 and shown["beta"] == TrainConfig().beta
    assert "gamma" not in shown and shown["evaluate"] == "quick" and shown["arch"] == TrainConfig().arch
    one = estimate.estimate_duration(TrainConfig().to_dict(), 1000, 100)["seconds"]
    est = review.sweep_estimate(TrainConfig().to_dict(), n_runs=5, workers=2, n_train=1000, n_val=100)
    assert est["seconds"] == pytest.approx(3 * one)  # 5 runs, 2 at a time: 3 waves


def test_sweeps_page_shows_fixed_settings_estimate_and_flags(tiny_dataset, tmp_workspace):
    out = fake_finished_sweep(tmp_workspace, tiny_dataset, gammas=(0.0, 1e-2), seeds=2)
    name = sweep.read_sweep(out)["runs"][0]["name"]
    status = sweep.read_status(out)
    status["runs"][name]["attempts"] = 2
    sweep.write_status(out, status)
    at = page("sweep").run()
    assert not at.exception
    assert any("resumed" in w.value and name in w.value for w in at.warning)
    captions = " ".join(c.value for c in at.caption)
    assert "Fixed in every run: method = beta-vae" in captions  # the sweep's, above its answer
    assert "Estimated duration" in captions and "2 at a time" in captions  # the New sweep form's, before Start


# ---------------------------------------------------------------- estimates


def test_factorvae_is_estimated_from_its_own_runs_and_its_own_step_cost():
    cfg = TrainConfig(method="factor-vae").to_dict()
    beta_run = {
        "config": TrainConfig().to_dict(),
        "final": {"time": 60.0, "epoch": 15},
        "status": {"steps_per_epoch": 10},
    }
    factor_run = {"config": cfg, "final": {"time": 90.0, "epoch": 15}, "status": {"steps_per_epoch": 10}}
    assert estimate.estimate_duration(cfg, 1280, 0, [beta_run])["source"] == "default"
    out = estimate.estimate_duration(cfg, 1280, 0, [beta_run, factor_run])
    assert out["source"] == "measured" and out["runs"] == 1 and out["seconds"] == pytest.approx(90.0)
    plain = estimate.estimate_duration(TrainConfig().to_dict(), 1280, 0)["per_epoch"]
    factor = estimate.estimate_duration(cfg, 1280, 0)["per_epoch"]
    assert factor > 1.3 * (plain - estimate.EPOCH_OVERHEAD_S)


# ---------------------------------------------------------------- reproduce: names, train --config, Train form


def test_run_names_include_the_method(tiny_dataset, tmp_workspace):
    from vae.jobs import launcher

    name = launcher._default_name(TrainConfig(dataset=str(tiny_dataset), method="factor-vae"))
    assert "-factor-vae-" in name and len(name) <= 100
    long = launcher._default_name(TrainConfig(dataset="x" * 120, method="beta-tcvae"))
    assert "-beta-tcvae-" in long and len(long) <= 100


def test_train_config_reads_a_runs_config_json_and_flags_override(fake_run, tiny_dataset, tmp_path):
    run = fake_run("orig", dataset=str(tiny_dataset), gamma=0.01, beta=0.004, seed=3)
    args = cli.build_parser().parse_args(["train", "--config", str(run / "config.json"), "--out", "x", "--seed", "5"])
    cfg = cli._config_from_args(args)
    orig = json.loads((run / "config.json").read_text())["config"]
    assert cfg.to_dict() == {**orig, "seed": 5}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    err = subprocess.run(
        [sys.executable, "-m", "vae", "train", "--config", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert err.returncode == 2 and "--config" in err.stderr and "Traceback" not in err.stderr


def test_settings_round_trip_through_query_parameters_and_junk_is_dropped():
    cfg = TrainConfig(
        dataset="/d/datasets/seed-64",
        method="factor-vae",
        gamma=0.0,
        beta=4.0,
        seed=7,
        method_params={"gamma_tc": 10.0},
        sample_weights=True,
    ).to_dict()
    back = settings_from_query(settings_to_query(cfg))
    assert back["dataset"] == "seed-64" and back["method_params"] == {"gamma_tc": 10.0}
    assert {k: back[k] for k in ("method", "gamma", "beta", "seed", "sample_weights")} == {
        "method": "factor-vae",
        "gamma": 0.0,
        "beta": 4.0,
        "seed": 7,
        "sample_weights": True,
    }
    assert settings_from_query({"beta": "nan", "seed": "x", "epochs": "4", "evil": "1"}) == {"epochs": 4}


def test_copy_settings_to_train_fills_the_train_form(fake_run, tiny_dataset):
    run = fake_run(
        "a-factor-run", dataset=str(tiny_dataset), gamma=0.01, beta=0.004, seed=3, method="factor-vae", latent_dim=4
    )
    at = page("reconstructions").run()
    assert not at.exception
    at.button(key="recon_copy_settings").click().run()
    assert at.session_state["_copy_settings"]["method"] == "factor-vae"  # handed over; switch_page to Train
    train = page("train")
    train.session_state["_copy_settings"] = json.loads((run / "config.json").read_text())["config"]
    train.session_state["_copy_settings_from"] = "a-factor-run"
    train.run()
    assert not train.exception
    assert train.session_state["method"] == "factor-vae" and train.session_state["gamma"] == 0.01
    assert train.session_state["seed"] == 3 and train.session_state["latent_dim"] == 4
    assert train.session_state["dataset"] == tiny_dataset.name
    assert any("a-factor-run" in i.value for i in train.info)


def test_train_settings_survive_a_reload_through_the_url(tiny_dataset):
    at = page("train").run()
    at.number_input(key="seed").set_value(11).run()
    at.selectbox(key="method").set_value("beta-tcvae").run()
    assert at.query_params["seed"] in ("11", ["11"]) and at.query_params["method"] in ("beta-tcvae", ["beta-tcvae"])
    reload = page("train")  # a new session (a reload) with the same URL
    reload.query_params.update({k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()})
    reload.run()
    assert not reload.exception
    assert reload.session_state["seed"] == 11 and reload.session_state["method"] == "beta-tcvae"


# ---------------------------------------------------------------- export bundles


def test_sweep_export_bundle_holds_results_configs_figures_and_versions(tiny_dataset, tmp_workspace):
    out = fake_finished_sweep(tmp_workspace, tiny_dataset, gammas=(0.0, 1e-2), seeds=2)
    code = cli.main(["sweep", "--export", str(out), "--export-to", str(tmp_workspace / "b.zip")])
    assert code == 0
    z = zipfile.ZipFile(tmp_workspace / "b.zip")
    names = set(z.namelist())
    runs = [r["name"] for r in sweep.read_sweep(out)["runs"]]
    assert {"results.csv", "versions.json", "sweep.json", "status.json", "figures/figures.html"} <= names
    assert {f"configs/{r}.json" for r in runs} <= names
    assert len(z.read("results.csv").decode().strip().splitlines()) == 1 + len(runs)
    assert any(n.startswith("figures/eval_mig") and n.endswith(".json") for n in names)
    versions = json.loads(z.read("versions.json"))
    assert versions["lab"] and versions["packages"]["numpy"] and versions["packages"]["plotly"]
    figures = sorted(n[: -len(".json")] for n in names if n.startswith("figures/eval_") and n.endswith(".json"))
    assert figures and {f + ext for f in figures for ext in (".svg", ".png")} <= names  # every figure as SVG and PNG
    assert versions["static_images"] == {"all": "svg and png written"} and versions["packages"]["matplotlib"]
    svg = ET.fromstring(z.read(figures[0] + ".svg"))  # parses as XML, every run's dot inside
    dots = [u for g in svg.iter(SVG + "g") if (g.get("id") or "").startswith("trace") for u in g.iter(SVG + "use")]
    # (a box's dots: 2 seeds x 2 gammas as <use> marks; the mean diamonds may be inlined paths)
    assert len(dots) >= len(runs) and "gamma" in " ".join("".join(t.itertext()) for t in svg.iter(SVG + "text"))
    png = Image.open(io.BytesIO(z.read(figures[0] + ".png")))
    assert png.format == "PNG" and png.size == (900, 380)
    cfg = json.loads(z.read(f"configs/{runs[0]}.json"))
    assert TrainConfig.from_dict(cfg["config"]).gamma == 0.0  # train --config reads it


def test_compare_view_export_is_offered(fake_run):
    for k, g in enumerate([0.0, 1e-3]):
        fake_run(f"g{k}", epochs=4, gamma=g)
    at = page("compare").run()
    assert not at.exception
    assert at.get("download_button")  # the deferred zip of the view
    data = export.bundle([{"name": "g0", "gamma": 0.0}], [], {})
    assert "results.csv" in zipfile.ZipFile(io.BytesIO(data)).namelist()


# ---------------------------------------------------------------- speed: the index carries what Compare reads


def test_the_index_carries_evaluation_notes_and_validation_curves(fake_run, monkeypatch):
    run = fake_run("ev", epochs=4)
    (run / "evaluation.json").write_text(json.dumps({"summary": {"mig": 0.3}, "notes": {"mig": "a note"}}))
    rows = run_index.list_runs()
    (row,) = [r for r in rows if r["name"] == "ev"]
    assert row["evaluation_notes"] == {"mig": "a note"} and len(row["val_losses"]) == 4

    def no_reads(*a, **k):
        raise AssertionError("read a run file on a rerun")

    monkeypatch.setattr(compare.folder, "read_evaluation", no_reads)
    monkeypatch.setattr(compare.folder, "read_metrics", no_reads)
    compare._validation_curve.cache_clear()
    flat = compare.run_row(row)
    assert flat["mig"] == 0.3 and flat["converged"] in (compare.CONVERGED, compare.FALLING, compare.SHORT)
    assert compare.evaluation_notes([row]) == {"mig": "a note"}


def test_runs_without_sweeps_come_from_the_index_not_from_every_run_folder(fake_run, monkeypatch):
    for name in ("a", "b"):
        fake_run(name, epochs=2)
    run_index._CACHE.clear()
    assert {r["name"] for r in run_index.list_runs()} >= {"a", "b"}  # writes the index file

    def no_reads(*a, **k):
        raise AssertionError("summarised a run folder again")

    monkeypatch.setattr(run_index, "_summary", no_reads)
    assert {r["name"] for r in run_index.list_runs(include_sweeps=False)} >= {"a", "b"}  # from memory
    run_index._CACHE.clear()  # a fresh server process: only the index file
    assert {r["name"] for r in run_index.list_runs(include_sweeps=False)} >= {"a", "b"}


# ---------------------------------------------------------------- small things


def test_tables_show_a_blank_not_none_and_pca_says_why_beside_it(fake_run):
    trivial = fake_run("g0", epochs=4, gamma=0.0)
    other = fake_run("g1", epochs=4, gamma=1e-3, seed=1)
    summary = {"factor_alignment": 0.4, "pca_alignment": None, "pca_alignment_reason": "trivial: one active latent"}
    (trivial / "evaluation.json").write_text(json.dumps({"summary": summary}))
    (other / "evaluation.json").write_text(json.dumps({"summary": {"factor_alignment": 0.5, "pca_alignment": 0.7}}))
    at = page("compare").run()
    assert not at.exception
    assert at.dataframe and all(df.proto.placeholder == "—" for df in at.dataframe)  # every table: a dash
    runs = at.dataframe[0].value
    cols = list(runs.columns)
    assert cols[cols.index("pca_alignment") + 1] == "pca_reason"  # the reason sits beside the blank
    assert runs.set_index("name").loc["g0", "pca_reason"] == "trivial: one active latent"


def test_evaluate_on_a_sweeps_run_rewrites_results_csv(tiny_dataset, tmp_workspace, monkeypatch):
    out = fake_finished_sweep(tmp_workspace, tiny_dataset, gammas=(0.0,), seeds=1)
    rd = sweep.run_dir_of(out, sweep.read_sweep(out)["runs"][0])

    def fake_evaluate(run_dir, **kw):
        (Path(run_dir) / "evaluation.json").write_text(json.dumps({"summary": {"mig": 0.777}}))
        return {"summary": {"mig": 0.777}}

    monkeypatch.setattr(cli, "load_keras", lambda: None)
    monkeypatch.setattr(evaluation_jobs, "evaluate_with_progress", fake_evaluate)
    assert cli.main(["evaluate", str(rd), "--quiet"]) == 0
    assert "0.777" in (out / "results.csv").read_text()


def test_the_dataset_lists_the_size_its_estimate_promised(tmp_workspace):
    from vae.data import datasets, presets

    spec = presets.preset_spec("seed-full", n=300, image_size=32)
    estimate_bytes = datasets.estimate_dataset_bytes(spec)
    datasets.write_dataset(spec, tmp_workspace / "datasets" / "d")
    (listed,) = datasets.list_datasets(tmp_workspace / "datasets")
    assert abs(listed["bytes"] - estimate_bytes) <= 0.25 * listed["bytes"]  # the same measure: bytes on disk


def test_a_resumed_sweep_run_is_listed_waiting_not_failed_until_its_driver_dies(fake_run):
    run = fake_run("resumed", state="failed", message="LocalRayletDiedError")
    assert sweep.mark_resumed(run, os.getpid(), "gs")
    (row,) = [r for r in run_index.list_runs() if r["name"] == "resumed"]
    assert row["state"] == "waiting" and "waiting for a Ray worker" in row["message"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "driver_pid": dead.pid}))
    (row,) = [r for r in run_index.list_runs() if r["name"] == "resumed"]
    assert row["state"] == "failed" and "resume the sweep" in row["message"]
    finished = fake_run("done")
    assert not sweep.mark_resumed(finished, os.getpid())  # only failed or stopped runs are marked


def test_a_resumed_run_waiting_for_its_trainer_says_it_resumes_and_from_which_epoch(fake_run):
    run = fake_run("resumed", state="failed", epochs=8, done_epochs=3, message="LocalRayletDiedError")
    fake_run("other", epochs=2)
    assert sweep.mark_resumed(run, os.getpid(), "gs")  # waiting, resume: True, its last epoch kept
    _set_status(run, epoch=3, epochs=8)
    at = page("reconstructions").run()
    assert not at.exception
    labels = at.selectbox(key="run").options
    assert "resumed  (queued to resume, epoch 3/8 done)" in labels and "other  (finished)" in labels
    _set_status(run, state="queued", message="resuming", pid=os.getpid())  # the trainer is starting
    at = page("reconstructions").run()
    assert "resumed  (resuming, epoch 3/8 done)" in at.selectbox(key="run").options


def test_a_flat_3d_box_sits_under_its_title_with_less_empty_height():
    from vae.views import plots

    rng = np.random.default_rng(0)
    flat = plots.embedding_3d(rng.normal(size=(500, 3)) * [1.8, 0.85, 0.2], height=520)
    cube = plots.embedding_3d(rng.normal(size=(500, 3)), height=520)
    assert flat.layout.scene.camera.center.z < -0.1 and flat.layout.height < 470  # looks below the box's centre
    assert abs(cube.layout.scene.camera.center.z) < 0.05 and cube.layout.height > 505  # a cube: about as before


def test_generate_finishes_the_dataset_when_the_tab_closes_midway(tmp_workspace):
    """Closing the tab makes Streamlit raise StopException at the page's next progress update: the dataset
    is written whole all the same, and the stop is raised after."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    from pages._ui import HeldProgress
    from vae.data import datasets, presets

    calls = []

    def update(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise StopException()

    progress = HeldProgress(update)
    spec = presets.preset_spec("seed-full", n=3 * presets.CHUNK, image_size=32)  # more chunks than updates
    out = datasets.write_dataset(spec, tmp_workspace / "datasets" / "kept", progress=progress)
    assert len(datasets.load_dataset(out).images) == len(presets.plan(spec)["id"])  # every image written
    assert len(calls) == 2  # no update after the stop
    with pytest.raises(StopException):
        progress.release()
