"""The run folder: its format, its states, and every rule about them (never imports TensorFlow).

A run folder (docs/formats.md, "Run folder format") holds config.json, status.json,
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
from vae.base.paths import data_root
from vae.base.safety import require_writable
from vae.runs.config import check_config_types

RUN_FORMAT = "vae-lab-run"
RUN_FORMAT_VERSION = 1

# Run states (status.json "state"), each defined once here: the launcher, the trainer, the CLI and the
# pages read them from this table. `active`: a trainer process is behind it; `error`: shown as an error
# (the trainer exits 1); `resumable`: Resume continues it from last.keras.
STATE_INFO = {
    "waiting": {
        "active": False,
        "ended": False,
        "error": False,
        "resumable": False,
        "help": "in the queue: its trainer starts when one is free (VAE_LAB_MAX_TRAINERS)",
    },
    "queued": {"active": True, "error": False, "resumable": False, "help": "its trainer is starting"},
    "running": {"active": True, "error": False, "resumable": False, "help": "training"},
    "finished": {"active": False, "error": False, "resumable": False, "help": "trained every epoch"},
    "stopped": {"active": False, "error": False, "resumable": True, "help": "stopped by request"},
    "failed": {
        "active": False,
        "error": True,
        "resumable": True,
        "help": "its trainer ended with an error, died or hung",
    },
    "diverged": {
        "active": False,
        "error": True,
        "resumable": False,
        "help": "the loss became NaN or infinite; the last good model is kept",
    },
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
DAMAGED = "damaged"  # a run whose config.json or status.json cannot be used: listed with the reason; not in STATES
_SNAPSHOT_RE = re.compile(r"^epoch_(\d{4,})\.npz$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, what: str = "run name") -> str:
    """Refuse names that could escape the data folder or confuse a terminal."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise UserError(
            f"{what} {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'"
        )
    return name


def write_run_config(run_dir, cfg, dataset_meta: dict | None = None) -> Path:
    """Create the run folder with its config.json (`cfg` is a vae.runs.config.TrainConfig)."""
    run_dir = Path(run_dir)
    require_writable(f"create run {run_dir.name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "config": cfg.to_dict(),
        "dataset": dataset_meta or {},
        "created": time.time(),
    }
    atomic_write_json(run_dir / "config.json", doc)
    return run_dir


def _need_run(run_dir) -> Path:
    run_dir = Path(run_dir)
    if (run_dir / "config.json").is_dir():
        raise UserError(f"{run_dir / 'config.json'} is a folder, not a file; the run folder is damaged")
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.json); pick a folder under runs/")
    return run_dir


