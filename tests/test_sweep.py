"""Sweeps without training: planning, the folder format, results, state, the report and the run index."""

import csv
import json
import os
import time

import numpy as np
import pytest

from vae import cli
from vae.base.errors import UserError
from vae.runs import run_index
from vae.runs.folder import read_config
from vae.sweeps import sweep, report


def _finish(run_dir, summary: dict, val_loss=0.5):
    """Make a planned run look trained and evaluated (status, one epoch line, evaluation.json)."""
    (run_dir / "status.json").write_text(
        json.dumps({"state": "finished", "pid": None, "heartbeat": time.time(), "started": 1.0, "finished": 2.0})
    )
    (run_dir / "metrics.jsonl").write_text(
        json.dumps({"kind": "epoch", "epoch": 1, "val_loss": val_loss, "val_recon": val_loss / 2, "val_kl": 1.0}) + "\n"
    )
    (run_dir / "evaluation.json").write_text(json.dumps({"summary": summary}))


def test_a_method_is_swept_like_any_setting_and_its_parameters_are_json():
    assert sweep.parse_grid(["method=beta-vae,factor-vae"]) == {"method": ["beta-vae", "factor-vae"]}
    assert sweep.parse_value("method_params", '{"lambda_od": 10}') == {"lambda_od": 10}
    with pytest.raises(UserError, match="JSON object"):
        sweep.parse_value("method_params", "10")


def test_grid_values_are_typed_like_the_setting():
    grid = sweep.parse_grid(["gamma=0,1e-4,1e-3", "latent-dim=2,3", "arch=seed,burgess", "sample_weights=true"])
    assert grid == {
        "gamma": [0.0, 1e-4, 1e-3],
        "latent_dim": [2, 3],
        "arch": ["seed", "burgess"],
        "sample_weights": [True],
    }


@pytest.mark.parametrize(
    "item, words",
    [
        ("colour=1,2", "not a setting"),
        ("gamma", "SETTING=V1"),
        ("latent_dim=2.5", "latent_dim must be"),
        ("gamma=1,1", "repeats"),
        ("seed=1,2", "not a setting"),
    ],
)
def test_bad_grid_is_a_user_error(item, words):
    with pytest.raises(UserError, match=words):
        sweep.parse_grid([item])


def test_plan_writes_one_ordinary_run_folder_per_setting_and_seed(tiny_dataset, tmp_workspace):
    out = sweep.plan_sweep(
        tmp_workspace / "sweeps" / "g",
        tiny_dataset,
        {"gamma": [0.0, 1e-3], "beta": [1e-3, 4e-3]},
        seeds=2,
        fixed={"epochs": "1", "batch-size": "32"},
    )
    doc = sweep.read_sweep(out)
    assert doc["grid"] == {"gamma": [0.0, 1e-3], "beta": [1e-3, 4e-3]} and doc["seeds"] == [0, 1]
    assert len(doc["runs"]) == 8 and len({r["name"] for r in doc["runs"]}) == 8
    for run in doc["runs"]:
        cfg = read_config(sweep.run_dir_of(out, run))["config"]
        assert {k: cfg[k] for k in run["settings"]} == run["settings"]
        assert cfg["seed"] == run["seed"] and cfg["epochs"] == 1 and cfg["batch_size"] == 32
        assert cfg["image_size"] == 32
    assert sweep.sweep_state(out)["state"] == "planned"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 8 and {r["state"] for r in rows} == {"queued"}
    with pytest.raises(UserError, match="already holds a sweep"):
        sweep.plan_sweep(out, tiny_dataset, {"gamma": [0.0]})


def test_an_invalid_setting_is_refused_before_anything_is_written(tiny_dataset, tmp_workspace):
    with pytest.raises(UserError, match="beta must be >= 0"):
        sweep.plan_sweep(tmp_workspace / "sweeps" / "bad", tiny_dataset, {"beta": [0.001, -1.0]})
    assert not (tmp_workspace / "sweeps" / "bad").exists()
    with pytest.raises(UserError, match="both swept"):
        sweep.plan_sweep(tmp_workspace / "sweeps" / "bad", tiny_dataset, {"beta": [0.001]}, fixed={"beta": "0.1"})


