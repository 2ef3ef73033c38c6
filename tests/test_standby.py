"""Warm standby trainers (vae.jobs.standby): a run handed to one trains as usual; standbys never leak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from vae.jobs import launcher
from vae.jobs import standby
from vae.runs import folder
from vae.runs.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def standby_on(monkeypatch):
    monkeypatch.setenv("VAE_LAB_STANDBY", "1")
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    pids = []
    yield pids
    for pid in pids:
        try:
            os.killpg(pid, 9)
        except OSError:
            pass


def _sleeper():
    return subprocess.Popen(["sleep", "120"], start_new_session=True)


def _fake_standby(root: Path, pid: int, backend="tensorflow", ready=True) -> Path:
    d = standby.standby_root(root) / str(pid)
    d.mkdir(parents=True)
    (d / "state.json").write_text(json.dumps({"pid": pid, "backend": backend}))
    if ready:
        (d / "ready.json").write_text("{}")
    return d


@pytest.mark.slow
@pytest.mark.parametrize("when", ["ready", "warming"])
def test_a_run_started_while_a_standby_waits_is_trained_by_it(tmp_path, tiny_dataset, standby_on, monkeypatch, when):
    root = tmp_path / "runs"
    pid = launcher.ensure_standby(root)
    standby_on.append(pid)
    assert pid and launcher.ensure_standby(root) is None  # one standby at a time
    if when == "ready":
        wait_until(lambda: any(s["ready"] for s in standby.standbys(root)), 600, "the standby's imports")
    else:  # Start pressed while it still imports: the run waits for it rather than start a second process
        assert not standby.standbys(root)[0]["ready"]

    def no_cold_start(*a, **k):
        raise AssertionError("a ready standby was there: no new trainer process should start")

    monkeypatch.setattr(launcher, "_spawn", no_cold_start)
    cfg = TrainConfig(dataset=str(tiny_dataset), image_size=32, epochs=1, batch_size=16)
    run_dir = launcher.start_run(cfg, runs_root=root)
    assert folder.read_status(run_dir)["pid"] == pid
    st = launcher.wait_for(run_dir, timeout=600)
    assert st["state"] == "finished", st
    assert st["pid"] == pid and (run_dir / "model.keras").exists()
    assert len(folder.read_metrics(run_dir, "epoch")) == 1
    assert (run_dir / "trainer.log").exists()
    wait_until(lambda: not folder.pid_alive(pid), 120, "the standby to exit after its run")
    assert standby.standbys(root) == [] and not (standby.standby_root(root) / str(pid)).exists()


@pytest.mark.slow
def test_a_standby_leaves_when_the_process_that_started_it_ends(tmp_path, standby_on):
    root = tmp_path / "runs"
    code = "import sys, vae.jobs.launcher as j; print(j.ensure_standby(sys.argv[1]))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    pid = int(out.stdout.strip())
    standby_on.append(pid)
    wait_until(lambda: not folder.pid_alive(pid), 600, "the orphaned standby to leave")
    assert not (standby.standby_root(root) / str(pid)).exists()


@pytest.mark.slow
def test_a_standby_leaves_after_its_idle_limit(tmp_path, standby_on, monkeypatch):
    monkeypatch.setenv("VAE_LAB_STANDBY_IDLE_S", "0.5")
    root = tmp_path / "runs"
    pid = launcher.ensure_standby(root)
    standby_on.append(pid)
    wait_until(lambda: not folder.pid_alive(pid), 600, "the idle standby to leave")
    assert standby.standbys(root) == []


def test_claims_are_exclusive_and_skip_dead_leaving_and_foreign_standbys(tmp_path, standby_on):
    root = tmp_path / "runs"
    live = [_sleeper() for _ in range(3)]
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        _fake_standby(root, dead.pid)  # its process is gone: folder removed, never claimed
        _fake_standby(root, live[0].pid, backend="jax")  # another backend than this environment's
        leaving = _fake_standby(root, live[1].pid)
        assert standby._take(leaving, "standby")  # it is leaving: cannot be claimed
        assert not standby._take(leaving, "run")
        good = _fake_standby(root, live[2].pid, ready=False)  # still importing: a run may wait for it
        first = standby.claim(root)
        assert first is not None and first["pid"] == live[2].pid
        assert standby.claim(root) is None  # nobody claims the same standby twice
        standby.assign(first, tmp_path / "some-run")
        assert json.loads((good / "job.json").read_text())["run_dir"] == str((tmp_path / "some-run").resolve())
        assert not (standby.standby_root(root) / str(dead.pid)).exists()
    finally:
        for p in live:
            p.kill()


def test_no_standby_while_the_trainer_limit_is_reached_or_when_turned_off(tmp_path, fake_run, standby_on, monkeypatch):
    sleeper = _sleeper()
    try:
        fake_run("busy", state="running", pid=sleeper.pid, heartbeat=time.time() + 3600)
        root = Path(os.environ["VAE_LAB_HOME"]) / "runs"
        assert launcher.ensure_standby(root) is None  # a standby could not be used, and would slow the run
        sleeper.kill()
        sleeper.wait()
        monkeypatch.setenv("VAE_LAB_STANDBY", "0")
        assert launcher.ensure_standby(root) is None
        assert standby.standbys(root) == []
    finally:
        sleeper.kill()
