"""Start while a run trains queues it: the run waits (state `waiting`), the queue keeps its order, the
next run starts when a trainer is free (started once, whoever asks), and states shown are current."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages._ui import progress_summary
from vae.base import safety
from vae.base.errors import UserError
from vae.jobs import launcher
from vae.runs import folder
from vae.runs.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def cfg_of(dataset, **overrides) -> TrainConfig:
    return TrainConfig(**{"dataset": str(dataset), "image_size": 32, "epochs": 2, "batch_size": 16, **overrides})


@pytest.fixture
def trainers(monkeypatch):
    """Trainer processes replaced by `sleep` (alive, costs nothing); records (run, resume) per launch."""
    launched = []

    def spawn(run_dir, resume=False):
        proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
        launched.append({"run": Path(run_dir).name, "resume": resume, "proc": proc})
        return proc.pid

    monkeypatch.setattr(launcher, "_spawn", spawn)
    yield launched
    for t in launched:
        t["proc"].kill()
        t["proc"].wait()


def finish(trainer: dict) -> None:
    """The trainer process of a run ends (as after its last epoch): its run no longer holds a trainer."""
    trainer["proc"].kill()
    trainer["proc"].wait()


def test_a_second_start_while_the_trainer_is_busy_waits_in_the_queue(tiny_dataset, tmp_workspace, trainers):
    root = tmp_workspace / "runs"
    first = launcher.start_run(cfg_of(tiny_dataset, seed=1), runs_root=root)
    second = launcher.start_run(cfg_of(tiny_dataset, seed=2), runs_root=root)  # no error: queued
    assert [t["run"] for t in trainers] == [first.name]
    st = folder.read_status(second)
    assert st["state"] == "waiting" and st["pid"] is None and st["queued_at"] > 0 and st["resume"] is False
    assert "VAE_LAB_MAX_TRAINERS" in st["message"]
    assert folder.run_state(second)["state"] == "waiting"  # no trainer, and not reported failed for it
    assert [r["name"] for r in launcher.queue(root)] == [second.name]
    assert launcher.start_run(cfg_of(tiny_dataset, seed=2), runs_root=root) == second  # a double click: same run


def test_the_queue_keeps_the_order_of_the_requests_and_starts_the_next_when_a_trainer_is_free(
    tiny_dataset, tmp_workspace, trainers
):
    root = tmp_workspace / "runs"
    names = [launcher.start_run(cfg_of(tiny_dataset, seed=s), runs_root=root, name=f"r{s}").name for s in range(4)]
    assert [r["name"] for r in launcher.queue(root)] == names[1:]
    assert launcher.start_waiting(root) == []  # the trainer is still busy
    finish(trainers[0])
    assert [p.name for p in launcher.start_waiting(root)] == ["r1"]
    assert folder.read_status(root / "r1")["state"] == "queued" and [r["name"] for r in launcher.queue(root)] == [
        "r2",
        "r3",
    ]
    finish(trainers[1])
    launcher.start_waiting(root)
    assert [t["run"] for t in trainers] == ["r0", "r1", "r2"]


def test_a_waiting_run_is_started_once_however_many_ask_at_once(tiny_dataset, tmp_workspace, trainers):
    root = tmp_workspace / "runs"
    launcher.start_run(cfg_of(tiny_dataset, seed=0), runs_root=root, name="a")
    launcher.start_run(cfg_of(tiny_dataset, seed=1), runs_root=root, name="b")
    launcher.start_run(cfg_of(tiny_dataset, seed=2), runs_root=root, name="c")
    finish(trainers[0])
    barrier, results = threading.Barrier(6), []

    def ask():
        barrier.wait()
        results.append(launcher.start_waiting(root))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [t["run"] for t in trainers] == ["a", "b"]  # b once, c still waits for a free trainer
    assert sum(len(r) for r in results) == 1 and folder.read_status(root / "c")["state"] == "waiting"


def test_two_processes_finishing_at_once_start_the_next_run_once(tiny_dataset, tmp_workspace, trainers, monkeypatch):
    """The trainer that ends and a dashboard page both ask; separate processes, one lock."""
    root = tmp_workspace / "runs"
    monkeypatch.setenv("VAE_LAB_MAX_TRAINERS", "1")
    launcher.start_run(cfg_of(tiny_dataset, seed=0), runs_root=root, name="a")
    launcher.start_run(cfg_of(tiny_dataset, seed=1), runs_root=root, name="b")
    finish(trainers[0])
    script = (
        "import sys, subprocess; from vae.jobs import launcher; "
        "launcher._spawn = lambda run_dir, resume=False: subprocess.Popen(['sleep', '60'], start_new_session=True, "
        "stdout=subprocess.DEVNULL).pid; "
        "print(len(launcher.start_waiting(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    started = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    try:
        assert sorted(started) == [0, 0, 1]
        assert folder.read_status(root / "b")["state"] == "queued"
    finally:
        pid = folder.read_status(root / "b").get("pid")
        if isinstance(pid, int):
            os.kill(pid, 9)


def test_stop_takes_a_waiting_run_out_of_the_queue(tiny_dataset, tmp_workspace, trainers):
    root = tmp_workspace / "runs"
    launcher.start_run(cfg_of(tiny_dataset, seed=0), runs_root=root, name="a")
    launcher.start_run(cfg_of(tiny_dataset, seed=1), runs_root=root, name="b")
    launcher.start_run(cfg_of(tiny_dataset, seed=2), runs_root=root, name="c")
    launcher.request_stop(root / "b")
    st = folder.read_status(root / "b")
    assert st["state"] == "stopped" and "out of the queue" in st["message"] and not (root / "b" / "stop").exists()
    finish(trainers[0])
    launcher.start_waiting(root)
    assert [t["run"] for t in trainers] == ["a", "c"]


def test_resume_while_the_trainer_is_busy_waits_and_then_resumes(tiny_dataset, tmp_workspace, trainers, fake_run):
    root = tmp_workspace / "runs"
    old = fake_run("old", state="stopped", done_epochs=1, epochs=3, dataset=str(tiny_dataset))
    (old / "last.keras").write_bytes(b"checkpoint")
    launcher.start_run(cfg_of(tiny_dataset), runs_root=root, name="a")
    launcher.resume_run(old)
    st = folder.read_status(old)
    assert st["state"] == "waiting" and st["resume"] is True and st["epoch"] == 1
    with pytest.raises(UserError, match="still waiting"):
        launcher.resume_run(old)
    finish(trainers[0])
    launcher.start_waiting(root)
    assert trainers[-1] == {**trainers[-1], "run": "old", "resume": True}
    assert folder.read_status(old)["state"] == "queued"


def test_a_waiting_run_that_no_longer_fits_on_the_disk_fails_and_the_next_one_starts(
    tiny_dataset, tmp_workspace, trainers, monkeypatch
):
    root = tmp_workspace / "runs"
    launcher.start_run(cfg_of(tiny_dataset), runs_root=root, name="a")
    launcher.start_run(cfg_of(tiny_dataset, epochs=2000), runs_root=root, name="big")
    launcher.start_run(cfg_of(tiny_dataset, seed=3), runs_root=root, name="small")
    from vae.data.datasets import load_dataset

    counts = load_dataset(tiny_dataset).meta["counts"]
    big, small = (safety.estimate_run_bytes(cfg_of(tiny_dataset, epochs=e), counts)["total"] for e in (2000, 2))
    assert small < big
    monkeypatch.setattr(safety, "free_bytes", lambda path: safety.margin_bytes() + (big + small) // 2)
    finish(trainers[0])
    launcher.start_waiting(root)
    st = folder.read_status(root / "big")
    assert st["state"] == "failed" and "not enough free disk space" in st["message"]
    assert [t["run"] for t in trainers] == ["a", "small"]


def test_a_queue_nobody_served_moves_on_at_the_next_start(tiny_dataset, tmp_workspace, trainers):
    """Trainers killed without starting the next run: the next Start (or page run) starts the oldest first."""
    root = tmp_workspace / "runs"
    launcher.start_run(cfg_of(tiny_dataset, seed=0), runs_root=root, name="a")
    launcher.start_run(cfg_of(tiny_dataset, seed=1), runs_root=root, name="b")
    finish(trainers[0])  # killed: it did not start b
    launcher.start_run(cfg_of(tiny_dataset, seed=2), runs_root=root, name="c")
    assert [t["run"] for t in trainers] == ["a", "b"] and folder.read_status(root / "c")["state"] == "waiting"


def test_delete_is_refused_for_a_dataset_a_waiting_run_will_train_on(tiny_dataset, tmp_workspace, trainers):
    from vae.jobs import deletes

    root = tmp_workspace / "runs"
    launcher.start_run(cfg_of(tiny_dataset, seed=0), runs_root=root, name="a")
    launcher.start_run(cfg_of(tiny_dataset, seed=1), runs_root=root, name="b")
    with pytest.raises(UserError, match="runs (a, b|b, a) are training on it"):
        deletes.delete_dataset(tiny_dataset, tiny_dataset.parent, root)


# ================================================================== the Train page


def _train_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60)


def _waiting(run: Path, at: float, resume=False) -> None:
    st = json.loads((run / "status.json").read_text())
    st.update(state="waiting", pid=None, queued_at=at, resume=resume, message="waiting for a free trainer")
    (run / "status.json").write_text(json.dumps(st))


def test_train_page_shows_the_queue_in_order_and_a_waiting_run_can_leave_it(tiny_dataset, fake_run):
    fake_run("live", state="running", pid=os.getpid(), done_epochs=1, epochs=5, dataset=str(tiny_dataset))
    now = time.time()
    for k, name in enumerate(("second", "first", "third")):
        _waiting(
            fake_run(name, done_epochs=0, dataset=str(tiny_dataset)), now + {"first": 1, "second": 2, "third": 3}[name]
        )
    at = _train_page().run()
    assert not at.exception
    queue = next(d.value for d in at.dataframe if "position" in d.value.columns)
    assert list(queue["name"]) == ["first", "second", "third"] and list(queue["position"]) == [1, 2, 3]
    labels = at.selectbox(key="train_run").options
    assert any("(waiting)" in o for o in labels) and at.selectbox(key="train_run").value == "live"
    at.selectbox(key="train_run").set_value("second").run()
    assert "**waiting** · position 2 of 3 in the queue" in at.get("progress")[0].proto.text
    at.button(key="stop").click().run()
    assert folder.read_status(Path(tiny_dataset).parent.parent / "runs" / "second")["state"] == "stopped"


def test_train_page_start_while_busy_queues_the_run_instead_of_an_error(tiny_dataset, fake_run, tmp_workspace):
    fake_run("live", state="running", pid=os.getpid(), done_epochs=1, epochs=5, dataset=str(tiny_dataset))
    at = _train_page().run()
    at.number_input(key="epochs").set_value(1).run()
    at.number_input(key="batch_size").set_value(32).run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception and not at.error
    queue = next(d.value for d in at.dataframe if "position" in d.value.columns)
    assert len(queue) == 1 and at.selectbox(key="train_run").value == queue["name"][0]
    assert "position 1 of 1 in the queue" in at.get("progress")[0].proto.text
    assert any(b.label == "Remove from queue" for b in at.button)


# ================================================================== states that are current (16.8)


def test_a_stopped_run_shows_no_time_left():
    last = {"epoch": 2, "step": 5, "time": 60.0, "images_per_s": 1000.0}
    status = {"epochs": 5, "epoch": 2, "steps_per_epoch": 10, "step": 5}
    assert "left" in progress_summary({**status, "state": "running"}, last)[1]
    for state in ("stopped", "failed", "diverged", "waiting", "queued"):
        assert "left" not in progress_summary({**status, "state": state}, last)[1], state


def test_train_page_reads_a_stopped_runs_state_and_offers_resume_not_stop(tiny_dataset, fake_run):
    run = fake_run("r", state="stopped", done_epochs=2, epochs=5, dataset=str(tiny_dataset))
    (run / "last.keras").write_bytes(b"x")
    at = _train_page().run()
    text = at.get("progress")[0].proto.text
    assert text.startswith("**stopped**") and "left" not in text
    assert at.selectbox(key="train_run").options == ["r  (stopped)"]
    assert {b.label for b in at.button} >= {"Resume"} and "Stop" not in {b.label for b in at.button}


@pytest.mark.slow
def test_the_finishing_trainer_starts_the_waiting_run_with_no_page_open(tiny_dataset, tmp_workspace, monkeypatch):
    """Two real one-epoch runs, one trainer: the second starts when the first ends, by the first's process."""
    monkeypatch.setenv("VAE_LAB_MAX_TRAINERS", "1")
    root = tmp_workspace / "runs"
    first = launcher.start_run(cfg_of(tiny_dataset, epochs=1, seed=0), runs_root=root, name="first")
    second = launcher.start_run(cfg_of(tiny_dataset, epochs=1, seed=1), runs_root=root, name="second")
    assert folder.read_status(second)["state"] == "waiting"
    assert launcher.wait_for(first, timeout=600)["state"] == "finished"
    st = launcher.wait_for(second, timeout=600)
    assert st["state"] == "finished", st
    assert folder.read_status(second)["pid"] != folder.read_status(first)["pid"]