def test_results_hold_settings_state_node_and_the_evaluation_summary(tiny_dataset, tmp_workspace):
    out = sweep.plan_sweep(tmp_workspace / "sweeps" / "r", tiny_dataset, {"gamma": [0.0, 1e-3]}, seeds=2)
    doc = sweep.read_sweep(out)
    first = sweep.run_dir_of(out, doc["runs"][0])
    _finish(first, {"mig": 0.25, "straightness": {"P1": 0.9}})
    assert sweep.run_done(first) and not sweep.run_done(sweep.run_dir_of(out, doc["runs"][1]))
    status = sweep.read_status(out)
    status["runs"] = {doc["runs"][0]["name"]: {"node": "n1", "host": "h", "wall_s": 12.5, "attempts": 1}}
    sweep.write_status(out, status)
    sweep.write_results(out)
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert rows[0]["state"] == "finished" and rows[0]["node"] == "n1" and float(rows[0]["wall_s"]) == 12.5
    assert float(rows[0]["eval_mig"]) == 0.25 and float(rows[0]["eval_straightness_P1"]) == 0.9
    assert float(rows[0]["val_loss"]) == 0.5 and rows[0]["gamma"] == "0.0" and rows[0]["seed"] == "0"
    assert rows[1]["state"] == "queued" and rows[1]["eval_mig"] == ""
    assert not list(out.glob(".*tmp*"))  # written atomically


def test_a_dead_driver_leaves_a_resumable_stopped_sweep(tiny_dataset, tmp_workspace):
    out = sweep.plan_sweep(tmp_workspace / "sweeps" / "d", tiny_dataset, {"gamma": [0.0]})
    sweep.write_status(out, {"state": "running", "driver_pid": 2**22 + 12345, "heartbeat": time.time(), "runs": {}})
    st = sweep.sweep_state(out)
    assert st["state"] == "stopped" and "resume" in st["message"]
    sweep.write_status(out, {"state": "running", "driver_pid": os.getpid(), "heartbeat": time.time(), "runs": {}})
    assert sweep.sweep_state(out)["state"] == "running"
    with pytest.raises(UserError, match="already running"):
        sweep.launch_driver(out)


def test_watch_summary_counts_runs_and_estimates_the_time_left():
    rows = [
        {"state": "finished", "wall_s": 10.0},
        {"state": "finished", "wall_s": 20.0},
        {"state": "running"},
        {"state": "queued"},
        {"state": "queued"},
        {"state": "diverged"},
    ]
    w = sweep.watch_summary(rows, {"state": "running", "workers": 2})
    assert (w["finished"], w["running"], w["queued"], w["failed"], w["total"]) == (2, 1, 2, 1, 6)
    assert w["eta_s"] == pytest.approx(15.0 * 3 / 2)
    assert sweep.watch_summary(rows, {"state": "stopped"})["eta_s"] is None


