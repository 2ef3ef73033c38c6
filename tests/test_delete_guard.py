"""The delete guard sees every run that will read a dataset: the runs of a planned or running sweep, and a
CLI run whatever folder it was started from (its config.json stores the dataset's absolute path; an old
relative path is resolved against the data root and the run folder, so the pages find the dataset too)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vae.base.errors import UserError
from vae.data import datasets
from vae.data import presets
from vae.jobs import deletes
from vae.runs import folder
from vae.sweeps import sweep

ROOT = Path(__file__).resolve().parent.parent


def _small(home: Path, name: str) -> Path:
    return datasets.write_dataset(presets.preset_spec("seed-full", n=40, image_size=32), home / "datasets" / name)


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


def _plan(home: Path, ds: Path, name: str = "sw") -> Path:
    return sweep.plan_sweep(home / "sweeps" / name, ds, {"gamma": [0.0, 1e-4]}, 1, {"epochs": 1, "batch_size": 8})


def test_a_planned_sweeps_runs_block_the_delete_and_the_page_says_so(tmp_workspace):
    ds = _small(tmp_workspace, "ds-a")
    _plan(tmp_workspace, ds)
    usage = deletes.dataset_usage(ds, tmp_workspace / "runs")
    assert len(usage["runs"]) == 2 and all(r.startswith("sw/") for r in usage["runs"])
    assert usage["active"] == usage["runs"] and usage["sweeps"] == ["sw"]
    with pytest.raises(UserError, match="sweep sw"):
        deletes.delete_dataset(ds, ds.parent, tmp_workspace / "runs")
    assert (ds / "dataset.json").exists()
    at = _page("dataset").run()
    at.button(key="ask_delete::dataset:ds-a").click().run()
    assert not at.exception
    assert "Used by 2 runs" in at.warning[0].value
    assert at.button(key="confirm_delete::dataset:ds-a").disabled
    assert "sw" in at.error[0].value and "Cannot delete now" in at.error[0].value


def test_a_running_sweep_blocks_until_its_runs_end_and_a_stopped_one_does_not(tmp_workspace):
    ds = _small(tmp_workspace, "ds-a")
    out = _plan(tmp_workspace, ds)
    first, second = sweep.read_sweep(out)["runs"]
    (out / "runs" / first["name"] / "status.json").write_text(json.dumps({"state": "finished", "epoch": 1}))
    sweep.write_status(out, {"state": "running", "driver_pid": os.getpid(), "heartbeat": time.time(), "runs": {}})
    usage = deletes.dataset_usage(ds, tmp_workspace / "runs")
    assert usage["active"] == [f"sw/{second['name']}"]  # the finished run will not read it again
    sweep.write_status(out, {"state": "stopped", "runs": {}})  # resumed only by the user's choice
    usage = deletes.dataset_usage(ds, tmp_workspace / "runs")
    assert usage["active"] == [] and len(usage["runs"]) == 2
    deletes.delete_dataset(ds, ds.parent, tmp_workspace / "runs")
    assert not ds.exists()


def test_a_cli_run_started_with_a_relative_path_from_another_folder_blocks_the_delete(tmp_workspace, monkeypatch):
    from vae import cli

    ds = _small(tmp_workspace, "ds-a")
    (tmp_workspace / "work").mkdir()
    monkeypatch.chdir(tmp_workspace / "work")

    class Stop(Exception):
        pass

    def no_training():  # the config is written; TensorFlow and the training are not this test's business
        raise Stop

    monkeypatch.setattr(cli, "load_keras", no_training)
    with pytest.raises(Stop):
        cli.main(
            ["train", "--data", "../datasets/ds-a", "--out", "../runs/cli-run", "--epochs", "1", "--batch-size", "8"]
        )
    run = tmp_workspace / "runs" / "cli-run"
    stored = json.loads((run / "config.json").read_text())["config"]["dataset"]
    assert stored == str(ds.resolve())  # absolute: any reader, from any folder, finds it
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": os.getpid(), "heartbeat": time.time()}))
    monkeypatch.chdir(tmp_workspace / "datasets")  # the dashboard runs elsewhere
    usage = deletes.dataset_usage(ds, tmp_workspace / "runs")
    assert usage["active"] == ["cli-run"]
    with pytest.raises(UserError, match="cli-run is training on it"):
        deletes.delete_dataset(ds, ds.parent, tmp_workspace / "runs")


def test_an_old_relative_dataset_path_is_resolved_for_the_guard_and_the_pages(tmp_workspace, fake_run, monkeypatch):
    ds = _small(tmp_workspace, "ds-a")
    monkeypatch.chdir(tmp_workspace)
    run = fake_run("old-cli", dataset="datasets/ds-a", state="running", pid=os.getpid(), done_epochs=1, epochs=3)
    (tmp_workspace / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_workspace / "elsewhere")
    assert folder.read_config(run)["config"]["dataset"] == str(ds)
    assert deletes.dataset_usage(ds, tmp_workspace / "runs")["active"] == ["old-cli"]
    for name in ("reconstructions", "embedding"):
        at = _page(name).run()
        assert not at.exception, (name, at.exception)
        assert not [e.value for e in at.error if "gone" in e.value], name
        assert at.get("plotly_chart") or at.get("image"), name  # the run's figures are drawn


def test_resolve_dataset_tries_the_recorded_path_the_data_root_and_the_run_folder(tmp_path, monkeypatch):
    home, other = tmp_path / "home", tmp_path / "other"
    monkeypatch.setenv("VAE_LAB_HOME", str(home))
    run = other / "runs" / "r"
    run.mkdir(parents=True)
    for where in (home / "datasets" / "a", other / "datasets" / "b", run / "c", tmp_path / "rec" / "d"):
        where.mkdir(parents=True)
        (where / "dataset.json").write_text("{}")
    assert folder.resolve_dataset("datasets/a", run) == str(home / "datasets" / "a")  # the data root
    assert folder.resolve_dataset("datasets/b", run) == str(other / "datasets" / "b")  # the run's own data root
    assert folder.resolve_dataset("c", run) == str(run / "c")  # the run folder
    assert folder.resolve_dataset("x/d", run, str(tmp_path / "rec" / "d")) == str(tmp_path / "rec" / "d")  # recorded
    assert folder.resolve_dataset("gone", run) == str(home / "gone")  # nowhere: where the data root would hold it
    assert folder.resolve_dataset(str(tmp_path / "abs"), run) == str(tmp_path / "abs")
