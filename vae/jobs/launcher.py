"""Launching, stopping and watching trainer processes (never imports TensorFlow).

Each run trains in its own OS process (`python -m vae train --run-dir R`,
`start_new_session=True`), so a Streamlit rerun, a second tab or a server
restart never touches it (with the dashboard, often a warm standby process that
has already imported TensorFlow: `ensure_standby`, vae.jobs.standby). All state lives
in the run folder, whose format and rules (`run_state`: a trainer that died or
hung is reported as `failed`) belong to vae.runs.folder; this module only starts,
stops and watches the processes.

`start_run` holds a lock on the runs folder while it checks and creates, so two
clicks, two tabs or two users cannot start duplicates: an identical request
made within DEDUP_S seconds returns the run already started, and at most
`max_trainers()` trainers run at once (env VAE_LAB_MAX_TRAINERS, default 1).
"""

from __future__ import annotations

import fcntl
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from vae.base import safety
from vae.base.errors import UserError
from vae.base.fileio import atomic_write_json
from vae.base.paths import child_env, start_detached
from vae.base.safety import readonly, require_run_space, require_writable
from vae.data.datasets import load_dataset
from vae.jobs import standby
from vae.runs.config import TrainConfig

# The run folder's rules live in vae.runs.folder; these names stay importable from here for older callers.
from vae.runs.folder import (
    ACTIVE,
    ENDED,
    IN_PROGRESS,
    QUEUED_S,  # noqa: F401
    STALE_S,  # noqa: F401
    WAITING,
    active_runs,  # noqa: F401
    check_name,
    list_runs,
    read_config,
    run_state,
    write_run_config,
)

DEDUP_S = 30.0


def max_trainers() -> int:
    return safety.env_number("VAE_LAB_MAX_TRAINERS", 1, integer=True, maximum=1024)


