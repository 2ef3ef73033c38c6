"""Warm trainers: a trainer process started ahead of time, so Start shows its first point sooner.

Importing TensorFlow and Keras takes 4-5 s on a 2-core machine, most of the time between Start and
the first live metrics line (bench/RESULTS.md). When the dashboard is idle (no trainer running), it
keeps one standby process that has done those imports and waits; `launcher.start_run` hands the new
run to it instead of starting a fresh process. Nothing else changes: the standby becomes the run's
trainer (its pid is in status.json, its output goes to trainer.log) and exits when the run ends.

Files, in `<runs root>/.standby/<pid>/` (this module never imports TensorFlow):
- `state.json`   written by the launcher: pid, backend, started (the standby is warming up)
- `ready.json`   written by the standby once its imports are done
- `claimed.json` created with O_EXCL by whoever takes the standby: a caller with a run (also while
                 the standby still warms up: that run waits for the rest of the imports instead of
                 starting a new process beside it), or the standby itself when it leaves. Exclusive
                 creation means exactly one of them wins.
- `job.json`     written by the caller that won: {"run_dir": ..., "resume": ...}

A standby leaves (and removes its folder) when the process that launched it ends, after
VAE_LAB_STANDBY_IDLE_S seconds unused (default 600), or when its folder is removed.
VAE_LAB_STANDBY=0 turns standbys off (trainers then start cold, as from the CLI).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from vae.base import safety
from vae.base.errors import exit_code
from vae.base.fileio import atomic_write_json
from vae.base.paths import start_detached
from vae.base.runtime import load_keras
from vae.base.safety import require_writable
from vae.runs.folder import pid_alive

POLL_S = 0.05
CLAIM_WAIT_S = 10.0  # a claimed standby waits this long for its job.json


def enabled() -> bool:
    return os.environ.get("VAE_LAB_STANDBY", "1").strip().lower() not in ("0", "false", "no", "off")


def idle_limit() -> float:
    return safety.env_number("VAE_LAB_STANDBY_IDLE_S", 600.0)


def backend() -> str:
    """The Keras backend a trainer started from this environment uses."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def standby_root(runs_root) -> Path:
    return Path(runs_root) / ".standby"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def standbys(runs_root) -> list[dict]:
    """The live standbys: pid, folder, ready (imports done) and claimed flags. Removes dead ones' folders."""
    root = standby_root(runs_root)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not d.is_dir() or not d.name.isdigit():
            continue
        pid = int(d.name)
        if not pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            continue
        state = _read(d / "state.json") or {}
        out.append(
            {
                "pid": pid,
                "dir": d,
                "backend": state.get("backend"),
                "ready": (d / "ready.json").exists(),
                "claimed": (d / "claimed.json").exists(),
                "started": state.get("started"),
            }
        )
    return out


def launch(runs_root, env: dict) -> int:
    """Start a standby process (the caller holds the runs lock) with environment `env`. Returns its pid."""
    require_writable("start a standby trainer")
    root = standby_root(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "vae",
        "standby",
        "--runs-root",
        str(Path(runs_root)),
        "--launcher-pid",
        str(os.getpid()),
    ]
    pid = start_detached(cmd, root / "standby.log", env=env)
    d = root / str(pid)
    d.mkdir(exist_ok=True)
    atomic_write_json(
        d / "state.json", {"pid": pid, "backend": env.get("KERAS_BACKEND", "tensorflow"), "started": time.time()}
    )
    return pid


def _take(d: Path, who: str) -> bool:
    """Create d/claimed.json exclusively; True for the one caller that did."""
    try:
        fd = os.open(d / "claimed.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"by": who, "pid": os.getpid(), "time": time.time()}, f)
    return True


def claim(runs_root) -> dict | None:
    """Reserve a live standby of this environment's backend (ready, or still warming up) for one run.

    Returns it, or None. The caller then writes the run's status and calls `assign`.
    """
    for sb in sorted(standbys(runs_root), key=lambda sb: not sb["ready"]):
        if sb["claimed"] or sb["backend"] != backend():
            continue
        if _take(sb["dir"], "run"):
            return sb
    return None


def assign(sb: dict, run_dir, resume: bool = False) -> None:
    """Give a claimed standby its run."""
    atomic_write_json(sb["dir"] / "job.json", {"run_dir": str(Path(run_dir).resolve()), "resume": bool(resume)})


# -- the standby process ----------------------------------------------------------------------------


def serve(runs_root, launcher_pid: int | None = None) -> int:
    """Body of `python -m vae standby`: import, say ready, wait for a job, train it, exit."""
    require_writable("serve as a standby trainer")  # before runs/.standby/ is created
    me = standby_root(runs_root) / str(os.getpid())
    launcher = launcher_pid or os.getppid()
    me.mkdir(parents=True, exist_ok=True)
    if not (me / "state.json").exists():
        atomic_write_json(me / "state.json", {"pid": os.getpid(), "backend": backend(), "started": time.time()})

    # The slow part, done before saying ready: TensorFlow and Keras (this module is imported by the
    # launcher, which never loads them, so the trainer is imported here, in the standby process).
    load_keras()
    from vae.training import train  # noqa: F401

    atomic_write_json(me / "ready.json", {"pid": os.getpid(), "ready": time.time()})
    since = time.time()
    while not (me / "claimed.json").exists():
        if not me.is_dir():
            return 0  # removed: leave quietly
        if (not pid_alive(launcher) or time.time() - since > idle_limit()) and _take(me, "standby"):
            shutil.rmtree(me, ignore_errors=True)  # leaving (a caller that claimed first wins instead)
            return 0
        time.sleep(POLL_S)
    job = _wait_for_job(me)  # claimed by a caller with a run
    shutil.rmtree(me, ignore_errors=True)
    if job is None:
        return 0  # the caller went away between its claim and its job
    return _run_job(Path(job["run_dir"]), bool(job.get("resume")))


def _wait_for_job(me: Path) -> dict | None:
    deadline = time.time() + CLAIM_WAIT_S
    while time.time() < deadline:
        job = _read(me / "job.json")
        if job is not None:
            return job
        time.sleep(POLL_S)
    return None


def _run_job(run_dir: Path, resume: bool) -> int:
    """Train like `python -m vae train --run-dir --quiet`, with output in the run's trainer.log."""
    log = os.open(run_dir / "trainer.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    from vae.training.train import run_trainer  # imported already (above, in serve)

    return exit_code(run_trainer, run_dir, resume=resume, verbose=False)
