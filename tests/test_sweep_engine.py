"""Sweeps on Ray, end to end through the CLI: a local instance, a two-node cluster, and faults.

Each test has its own RAY_TMPDIR and ends every Ray process it started (found by that folder in
their environment), never other users' Ray processes.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from vae.runs.folder import read_metrics
from vae.sweeps import sweep

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture
def ray_env(tmp_workspace):
    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = {
        **os.environ,
        "VAE_LAB_HOME": str(tmp_workspace),
        "PYTHONPATH": str(ROOT),
        "RAY_TMPDIR": tmp,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    yield env
    _kill_ray(tmp, str(tmp_workspace))
    subprocess.run(["rm", "-rf", tmp])


def _kill_ray(tmp: str, home: str | None = None) -> None:
    """End the processes whose environment names this test's RAY_TMPDIR or data root (ours, and only
    ours: Ray's agents keep the data root but not always RAY_TMPDIR). Repeated until none is left,
    since a dying raylet may still start one."""
    for _ in range(5):
        mine = []
        for p in psutil.process_iter(["pid"]):
            try:
                env = p.environ()
            except (psutil.Error, OSError):
                continue
            if p.pid != os.getpid() and (env.get("RAY_TMPDIR") == tmp or (home and env.get("VAE_LAB_HOME") == home)):
                mine.append(p)
                try:  # the raylet's agents do not always keep those variables: take its children too
                    mine += p.children(recursive=True)
                except psutil.Error:
                    pass
        if not mine:
            return
        mine = list({p.pid: p for p in mine}.values())
        for p in mine:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(mine, timeout=10)


def _sweep_cmd(data, out, *extra):
    return [
        sys.executable,
        "-m",
        "vae",
        "sweep",
        "--data",
        str(data),
        "--out",
        str(out),
        "--batch-size",
        "32",
        "--image-size",
        "32",
        *extra,
    ]


def _wait(cond, timeout=300, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _epochs(run_dir) -> list[int]:
    return [r["epoch"] for r in read_metrics(run_dir, "epoch")]


def _results(out) -> list[dict]:
    with open(Path(out) / "results.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.timeout(1800)  # its two waits (900 s each) fit: at load 30 the sweep and its resume took over 600 s
def test_a_2x2_sweep_on_local_ray_completes_and_a_killed_driver_is_resumed(tiny_dataset, tmp_workspace, ray_env):
    # Two grid axes, one seed: 4 runs, two at a time on the 2-core machine. (That a grid and its seeds expand to
    # every combination is tests/test_sweep.py's 2x2x2 plan; here the fault is what counts.)
    out = tmp_workspace / "sweeps" / "local"
    driver = subprocess.Popen(
        _sweep_cmd(
            tiny_dataset, out, "--grid", "gamma=0,1e-3", "--grid", "beta=0.001,0.004", "--seeds", "1", "--epochs", "1"
        ),
        env=ray_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Kill the driver once a run is done: the rest (the next two start only after it) continue by --resume.
        _wait(
            lambda: driver.poll() is not None
            or sum(r["state"] == "finished" and r.get("eval_mig", "") != "" for r in _results(out)) >= 1
            if (out / "results.csv").exists()
            else False,
            timeout=900,
            what="a run done",
        )
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        done_before = {
            r["run"]: json.loads((out / "runs" / r["run"] / "status.json").read_text())["started"]
            for r in _results(out)
            if r["state"] == "finished"
        }
        assert sweep.sweep_state(out)["state"] in ("stopped", "finished")
        _kill_ray(
            ray_env["RAY_TMPDIR"], ray_env["VAE_LAB_HOME"]
        )  # what a killed driver's local Ray instance leaves, if anything
        res = subprocess.run(
            [sys.executable, "-m", "vae", "sweep", "--resume", str(out)],
            env=ray_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        if driver.poll() is None:
            driver.kill()
    rows = _results(out)
    assert 1 <= len(done_before) < 4, done_before  # the resume had runs left to train
    assert len(rows) == 4 and {r["state"] for r in rows} == {"finished"}
    assert {(r["gamma"], r["beta"], r["seed"]) for r in rows} == {
        (g, b, "0") for g in ("0.0", "0.001") for b in ("0.001", "0.004")
    }
    for r in rows:
        run_dir = out / "runs" / r["run"]
        assert _epochs(run_dir) == [1], r["run"]  # every run trained once, no epoch twice
        assert r["eval_mig"] != "" and (run_dir / "evaluation.json").exists()  # the evaluation summary
        assert r["node"] and float(r["wall_s"]) > 0
    for name, started in done_before.items():  # finished before the kill: not trained again
        assert json.loads((out / "runs" / name / "status.json").read_text())["started"] == started
    assert sweep.sweep_state(out)["state"] == "finished"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_same_sweep_runs_on_a_two_node_ray_cluster_with_runs_on_both_nodes(tiny_dataset, tmp_workspace, ray_env):
    port = _free_port()
    ray = str(Path(sys.executable).parent / "ray")
    ray = ray if os.path.exists(ray) else "ray"
    common = ["--num-cpus=1", "--disable-usage-stats"]
    subprocess.run(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--include-dashboard=false",
            "--num-gpus=0",
            f"--temp-dir={ray_env['RAY_TMPDIR']}",
            *common,
        ],
        env=ray_env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    subprocess.run(
        [ray, "start", f"--address=127.0.0.1:{port}", "--num-gpus=1", *common],
        env=ray_env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    out = tmp_workspace / "sweeps" / "cluster"
    res = subprocess.run(
        _sweep_cmd(
            tiny_dataset,
            out,
            "--grid",
            "gamma=0,1e-3",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--evaluate",
            "none",
            "--ray-address",
            f"127.0.0.1:{port}",
        ),
        env=ray_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "on 2 node(s)" in res.stdout
    rows = _results(out)
    # 4 runs on two 1-CPU nodes: two train at once, necessarily one on each node
    assert len(rows) == 4 and {r["state"] for r in rows} == {"finished"}
    assert len({r["node"] for r in rows}) == 2  # both nodes trained runs
    assert all(_epochs(out / "runs" / r["run"]) == [1] for r in rows)

    # --gpus-per-run: only the second node has a GPU (a logical one: Ray schedules by declared resources), so
    # both runs go there, one at a time, each given GPU 0 by Ray (CUDA_VISIBLE_DEVICES in its worker).
    gpu_out = tmp_workspace / "sweeps" / "gpu"
    res = subprocess.run(
        _sweep_cmd(
            tiny_dataset,
            gpu_out,
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--evaluate",
            "none",
            "--gpus-per-run",
            "1",
            "--ray-address",
            f"127.0.0.1:{port}",
        ),
        env=ray_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    gpu_rows = _results(gpu_out)
    assert len(gpu_rows) == 2 and {r["state"] for r in gpu_rows} == {"finished"}
    assert len({r["node"] for r in gpu_rows}) == 1
    recorded = json.loads((gpu_out / "status.json").read_text())["runs"]
    assert [recorded[r["run"]]["gpus"] for r in gpu_rows] == [["0"], ["0"]]


def test_a_worker_killed_mid_run_is_retried_from_its_last_epoch(tiny_dataset, tmp_workspace, ray_env):
    out = tmp_workspace / "sweeps" / "crash"
    # The worker must still be training when it is killed after epoch 1: each batch takes at least 0.1 s
    # (test hook, docs/testing.md), so the 3 epochs left last over 6 s however fast the machine is.
    driver = subprocess.Popen(
        _sweep_cmd(tiny_dataset, out, "--seeds", "1", "--epochs", "4", "--evaluate", "none", "--batch-size", "8"),
        env={**ray_env, "VAE_LAB_TEST_BATCH_DELAY_S": "0.1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_dir = _wait(
            lambda: next((out / "runs").glob("r000*"), None) if (out / "runs").exists() else None, what="the run folder"
        )
        _wait(lambda: driver.poll() is not None or _epochs(run_dir)[:1] == [1], what="epoch 1")
        first_epoch = read_metrics(run_dir, "epoch")[0]
        pid = json.loads((run_dir / "status.json").read_text())["pid"]
        assert driver.poll() is None and pid != driver.pid
        os.kill(pid, signal.SIGKILL)  # the Ray worker training the run
        stdout, _ = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, stdout
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["pid"] != pid
    assert _epochs(run_dir) == [1, 2, 3, 4]  # resumed, no epoch counted twice
    assert read_metrics(run_dir, "epoch")[0] == first_epoch  # epoch 1 was not trained again
    assert _results(out)[0]["state"] == "finished"