@contextmanager
def _locked(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _default_name(cfg: TrainConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # the method first: runs of different methods tell apart in every list (its name is not cut at 100)
    tail = f"-{cfg.method or 'beta-vae'}-{cfg.arch}-b{cfg.beta:g}-g{cfg.gamma:g}-s{cfg.seed}-{stamp}"
    return Path(cfg.dataset).name[: max(1, 100 - len(tail))] + tail


def _train_command(run_dir: Path, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "vae", "train", "--run-dir", str(run_dir)]
    return cmd + (["--resume"] if resume else [])


def _spawn(run_dir: Path, resume: bool = False) -> int:
    return start_detached(_train_command(run_dir, resume), run_dir / "trainer.log")


def _launch_trainer(root: Path, run_dir: Path, status: dict, resume: bool = False) -> int:
    """Start the run's trainer and write its `queued` status; returns the trainer's pid.

    A warm standby (vae.jobs.standby) is used when there is one (ready, or still importing: the run then
    waits for the rest of its imports); its status is written before it gets the job, since it
    starts at once and a later `queued` would replace its `running`.
    """

    def queued(pid: int) -> int:
        atomic_write_json(run_dir / "status.json", {**status, "pid": pid, "heartbeat": time.time()})
        return pid

    sb = standby.claim(root) if standby.enabled() else None
    if sb is None:
        return queued(_spawn(run_dir, resume))
    queued(sb["pid"])
    standby.assign(sb, run_dir, resume)
    return sb["pid"]


def ensure_standby(runs_root) -> int | None:
    """Keep one warm trainer waiting while no run trains (the dashboard calls this on each page run).

    Nothing is started when standbys are off (VAE_LAB_STANDBY=0), when one exists already, or when
    the trainer limit is reached (a standby could not be used, and its imports would slow the run).
    Returns the pid of the standby started, or None.
    """
    if not standby.enabled() or readonly():
        return None
    root = Path(runs_root).resolve()
    with _locked(root):
        if standby.standbys(root) or len(active_runs(root)) >= max_trainers():
            return None
        return standby.launch(root, child_env())


def start_run(cfg: TrainConfig, runs_root="runs", name: str | None = None) -> Path:
    """Validate, create the run folder and launch its trainer. Returns the run folder.

    An identical config submitted within DEDUP_S seconds of an active run
    returns that run instead of starting a second one.
    """
    require_writable("start a training run")
    cfg.dataset = str(Path(cfg.dataset).resolve())  # the trainer runs in another working directory
    ds = load_dataset(cfg.dataset)
    cfg.validate(train_size=len(ds.indices("train")))
    if ds.image_size != cfg.image_size:
        raise UserError(
            f"image_size {cfg.image_size} does not match dataset {Path(cfg.dataset).name} "
            f"({ds.image_size}x{ds.image_size})"
        )
    root = Path(runs_root).resolve()
    name = check_name(name) if name else _default_name(cfg)
    require_run_space(cfg, ds.meta.get("counts") or {}, root / name)
    with _locked(root):
        pending = list_runs(root, states=IN_PROGRESS)
        for run in pending:
            if run["config"] == cfg.to_dict() and time.time() - float(run["created"]) < DEDUP_S:
                return Path(run["path"])
        run_dir = root / name
        if run_dir.exists():
            raise UserError(f"a run named {name!r} already exists; choose another name")
        write_run_config(
            run_dir,
            cfg,
            {"path": str(Path(cfg.dataset).resolve()), "name": Path(cfg.dataset).name, "family": ds.meta.get("family")},
        )
        status = {"state": "queued", "message": "starting the trainer", "epoch": 0, "epochs": cfg.epochs}
        if _busy(pending):
            _enqueue(run_dir, status)
            _start_waiting(root)  # a queue nobody served (its trainers were killed) moves on now
        else:
            _launch_trainer(root, run_dir, status)
    return run_dir


# ---- the queue: a Start (or Resume) while every trainer is busy waits its turn ----------------------


def _busy(pending: list[dict]) -> bool:
    """True when a new run must wait: every trainer is taken, or runs queued earlier wait already."""
    return sum(r["state"] in ACTIVE for r in pending) >= max_trainers() or any(r["state"] == WAITING for r in pending)


def _enqueue(run_dir: Path, status: dict, resume: bool = False) -> None:
    atomic_write_json(
        run_dir / "status.json",
        {
            **status,
            "state": WAITING,
            "pid": None,
            "resume": resume,
            "queued_at": time.time(),
            "message": f"waiting for a free trainer (at most {max_trainers()} at a time: VAE_LAB_MAX_TRAINERS)",
        },
    )


def queue(runs_root, pending: list[dict] | None = None) -> list[dict]:
    """The waiting runs in the order they will start (first requested first), as list_runs rows
    (from `pending`, a list_runs of the runs in progress, when the caller has one)."""
    rows = list_runs(runs_root, states=(WAITING,)) if pending is None else pending
    return sorted(
        (r for r in rows if r["state"] == WAITING), key=lambda r: (float(r["status"].get("queued_at") or 0), r["name"])
    )


def start_waiting(runs_root) -> list[Path]:
    """Start waiting runs, oldest first, while trainers are free. Returns the runs started.

    Called by every trainer process when it ends (vae.cli) and by the dashboard on each page run;
    the runs folder's lock makes the count of free trainers and the hand-over one step, so a
    waiting run is started once, whoever calls. A run that no longer fits on the disk fails with
    the disk guard's message, and the next one is tried.
    """
    root = Path(runs_root).resolve()
    if readonly() or not root.is_dir() or not queue(root):  # the common case: nothing waits, no lock taken
        return []
    with _locked(root):
        return _start_waiting(root)


def _start_waiting(root: Path) -> list[Path]:
    """start_waiting's work; the caller holds the lock."""
    started = []
    pending = list_runs(root, states=IN_PROGRESS)
    free = max_trainers() - sum(r["state"] in ACTIVE for r in pending)
    for run in queue(root, pending):
        if free <= 0:
            break
        run_dir, st = Path(run["path"]), run["status"]
        try:
            cfg = TrainConfig.from_dict(run["config"])
            done = int(st.get("epoch") or 0) if st.get("resume") else 0
            require_run_space(cfg, _dataset_counts(cfg.dataset), run_dir, epochs=cfg.epochs - done)
        except UserError as e:
            atomic_write_json(run_dir / "status.json", {**st, "state": "failed", "message": str(e)})
            continue
        resume = bool(st.get("resume"))
        _launch_trainer(
            root,
            run_dir,
            {**st, "state": "queued", "queued_at": None, "message": "resuming" if resume else "starting the trainer"},
            resume=resume,
        )
        started.append(run_dir)
        free -= 1
    return started


def _dataset_counts(path) -> dict:
    """Images per split of a dataset ({} when it cannot be read: the trainer then says why)."""
    try:
        return dict(load_dataset(path).meta.get("counts") or {})
    except UserError:
        return {}


def resume_run(run_dir, runs_root=None) -> Path:
    """Continue a failed or stopped run from its last completed epoch (last.keras)."""
    run_dir = Path(run_dir)
    require_writable(f"resume run {run_dir.name}")
    doc = read_config(run_dir)
    root = Path(runs_root) if runs_root else run_dir.parent
    with _locked(root):
        st = run_state(run_dir)
        if st.get("state") in IN_PROGRESS:
            raise UserError(f"run {run_dir.name} is still {st['state']}; it cannot be resumed twice")
        if not (run_dir / "last.keras").exists():
            raise UserError(
                f"run {run_dir.name} has no checkpoint (last.keras) yet: it ended before its first "
                "epoch finished; start a new run instead"
            )
        cfg = TrainConfig.from_dict(doc["config"])
        require_run_space(cfg, _dataset_counts(cfg.dataset), run_dir, epochs=cfg.epochs - int(st.get("epoch") or 0))
        (run_dir / "stop").unlink(missing_ok=True)
        if _busy(list_runs(root, states=IN_PROGRESS)):
            _enqueue(run_dir, st, resume=True)
            _start_waiting(root)
        else:
            _launch_trainer(root, run_dir, {**st, "state": "queued", "message": "resuming"}, resume=True)
    return run_dir


def request_stop(run_dir) -> None:
    """Ask the trainer to stop after its current batch (it keeps the best model); a waiting run leaves the queue."""
    run_dir = Path(run_dir)
    require_writable(f"stop run {run_dir.name}")
    read_config(run_dir)
    with _locked(run_dir.parent):
        st = run_state(run_dir)
        if st.get("state") == WAITING:
            atomic_write_json(
                run_dir / "status.json",
                {**st, "state": "stopped", "queued_at": None, "message": "taken out of the queue before it started"},
            )
            return
    atomic_write_json(run_dir / "stop", {"requested": time.time()})


def wait_for(run_dir, states=ENDED, timeout: float = 600.0, poll: float = 0.5) -> dict:
    """Block until the run reaches one of `states` (for scripts and tests)."""
    deadline = time.time() + timeout
    while True:
        st = run_state(run_dir)
        if st.get("state") in states:
            return st
        if time.time() > deadline:
            raise TimeoutError(f"run {run_dir} still {st.get('state')} after {timeout} s")
        time.sleep(poll)