def test_cli_refuses_a_sweep_without_data_in_one_line(capsys):
    assert cli.main(["sweep", "--grid", "gamma=0,1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sweep needs --data") and "Traceback" not in err
    assert cli.main(["sweep", "--resume", "/nonexistent/sweep"]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


def test_the_cli_plans_fixed_settings_from_train_flags(tiny_dataset, tmp_workspace, capsys):
    out = tmp_workspace / "sweeps" / "c"
    assert (
        cli.main(
            [
                "sweep",
                "--data",
                str(tiny_dataset),
                "--out",
                str(out),
                "--grid",
                "gamma=0,1e-3",
                "--seeds",
                "3",
                "--epochs",
                "2",
                "--arch",
                "seed",
                "--gpus-per-run",
                "0.5",
                "--plan-only",
            ]
        )
        == 0
    )
    doc = sweep.read_sweep(out)
    assert doc["resources"]["gpus_per_run"] == 0.5
    assert len(doc["runs"]) == 6 and doc["fixed"]["epochs"] == 2 and doc["fixed"]["arch"] == "seed"


def test_report_says_no_evidence_when_the_seeds_overlap_and_higher_when_they_do_not():
    rows = []
    for seed in range(5):
        for gamma, shift in ((0.0, 0.0), (1e-3, 0.0), (1e-2, 0.5)):
            rows.append(
                {
                    "gamma": gamma,
                    "seed": seed,
                    "state": "finished",
                    "eval_mig": 0.2 + shift + 0.01 * ((seed * 7) % 5 - 2),
                }
            )
    eff = {e["gamma"]: e for e in report.effects(rows, "gamma", "eval_mig", 0.0)}
    assert eff[1e-3]["verdict"] == "no evidence" and eff[1e-3]["paired"]
    assert eff[1e-3]["words"].startswith("no evidence of a difference in MIG: difference +0 ")
    assert "no effect" not in eff[1e-3]["words"]
    assert eff[1e-2]["words"].startswith("MIG higher by 0.5 (95% interval +0.5 to +0.5, Holm-adjusted p 0)")
    assert "Holm-adjusted p" in eff[1e-2]["words"] and eff[1e-2]["family_size"] == 2
    assert eff[1e-3]["power"] == ""  # the same value per seed: no spread, nothing to size
    vr = report.variance_and_ranking(rows, ["gamma"], "eval_mig")
    assert vr["share_setting"] > 0.9 and vr["seeds"] == 5
    assert report.metric_columns(rows) == ["eval_mig"]
    per = report.per_setting(rows, ["gamma"], "eval_mig")
    assert [p["gamma"] for p in per] == [0.0, 1e-3, 1e-2] and per[2]["mean"] == pytest.approx(0.7)
    x = [0.2 + 0.01 * ((seed * 7) % 5 - 2) for seed in range(5)]  # the t interval, computed independently
    half = 2.7764451051977987 * np.std(x, ddof=1) / np.sqrt(5)
    assert (per[0]["lo"], per[0]["hi"]) == pytest.approx((np.mean(x) - half, np.mean(x) + half))


def test_text_report_leads_with_numbers_then_verdicts_then_power_and_warns_under_5_seeds():
    rows = [
        {
            "gamma": g,
            "seed": s,
            "state": "finished",
            "eval_mig": 0.2 + (0.3 + 0.01 * s if g == 1e-2 else 0.0) + 0.01 * s,
            "val_kl": float(s),
        }
        for g in (0.0, 1e-2)
        for s in range(3)
    ]
    text = report.text_report(rows, {"gamma": [0.0, 1e-2]})
    assert "WARNING: Only 3 seeds" in text and "no effect" not in text
    numbers, verdict = text.index("gamma = 0: 0.21 [0.185, 0.235], n = 3"), text.index("MIG higher by 0.3")
    power = text.index("smallest detectable difference at 3 seeds")
    assert numbers < verdict < power
    many = [dict(r, seed=r["seed"] + 10 * k) for r in rows for k in range(2)]
    assert "WARNING" not in report.text_report(many, {"gamma": [0.0, 1e-2]})


def test_correlations_across_runs_are_within_settings():
    # γ raises both KL and MIG; within a γ they run opposite ways: the page must not report the pooled +
    rows = [
        {"gamma": g, "seed": s, "state": "finished", "val_kl": 10 * g + s, "eval_mig": 10 * g - 0.1 * s}
        for g in (0.0, 1.0)
        for s in range(4)
    ]
    (c,) = report.unsupervised_vs_supervised(rows, ["gamma"])
    assert c["spearman within settings"] == pytest.approx(-1.0)
    assert c["spearman pooled (confounded)"] > 0.5


def test_run_index_lists_sweep_runs_and_rereads_only_changed_runs(fake_run, tmp_workspace, monkeypatch):
    for i in range(3):
        fake_run(name=f"run-{i}")
    sw = tmp_workspace / "sweeps" / "s1"
    (sw / "runs").mkdir(parents=True)
    (sw / "sweep.json").write_text("{}")
    fake_run(name="inner")
    os.replace(tmp_workspace / "runs" / "inner", sw / "runs" / "inner")
    run_index._CACHE.clear()
    rows = run_index.list_runs()
    assert sorted(r["name"] for r in rows) == ["run-0", "run-1", "run-2", "s1/inner"]
    assert next(r for r in rows if r["name"] == "s1/inner")["sweep"] == "s1"
    reads = []
    real = run_index._summary
    monkeypatch.setattr(run_index, "_summary", lambda *a: reads.append(a[1]) or real(*a))
    run_index.list_runs()
    assert reads == []  # nothing changed: nothing re-read
    (tmp_workspace / "runs" / "run-1" / "evaluation.json").write_text(json.dumps({"summary": {"mig": 0.3}}))
    rows = run_index.list_runs()
    assert reads == ["run-1"]
    assert next(r for r in rows if r["name"] == "run-1")["evaluation"] == {"mig": 0.3}
    run_index._CACHE.clear()  # a new server process reads the index file instead of the run folders
    run_index.list_runs()
    assert reads == ["run-1"]


def test_run_index_notices_a_trainer_that_died(fake_run):
    fake_run(name="ghost", state="running", pid=2**22 + 4321)
    run_index._CACHE.clear()
    (row,) = run_index.list_runs()
    assert row["state"] == "failed" and "ended without finishing" in row["message"]


def test_cli_report_prints_the_answer_over_seeds(tiny_dataset, tmp_workspace, capsys):
    from tests.sweep_fixtures import fake_finished_sweep

    out = fake_finished_sweep(tmp_workspace, tiny_dataset)
    assert cli.main(["sweep", "--report", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("9 finished runs")
    assert "gamma = 0.01: " in text and "n = 3" in text and "share of variance" in text
    assert "chance (the same measure on randomly rotated codes, 9 runs): 0.42 [0.05, 0.85]" in text
    assert "gamma = 0.001: no evidence of a difference in factor alignment" in text
    assert "gamma = 0.01: MIG higher by 0." in text and "no effect" not in text
