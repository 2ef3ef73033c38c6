"""Every process the dashboard's server starts (trainer, standby, evaluation, sweep driver) is reaped once it
exits: an exited child nobody waits for stays a zombie under the long-running server until it stops."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from vae.base import paths
from vae.jobs import evaluation_jobs, launcher, standby
from vae.sweeps import sweep
from tests.sweep_fixtures import fake_finished_sweep


def assert_reaped(pid: int, what: str, deadline_s: float = 30.0) -> None:
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            psutil.Process(pid).status()
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    pytest.fail(f"{what}'s process {pid} still exists {deadline_s:.0f} s after it exited (a zombie under the server)")


@pytest.fixture
def short_children(monkeypatch):
    """Each Popen runs `python -c pass` instead of the lab's command (same keyword arguments); records the commands."""
    real, cmds = subprocess.Popen, []

    def popen(cmd, **kw):
        cmds.append(cmd)
        return real([sys.executable, "-c", "pass"], **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return cmds


def test_start_detached_gives_the_child_its_own_session_and_reaps_it(tmp_path, short_children):
    pid = paths.start_detached(["anything"], tmp_path / "x.log")
    assert short_children == [["anything"]] and (tmp_path / "x.log").exists()
    assert_reaped(pid, "a detached child")


def test_a_trainer_an_evaluation_a_standby_and_a_sweep_driver_are_reaped(
    fake_run, tmp_workspace, tiny_dataset, short_children
):
    run = fake_run("z", state="finished")
    (run / "model.keras").write_bytes(b"x")
    pids = {
        "trainer": launcher._spawn(run),
        "evaluation": evaluation_jobs.start_evaluation(run),
        "standby": standby.launch(tmp_workspace / "runs", paths.child_env()),
    }
    out = fake_finished_sweep(tmp_workspace, tiny_dataset, gammas=(0.0,), seeds=1)
    status = sweep.read_status(out)
    sweep.write_status(out, {**status, "state": "stopped"})
    pids["sweep driver"] = sweep.launch_driver(out)
    assert [c[2:4] for c in short_children] == [
        ["vae", "train"],
        ["vae", "evaluate"],
        ["vae", "standby"],
        ["vae", "sweep"],
    ]
    for what, pid in pids.items():
        assert_reaped(pid, what)
