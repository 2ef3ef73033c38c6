"""The run folder: its format, its states, and every rule about them (never imports TensorFlow).

A run folder (README: "Run folder format") holds config.json, status.json,
metrics.jsonl, model.keras, last.keras, snapshots/epoch_NNNN.npz,
tensorboard/, and after `python -m vae evaluate` evaluation.json and
latents.csv. The trainer writes every file atomically, except metrics.jsonl,
which it appends line by line; a reader skips a truncated last line.

This module is the one owner of the format: it writes config.json
(`write_run_config`), reads status, decides when a run whose trainer died or
hung is `failed` (`run_state`), and lists runs. The launcher (vae.jobs.launcher), the
trainer (vae.training.train) and the pages call it.
"""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil

from vae.base.errors import UserError
from vae.base.fileio import atomic_write_json, read_json
from vae.base.safety import require_writable

RUN_FORMAT = "vae-lab-run"
RUN_FORMAT_VERSION = 1

# Run states (status.json "state"), each defined once here: the launcher, the trainer, the CLI and the
# pages read them from this table. `active`: a trainer process is behind it; `error`: shown as an error
# (the trainer exits 1); `resumable`: Resume continues it from last.keras.
STATE_INFO = {
    "waiting": {"active": False, "ended": False, "error": False, "resumable": False,
                "help": "in the queue: its trainer starts when one is free (VAE_LAB_MAX_TRAINERS)"},
    "queued": {"active": True, "error": False, "resumable": False, "help": "its trainer is starting"},
    "running": {"active": True, "error": False, "resumable": False, "help": "training"},
    "finished": {"active": False, "error": False, "resumable": False, "help": "trained every epoch"},
    "stopped": {"active": False, "error": False, "resumable": True, "help": "stopped by request"},
    "failed": {"active": False, "error": True, "resumable": True,
               "help": "its trainer ended with an error, died or hung"},
    "diverged": {"active": False, "error": True, "resumable": False,
                 "help": "the loss became NaN or infinite; the last good model is kept"},
}
STATES = tuple(STATE_INFO)
ACTIVE = tuple(s for s, info in STATE_INFO.items() if info["active"])
ENDED = tuple(s for s, info in STATE_INFO.items() if info.get("ended", not info["active"]))
ERRORS = tuple(s for s, info in STATE_INFO.items() if info["error"])
RESUMABLE = tuple(s for s, info in STATE_INFO.items() if info["resumable"])
WAITING = "waiting"  # a run in the queue: no trainer yet (vae.jobs.launcher starts it when the limit allows)
IN_PROGRESS = (WAITING, *ACTIVE)  # not ended: waiting for a trainer, or with one
STALE_S = 20.0  # heartbeat older than this (trainer writes every 2 s) means the trainer is hung or gone
QUEUED_S = 120.0  # a trainer says `running` within seconds of its start; still `queued` after this: it never started
_SNAPSHOT_RE = re.compile(r"^epoch_(\d{4,})\.npz$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, what: str = "run name") -> str:
    """Refuse names that could escape the data folder or confuse a terminal."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise UserError(f"{what} {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit, and no '..'")
    return name


def write_run_config(run_dir, cfg, dataset_meta: dict | None = None) -> Path:
    """Create the run folder with its config.json (`cfg` is a vae.runs.config.TrainConfig)."""
    run_dir = Path(run_dir)
    require_writable(f"create run {run_dir.name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    doc = {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "config": cfg.to_dict(),
           "dataset": dataset_meta or {}, "created": time.time()}
    atomic_write_json(run_dir / "config.json", doc)
    return run_dir


def _need_run(run_dir) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.json); pick a folder under runs/")
    return run_dir


def read_config(run_dir) -> dict:
    """The whole config.json (keys: format, format_version, config, dataset, versions)."""
    path = _need_run(run_dir) / "config.json"
    try:
        doc = read_json(path)
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {path}: {e}; the run folder is damaged") from None
    if doc.get("format") != RUN_FORMAT:
        raise UserError(f"{path} is not a {RUN_FORMAT} config (format={doc.get('format')!r})")
    version = doc.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise UserError(f"{path} has run format version {version}; this lab reads version {RUN_FORMAT_VERSION}. "
                        "Re-train the run with this version of the lab")
    if not isinstance(doc.get("config"), dict):
        raise UserError(f"{path} has no 'config' section; the run folder is damaged")
    return doc


def read_status(run_dir) -> dict:
    """status.json as written by the trainer; {'state': 'unknown'} if missing or unreadable."""
    path = Path(run_dir) / "status.json"
    try:
        status = read_json(path)
    except FileNotFoundError:
        return {"state": "unknown", "message": "no status.json yet"}
    except (OSError, json.JSONDecodeError) as e:
        return {"state": "unknown", "message": f"status.json unreadable: {e}"}
    return status if isinstance(status, dict) else {"state": "unknown", "message": "status.json is not an object"}


def pid_alive(pid) -> bool:
    """True while process `pid` exists and has not exited (a zombie, not yet reaped, is not alive)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def run_state(run_dir) -> dict:
    """status.json, corrected for a trainer that died or hung without saying so."""
    status = read_status(run_dir)
    state = status.get("state")
    if state in ACTIVE:
        pid = status.get("pid")
        age = time.time() - float(status.get("heartbeat", 0) or 0)
        if not pid_alive(pid):
            status = {**status, "state": "failed",
                      "message": f"the trainer process (pid {pid}) ended without finishing "
                                 f"(last heartbeat {age:.0f} s ago); resume it to continue from its last epoch"}
        elif state == "running" and age > STALE_S:
            status = {**status, "state": "failed",
                      "message": f"the trainer (pid {pid}) has not reported for {age:.0f} s; it looks hung"}
        elif state == "queued" and age > QUEUED_S:
            status = {**status, "state": "failed",
                      "message": f"the trainer (pid {pid}) has not started in {age:.0f} s; see trainer.log in the "
                                 "run folder, then resume or start the run again"}
    elif state == WAITING and status.get("driver_pid") is not None and not pid_alive(status.get("driver_pid")):
        # a sweep's run waiting for a Ray worker whose driver is gone (resume the sweep)
        status = {**status, "state": "failed",
                  "message": f"the sweep driver (pid {status.get('driver_pid')}) ended before this run started "
                             "again; resume the sweep to continue it"}
    return status


def list_runs(runs_root, states: tuple[str, ...] | None = None) -> list[dict]:
    """Every run folder under runs_root, newest first, with state, settings and final metrics.

    With `states`, only the runs in those states; the others cost one status read, not a config
    and metrics read (the dashboard asks for the active runs on every page run).
    """
    root = Path(runs_root)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if not d.is_dir() or d.name.startswith(".") or not (d / "config.json").exists():
            continue
        st = run_state(d)
        if states is not None and st.get("state") not in states:
            continue
        try:
            doc = read_config(d)
        except UserError as e:
            if states is None:  # a damaged folder is in no run state
                out.append({"name": d.name, "path": str(d), "state": "damaged", "message": str(e), "config": {},
                            "final": {}, "created": d.stat().st_mtime})
            continue
        out.append({"name": d.name, "path": str(d), "state": st.get("state"), "message": st.get("message", ""),
                    "epoch": st.get("epoch"), "status": st, "config": doc["config"], "dataset": doc.get("dataset", {}),
                    "final": final_metrics(d), "created": doc.get("created", d.stat().st_mtime)})
    return sorted(out, key=lambda r: r["created"], reverse=True)


def active_runs(runs_root) -> list[dict]:
    return list_runs(runs_root, states=ACTIVE)


def refuse_if_trained_elsewhere(run_dir, pid: int | None = None) -> None:
    """Two trainers on one run folder would interleave its files: refuse a second one (`pid`: the caller's
    trainer process, default this one)."""
    st = run_state(run_dir)
    if st.get("state") in ACTIVE and st.get("pid") not in (None, pid or os.getpid()):
        raise UserError(f"run {Path(run_dir).name} is already {st['state']} in another trainer "
                        f"(pid {st['pid']}); stop it first or wait for it to end")


def read_metrics(run_dir, kind: str | None = None) -> list[dict]:
    """Every metrics line, oldest first; `kind` = 'batch' or 'epoch' filters.

    A line that does not parse (the trainer was killed mid-write, or someone
    edited the file) is skipped.
    """
    path = Path(run_dir) / "metrics.jsonl"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and (kind is None or row.get("kind") == kind):
            rows.append(row)
    return rows


def list_snapshots(run_dir) -> list[int]:
    """Epochs that have a snapshot, ascending."""
    folder = Path(run_dir) / "snapshots"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _SNAPSHOT_RE.match(p.name)))