def _read_json_file(path: Path, what: str):
    """A JSON file's value; UserError (one line) for a file that is not readable JSON. FileNotFoundError passes."""
    try:
        return read_json(path)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a file; {what} is damaged") from None
    except (OSError, ValueError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
        empty = isinstance(e, json.JSONDecodeError) and not e.doc.strip()
        reason = "it is empty" if empty else (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"cannot read {path}: {reason}; {what} is damaged") from None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_config(run_dir) -> dict:
    """The whole config.json (keys: format, format_version, config, dataset, versions, created), checked.

    Every setting has its type, `created` is a number, and `config["dataset"]` is the dataset's
    absolute path (an old run's relative path is resolved: `resolve_dataset`). Anything else is a
    UserError saying what is wrong: the run folder is damaged.
    """
    path = _need_run(run_dir) / "config.json"
    doc = _read_json_file(path, "the run folder")
    if not isinstance(doc, dict):
        raise UserError(f"{path} holds {type(doc).__name__}, not a JSON object; the run folder is damaged")
    if doc.get("format") != RUN_FORMAT:
        raise UserError(f"{path} is not a {RUN_FORMAT} config (format={doc.get('format')!r})")
    version = doc.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise UserError(
            f"{path} has run format version {version}; this lab reads version {RUN_FORMAT_VERSION}. "
            "Re-train the run with this version of the lab"
        )
    if not isinstance(doc.get("config"), dict):
        raise UserError(f"{path} has no 'config' section; the run folder is damaged")
    problem = check_config_types(doc["config"])
    if not problem and (not isinstance(doc["config"].get("dataset"), str) or not doc["config"]["dataset"]):
        problem = "it names no dataset"
    if not problem and "created" in doc and not _is_number(doc["created"]):
        problem = f"'created' must be a number (unix time), got {doc['created']!r}"[:200]
    if not problem and not isinstance(doc.get("dataset", {}), dict):
        problem = f"'dataset' must be a JSON object, got {type(doc['dataset']).__name__}"
    if problem:
        raise UserError(f"{path}: {problem}; the run folder is damaged")
    doc["config"] = {
        **doc["config"],
        "dataset": resolve_dataset(doc["config"]["dataset"], path.parent, (doc.get("dataset") or {}).get("path")),
    }
    return doc


def resolve_dataset(dataset: str, run_dir, recorded=None) -> str:
    """The absolute path of a run's dataset. New runs store it absolute; an old run's relative path
    (`python -m vae train --data datasets/x` from some folder) is tried against the path its trainer
    recorded (`recorded`, config.json's dataset.path), the data root ($VAE_LAB_HOME), the data root
    the run folder lies in (runs/NAME/../..) and the run folder: the first that holds a dataset.json
    wins (else the data root's)."""
    p = Path(dataset).expanduser()
    if p.is_absolute():
        return str(p)
    run_dir = Path(run_dir).absolute()
    first = (
        [Path(recorded)]
        if isinstance(recorded, str) and Path(recorded).is_absolute() and Path(recorded).name == p.name
        else []
    )
    others = [data_root() / p, run_dir.parent.parent / p, run_dir / p]
    for c in first + others:
        if (c / "dataset.json").is_file():
            return os.path.normpath(c)
    return os.path.normpath(others[0])


_STATUS_TYPES = {
    "state": (str,),
    "message": (str,),
    "pid": (int, type(None)),
    "heartbeat": "number",
    "started": "number",
    "updated": "number",
    "queued_at": "number",
    "epoch": (int, type(None)),
    "epochs": (int, type(None)),
    "step": (int, type(None)),
    "steps_per_epoch": (int, type(None)),
}


def field_problem(doc: dict, types: dict) -> str | None:
    """The first field of `doc` whose value has the wrong type, in words (None if all are right).
    `types`: {key: tuple of types, or "number" (int or float, or null)}; absent keys are fine."""
    for key, allowed in types.items():
        if key not in doc:
            continue
        v = doc[key]
        if allowed == "number":
            ok, want = v is None or _is_number(v), "a number"
        else:
            ok = isinstance(v, allowed) and not (isinstance(v, bool) and bool not in allowed)
            want = " or ".join(
                {
                    "NoneType": "null",
                    "str": "text",
                    "int": "a whole number",
                    "dict": "an object",
                    "list": "a list",
                    "float": "a number",
                }.get(t.__name__, t.__name__)
                for t in allowed
            )
        if not ok:
            return f"{key!r} must be {want}, got {v!r}"[:200]
    return None


def read_status(run_dir) -> dict:
    """status.json as written by the trainer, checked: {'state': 'unknown'} if missing, and
    {'state': 'damaged', 'message': why} if it is not a status object with the right types."""
    path = Path(run_dir) / "status.json"
    try:
        status = _read_json_file(path, "the run's status")
    except FileNotFoundError:
        return {"state": "unknown", "message": "no status.json yet"}
    except UserError as e:
        return {"state": DAMAGED, "message": str(e)}
    if not isinstance(status, dict):
        return {
            "state": DAMAGED,
            "message": f"{path} holds {type(status).__name__}, not a JSON object; the run's status is damaged",
        }
    problem = field_problem(status, _STATUS_TYPES)
    if problem:
        return {"state": DAMAGED, "message": f"{path}: {problem}; the run's status is damaged"}
    return status


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
            status = {
                **status,
                "state": "failed",
                "message": f"the trainer process (pid {pid}) ended without finishing "
                f"(last heartbeat {age:.0f} s ago); resume it to continue from its last epoch",
            }
        elif state == "running" and age > STALE_S:
            status = {
                **status,
                "state": "failed",
                "message": f"the trainer (pid {pid}) has not reported for {age:.0f} s; it looks hung",
            }
        elif state == "queued" and age > QUEUED_S:
            status = {
                **status,
                "state": "failed",
                "message": f"the trainer (pid {pid}) has not started in {age:.0f} s; see trainer.log in the "
                "run folder, then resume or start the run again",
            }
    elif state == WAITING and status.get("driver_pid") is not None and not pid_alive(status.get("driver_pid")):
        # a sweep's run waiting for a Ray worker whose driver is gone (resume the sweep)
        status = {
            **status,
            "state": "failed",
            "message": f"the sweep driver (pid {status.get('driver_pid')}) ended before this run started "
            "again; resume the sweep to continue it",
        }
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
                out.append(
                    {
                        "name": d.name,
                        "path": str(d),
                        "state": DAMAGED,
                        "message": str(e),
                        "config": {},
                        "final": {},
                        "created": d.stat().st_mtime,
                    }
                )
            continue
        out.append(
            {
                "name": d.name,
                "path": str(d),
                "state": st.get("state"),
                "message": st.get("message", ""),
                "epoch": st.get("epoch"),
                "status": st,
                "config": doc["config"],
                "dataset": doc.get("dataset", {}),
                "final": final_metrics(d),
                "created": doc.get("created", d.stat().st_mtime),
            }
        )
    return sorted(out, key=lambda r: r["created"], reverse=True)


def active_runs(runs_root) -> list[dict]:
    return list_runs(runs_root, states=ACTIVE)


def refuse_if_trained_elsewhere(run_dir, pid: int | None = None) -> None:
    """Two trainers on one run folder would interleave its files: refuse a second one (`pid`: the caller's
    trainer process, default this one)."""
    st = run_state(run_dir)
    if st.get("state") in ACTIVE and st.get("pid") not in (None, pid or os.getpid()):
        raise UserError(
            f"run {Path(run_dir).name} is already {st['state']} in another trainer "
            f"(pid {st['pid']}); stop it first or wait for it to end"
        )


TEXT_KEYS = ("setting", "reason", "codes", "uses", "note", "error")  # keys (or parts of keys) whose values are words


def _text_key(key: str) -> bool:
    return any(t in key for t in TEXT_KEYS)


def metrics_row(row):
    """A metrics.jsonl line as a row the pages can trust, or None: a JSON object whose `kind` is text,
    whose `epoch`, `step` and `global_step` are whole numbers, and whose other values are numbers, true/
    false or null (text where the key says words: `pca_alignment_reason`, `alignment_codes`); a value
    of another type is dropped from the row (someone edited the file)."""
    if not isinstance(row, dict) or not isinstance(row.get("kind"), str):
        return None
    for key in ("epoch", "step", "global_step"):
        if key in row and (not isinstance(row[key], int) or isinstance(row[key], bool)):
            return None
    return {
        k: v
        for k, v in row.items()
        if k == "kind" or v is None or isinstance(v, (int, float)) or (isinstance(v, str) and _text_key(k))
    }


def read_metrics(run_dir, kind: str | None = None) -> list[dict]:
    """Every metrics line, oldest first; `kind` = 'batch' or 'epoch' filters.

    A line that does not parse (the trainer was killed mid-write, or someone
    edited the file) is skipped, and so is a line of the wrong shape (`metrics_row`).
    """
    path = Path(run_dir) / "metrics.jsonl"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return []
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = metrics_row(json.loads(line))
        except (json.JSONDecodeError, RecursionError):
            continue
        if row is not None and (kind is None or row.get("kind") == kind):
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


def _check_snapshot(path: Path, arrays: dict) -> dict:
    """A snapshot's arrays, checked: `recon` (N, H, W) numbers with N `recon_index` ids, and per split
    `mu_<split>` (n, d) numbers with n `index_<split>` ids, one d for all; `mu_train` is there."""

    def bad(why: str):
        raise UserError(f"snapshot {path} is damaged ({why}); it was not written whole by the lab")

    def numeric(name: str, ndim: int, kinds: str = "iuf"):
        a = arrays.get(name)
        if a is None:
            bad(f"no {name} array")
        if a.dtype.kind not in kinds or a.ndim != ndim:
            bad(f"{name} holds {a.dtype} {a.shape}, expected a {ndim}-D array of numbers")
        return a

    recon, recon_index = numeric("recon", 3), numeric("recon_index", 1, "iu")
    if len(recon) != len(recon_index):
        bad(f"{len(recon)} reconstructions for {len(recon_index)} ids")
    numeric("mu_train", 2)
    dims = set()
    for key in [k for k in arrays if k.startswith("mu_")]:
        mu, ids = numeric(key, 2), numeric("index_" + key[3:], 1, "iu")
        if len(mu) != len(ids):
            bad(f"{key} has {len(mu)} codes for {len(ids)} ids")
        dims.add(mu.shape[1])
    if len(dims) != 1 or not dims or 0 in dims:
        bad(f"the splits' codes have {sorted(dims)} dimensions")
    return arrays


def load_snapshot(run_dir, epoch: int | None = None) -> dict[str, np.ndarray]:
    """Arrays of one epoch's snapshot (the latest if epoch is None), checked (UserError if damaged)."""
    epochs = list_snapshots(run_dir)
    if not epochs:
        raise UserError(f"run {Path(run_dir).name} has no snapshots yet; wait for its first epoch to end")
    epoch = epochs[-1] if epoch is None else int(epoch)
    path = snapshot_path(run_dir, epoch)
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # random bytes would otherwise read as a (refused) pickle
                raise ValueError("not an .npz archive: empty, cut short at its start, or overwritten")
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an .npz archive")
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UserError(
            f"run {Path(run_dir).name} has no snapshot for epoch {epoch}; available: {', '.join(map(str, epochs))}"
        ) from None
    except IsADirectoryError:
        raise UserError(f"snapshot {path} is a folder, not a file; the run folder is damaged") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        if "allow_pickle" in str(e):
            raise UserError(
                f"snapshot {path} holds Python objects (pickle), which the lab never loads; "
                "it was not written by the lab"
            ) from None
        raise UserError(
            f"snapshot {path} is damaged ({(str(e).splitlines() or [type(e).__name__])[0][:200]})"
        ) from None
    return _check_snapshot(path, arrays)


def final_metrics(run_dir) -> dict:
    """The last epoch line of metrics.jsonl ({} if none); reads only the file's tail."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read().decode("utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return {}
    for line in reversed(tail.splitlines()):
        if '"epoch"' not in line:
            continue
        try:
            row = metrics_row(json.loads(line))
        except (json.JSONDecodeError, RecursionError):
            continue
        if row is not None and row.get("kind") == "epoch":
            return row
    if size > 65536:  # no epoch line in the tail: fall back to the whole file
        rows = read_metrics(run_dir, "epoch")
        return rows[-1] if rows else {}
    return {}


def _matrix_problem(value, name: str) -> str | None:
    """Why `value` is not a rectangular 2-D matrix of numbers (None if it is, or absent)."""
    if value is None:
        return None
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return f"{name} is not a matrix of numbers"
    return None if a.ndim == 2 else f"{name} is not a 2-D matrix of numbers"


def _evaluation_problem(doc) -> str | None:
    """What makes an evaluation.json unusable by the pages (None if nothing)."""
    if not isinstance(doc, dict):
        return f"it holds {type(doc).__name__}, not a JSON object"
    summary = doc.get("summary", {})
    if not isinstance(summary, dict):
        return f"its summary is {type(summary).__name__}, not a JSON object"
    for key, v in summary.items():
        words = isinstance(v, str) and _text_key(key)
        if not (v is None or isinstance(v, (int, float, dict, list)) or words):
            return f"summary {key!r} must be a number, got {v!r}"[:200]
    metrics = doc.get("metrics", {})
    if not isinstance(metrics, dict):
        return f"its metrics are {type(metrics).__name__}, not a JSON object"
    for name, m in metrics.items():  # a metric's block; beside them "format", "total_correlation" and the like
        if not (m is None or isinstance(m, (dict, int, float, str))):
            return f"metric {name!r} is {type(m).__name__}, not a JSON object or a number"
    mig, dci = metrics.get("mig", {}), metrics.get("dci", {})
    if not isinstance(mig, dict) or not isinstance(dci, dict):
        return "its mig or dci block is not a JSON object"
    per_factor = mig.get("per_factor")
    if per_factor is not None and not (isinstance(per_factor, list) and all(_is_number(x) for x in per_factor)):
        return "mig per_factor is not a list of numbers"
    fa = doc.get("factor_alignment")
    if fa is not None and not isinstance(fa, dict):
        return "factor_alignment is not a JSON object"
    fa = fa or {}
    problem = (
        _matrix_problem(mig.get("mutual_info"), "mig mutual_info")
        or _matrix_problem(dci.get("importance_matrix"), "dci importance_matrix")
        or _matrix_problem(fa.get("abs_cos"), "factor_alignment abs_cos")
    )
    if problem:
        return problem
    for key in ("assigned_axis", "angles_deg", "r2", "per_factor"):
        v = fa.get(key)
        if v is not None and not (isinstance(v, list) and all(x is None or _is_number(x) for x in v)):
            return f"factor_alignment {key} is not a list of numbers"
    if fa.get("score") is not None and not _is_number(fa.get("score")):
        return f"factor_alignment score must be a number, got {fa.get('score')!r}"[:200]
    names = doc.get("factor_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return "factor_names is not a list of names"
    return None


def read_evaluation(run_dir) -> dict | None:
    """evaluation.json, checked: None if the run was never evaluated; UserError if the file is damaged."""
    path = Path(run_dir) / "evaluation.json"
    try:
        doc = _read_json_file(path, "the evaluation")
    except FileNotFoundError:
        return None
    problem = _evaluation_problem(doc)
    if problem:
        raise UserError(f"{path}: {problem}; the evaluation is damaged: evaluate the run again")
    return doc


def evaluation_summary(run_dir) -> dict | None:
    """evaluation.json's summary (None when there is none, or the file is damaged: the page that opens
    the run says why)."""
    try:
        return (read_evaluation(run_dir) or {}).get("summary")
    except UserError:
        return None
