"""Evaluate from the pages: its own process, progress in the run folder, then which latent tracks which factor."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.test_pages import ROOT, figure
from vae.base.errors import UserError
from vae.base import paths
from vae.jobs import evaluation_jobs, launcher
from vae.views.evaluation import evaluation_views


def evaluation(k=2, d=3):
    """An evaluation.json as `python -m vae evaluate` writes it (latent j tracks factor j, latent 3 is noise)."""
    mi = np.zeros((d, k))
    mi[0, 0], mi[1, 1], mi[2, :] = 2.0, 1.5, 0.1
    importance = np.array([[0.9, 0.05], [0.05, 0.9], [0.05, 0.05]])
    return {
        "format": "vae-lab-evaluation",
        "factor_names": ["a", "b"],
        "summary": {"alignment_score": 0.8, "mig": 0.5, "dci_disentanglement": 0.7},
        "metrics": {
            "mig": {
                "score": 0.5,
                "per_factor": [0.6, 0.4],
                "mutual_info": mi.tolist(),
                "num_bins": 20,
                "n_train": 400,
                "sklearn_version": "1.x",
            },
            "dci": {
                "disentanglement": 0.7,
                "completeness": 0.8,
                "importance_matrix": importance.tolist(),
                "n_train": 400,
                "n_estimators": 20,
            },
        },
        "factor_alignment": {
            "abs_cos": [[0.99, 0.1, 0.05], [0.2, 0.95, 0.1]],
            "assigned_axis": [0, 1],
            "angles_deg": [8.1, 18.2],
            "r2": [0.9, 0.8],
            "per_factor": [0.97, 0.83],
            "score": 0.9,
            "score_uses": "global linear directions",
            "n": 400,
            "min_r2": 0.1,
            "note": "",
        },
        "active_units": {"active": [True, True, False], "variances": [0.5, 0.4, 0.001], "threshold": 0.01},
    }


# ---------------------------------------------------------------- the library


def test_views_name_each_factors_most_informative_latent_and_keep_the_settings():
    views = evaluation_views(evaluation())
    assert views["mig_per_factor"] == [
        {"factor": "a", "MIG (normalised gap)": 0.6, "most informative latent": "μ1"},
        {"factor": "b", "MIG (normalised gap)": 0.4, "most informative latent": "μ2"},
    ]
    assert "num_bins 20" in views["mig_settings"] and "n_train 400" in views["mig_settings"]
    dci = views["dci_importance"]
    assert dci["latents"] == ["μ1", "μ2", "μ3"] and dci["factors"] == ["a", "b"] and dci["matrix"].shape == (3, 2)
    assert "n_estimators 20" in views["dci_settings"] and views["dci_scores"]["completeness"] == 0.8
    fa = views["factor_alignment"]
    assert [(r["factor"], r["its latent"], r["|cos| to it"]) for r in fa["rows"]] == [
        ("a", "μ1", 0.99),
        ("b", "μ2", 0.95),
    ]
    assert fa["abs_cos"].shape == (2, 3) and fa["latents"] == ["μ1", "μ2", "μ3"] and "min_r2 0.1" in fa["settings"]
    assert views["tables"]["active_units"][2] == {"active": False, "variances": 0.001}
    assert "threshold 0.01" in views["settings"]["active_units"]
    assert views["summary"]["mig"] == 0.5


def test_views_render_any_table_shaped_entry_and_name_unknown_factors():
    doc = evaluation()
    del doc["factor_names"]
    doc["per_split_table"] = {"split": ["train", "validation"], "n": [400, 100], "settings": "not a column"}
    doc["nested"] = {"rows": [[1, 2], [3, 4]], "other": [1]}  # not table-shaped: left out
    views = evaluation_views(doc)
    assert views["tables"]["per_split_table"] == [{"split": "train", "n": 400}, {"split": "validation", "n": 100}]
    assert "nested" not in views["tables"]
    assert [r["factor"] for r in views["factor_alignment"]["rows"]] == ["factor 1", "factor 2"]
    assert views["dci_importance"]["factors"] == ["factor 1", "factor 2"]
    assert evaluation_views(None) == {}


def test_progress_is_written_whole_and_keeps_its_start(fake_run):
    run = fake_run("r1")
    evaluation_jobs.write_progress(run, "encoding", 0.1)
    first = json.loads((run / evaluation_jobs.PROGRESS_FILE).read_text())
    evaluation_jobs.write_progress(run, "metrics", 0.5)
    state = evaluation_jobs.evaluation_state(run)
    assert state["state"] == "running" and state["stage"] == "metrics" and state["started"] == first["started"]
    assert [p.name for p in run.iterdir() if ".tmp" in p.name] == []


def test_an_evaluation_whose_process_died_is_failed_with_a_pointer_to_its_log(fake_run):
    run = fake_run("r1")
    assert evaluation_jobs.evaluation_state(run)["state"] == "none"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    evaluation_jobs.write_progress(run, "encoding every split", 0.1, pid=dead.pid)
    state = evaluation_jobs.evaluation_state(run)
    assert state["state"] == "failed" and "evaluate.log" in state["message"] and "encoding" in state["message"]


def test_start_refuses_a_run_without_a_model_and_a_second_evaluation(fake_run):
    run = fake_run("r1")
    with pytest.raises(UserError, match="no model.keras"):
        evaluation_jobs.start_evaluation(run)
    (run / "model.keras").write_bytes(b"")
    evaluation_jobs.write_progress(run, "metrics", 0.4, pid=os.getpid())  # an evaluation in progress
    with pytest.raises(UserError, match="already being evaluated"):
        evaluation_jobs.start_evaluation(run)
    with pytest.raises(UserError, match="not a run folder"):
        evaluation_jobs.start_evaluation(run.parent)


def test_an_evaluation_records_its_stages_its_end_and_its_failure(fake_run, monkeypatch):
    from vae.training import evaluate

    run = fake_run("r1")
    stages = []

    def fake_evaluate(run_dir, progress, **kwargs):  # the real one loads TensorFlow: its stages only
        for stage, fraction in (("encoding every split", 0.1), ("disentanglement metrics", 0.3)):
            progress(stage, fraction)
            stages.append(evaluation_jobs.evaluation_state(run_dir)["stage"])
        if kwargs.get("seed") == 1:
            raise UserError("the dataset /nowhere is gone")
        return {"summary": {}}

    monkeypatch.setattr(evaluate, "evaluate_run", fake_evaluate)
    evaluation_jobs.evaluate_with_progress(run, seed=0)
    assert stages == ["encoding every split", "disentanglement metrics"]
    assert evaluation_jobs.evaluation_state(run)["state"] == "finished"
    with pytest.raises(UserError):
        evaluation_jobs.evaluate_with_progress(run, seed=1)
    state = evaluation_jobs.evaluation_state(run)
    assert state["state"] == "failed" and "/nowhere is gone" in state["message"]
    with pytest.raises(UserError, match="not a run folder"):  # before any progress file is written
        evaluation_jobs.evaluate_with_progress(run.parent)
    assert not (run.parent / evaluation_jobs.PROGRESS_FILE).exists()


def test_fast_dci_adds_the_cli_flag_and_the_process_gets_its_own_session(fake_run, monkeypatch):
    run = fake_run("r1")
    (run / "model.keras").write_bytes(b"")
    calls = []

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            calls.append((cmd, kwargs))
            self.pid = os.getpid()

        def wait(self):  # the launcher reaps its child (no zombie under the server)
            return 0

    monkeypatch.setattr(paths.subprocess, "Popen", FakePopen)
    evaluation_jobs.start_evaluation(run)
    evaluation_jobs.write_progress(run, "done", 1.0, state="finished")
    evaluation_jobs.start_evaluation(run, fast=True)
    (plain, kw), (fast, _) = calls
    assert plain[-3:] == ["vae", "evaluate", str(run.resolve())] and fast[-1] == "--fast"
    assert kw["start_new_session"] is True
    assert evaluation_jobs.evaluation_state(run)["stage"].startswith("starting")


# ---------------------------------------------------------------- the pages


def page(name):
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


@pytest.mark.parametrize("name", ["compare", "embedding"])
def test_the_evaluate_button_starts_an_evaluation_of_the_chosen_run(name, fake_run, monkeypatch, tiny_dataset):
    run = fake_run("r1", dataset=str(tiny_dataset))
    started, fast_flags = [], []

    def start(run_dir, fast=False):
        started.append(run_dir)
        fast_flags.append(fast)
        evaluation_jobs.write_progress(run_dir, "encoding every split", 0.1, pid=os.getpid())
        return os.getpid()

    monkeypatch.setattr(evaluation_jobs, "start_evaluation", start)
    at = page(name).run()
    assert not at.exception
    assert any("Not evaluated yet" in i.value for i in at.info)
    at.checkbox(key=f"{name}_fast_dci").check().run()
    next(b for b in at.button if b.label == "Evaluate").click().run()
    assert fast_flags == [True]
    assert [p.name for p in map(lambda p: __import__("pathlib").Path(p), started)] == [run.name]
    bars = at.get("progress")
    assert bars and "encoding every split" in bars[0].proto.text
    assert next(b for b in at.button if b.label == "Evaluate").disabled  # no second evaluation meanwhile


def test_after_evaluation_the_pages_show_mig_per_factor_and_the_dci_heatmap(fake_run, tiny_dataset):
    run = fake_run("r1", dataset=str(tiny_dataset))
    (run / "evaluation.json").write_text(json.dumps(evaluation()))
    evaluation_jobs.write_progress(run, "done", 1.0, state="finished")
    for name in ("compare", "embedding"):
        at = page(name).run()
        assert not at.exception
        assert any(b.label == "Evaluate again" for b in at.button)
        frames = [df.value for df in at.dataframe]
        mig = next(f for f in frames if "MIG (normalised gap)" in f.columns)
        assert list(mig["most informative latent"]) == ["μ1", "μ2"]
        fa = next(f for f in frames if "its latent" in f.columns)  # the factor-alignment table
        assert list(fa["its latent"]) == ["μ1", "μ2"]
        heat = [figure(at, k) for k in range(len(at.get("plotly_chart")))]
        dci = next(f for f in heat if "DCI importance" in str(f["layout"].get("title")))
        assert dci["data"][0]["x"] == ["a", "b"] and dci["data"][0]["y"] == ["μ1", "μ2", "μ3"]
        assert any("n_estimators 20" in c.value for c in at.caption)


# ---------------------------------------------------------------- the real process


@pytest.mark.slow
def test_evaluate_runs_in_its_own_process_and_reports_its_stages(trained_run, monkeypatch):
    run = trained_run  # a real run with 3 latents (the session's, copied)
    assert launcher.run_state(run)["state"] == "finished"
    # test hook: the process waits 1 s after reporting each stage, so the 0.2 s poll below sees every stage on any
    # machine (without it a fast machine can finish a stage between two polls)
    monkeypatch.setenv(evaluation_jobs.STAGE_DELAY_ENV, "1.0")
    pid = evaluation_jobs.start_evaluation(run)
    assert os.getpgid(pid) == pid  # its own session: a Streamlit rerun or restart does not end it
    seen = set()
    deadline = __import__("time").time() + 300
    while (state := evaluation_jobs.evaluation_state(run))["state"] == "running":
        seen.add(state["stage"])
        assert __import__("time").time() < deadline
        __import__("time").sleep(0.2)
    assert state["state"] == "finished", (state, (run / "evaluate.log").read_text()[-2000:])
    assert {
        "starting (loading TensorFlow)",
        "loading the dataset and the model",
        "encoding every split",
        "disentanglement metrics (MIG, DCI, SAP, FactorVAE, BetaVAE)",
        "chance levels (random rotations of the codes)",
        "transects, hole and reconstruction losses",
    } <= seen, seen
    doc = json.loads((run / "evaluation.json").read_text())
    views = evaluation_views(doc)
    assert [r["factor"] for r in views["mig_per_factor"]] == ["a", "b"]
    assert views["dci_importance"]["matrix"].shape == (3, 2)


def test_the_stage_delay_test_hook_is_off_unless_set_and_refuses_a_non_number(monkeypatch):
    """VAE_LAB_TEST_STAGE_DELAY_S (docs/testing.md) holds an evaluation after each stage it reports; unset, none."""
    monkeypatch.delenv(evaluation_jobs.STAGE_DELAY_ENV, raising=False)
    assert evaluation_jobs.stage_delay_hook() == 0.0
    monkeypatch.setenv(evaluation_jobs.STAGE_DELAY_ENV, "0.5")
    assert evaluation_jobs.stage_delay_hook() == 0.5
    monkeypatch.setenv(evaluation_jobs.STAGE_DELAY_ENV, "soon")
    with pytest.raises(
        UserError, match=f"environment variable {evaluation_jobs.STAGE_DELAY_ENV}='soon' is not a number"
    ):
        evaluation_jobs.stage_delay_hook()
    monkeypatch.setenv(evaluation_jobs.STAGE_DELAY_ENV, "-1")  # a negative delay is a typo, not "no delay"
    with pytest.raises(UserError, match=f"{evaluation_jobs.STAGE_DELAY_ENV}='-1' is not a number >= 0"):
        evaluation_jobs.stage_delay_hook()