def snapshot_path(run_dir, epoch: int) -> Path:
    return Path(run_dir) / "snapshots" / f"epoch_{int(epoch):04d}.npz"


def load_snapshot(run_dir, epoch: int | None = None) -> dict[str, np.ndarray]:
    """Arrays of one epoch's snapshot (the latest if epoch is None)."""
    epochs = list_snapshots(run_dir)
    if not epochs:
        raise UserError(f"run {Path(run_dir).name} has no snapshots yet; wait for its first epoch to end")
    epoch = epochs[-1] if epoch is None else int(epoch)
    path = snapshot_path(run_dir, epoch)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UserError(f"run {Path(run_dir).name} has no snapshot for epoch {epoch}; "
                        f"available: {', '.join(map(str, epochs))}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if "allow_pickle" in str(e):
            raise UserError(f"snapshot {path} holds Python objects (pickle), which the lab never loads; "
                            "it was not written by the lab") from None
        raise UserError(f"snapshot {path} is damaged ({e})") from None


def final_metrics(run_dir) -> dict:
    """The last epoch line of metrics.jsonl ({} if none); reads only the file's tail."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    for line in reversed(tail.splitlines()):
        if '"epoch"' not in line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("kind") == "epoch":
            return row
    if size > 65536:  # no epoch line in the tail: fall back to the whole file
        rows = read_metrics(run_dir, "epoch")
        return rows[-1] if rows else {}
    return {}


def read_evaluation(run_dir) -> dict | None:
    path = Path(run_dir) / "evaluation.json"
    try:
        return read_json(path)
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None
