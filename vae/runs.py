"""Reading a run folder (never imports TensorFlow).

A run folder (README: "Run folder format") holds config.json, status.json,
metrics.jsonl, model.keras, last.keras, snapshots/epoch_NNNN.npz,
tensorboard/, and after `python -m vae evaluate` evaluation.json and
latents.csv. The trainer writes every file atomically, except metrics.jsonl,
which it appends line by line; a reader skips a truncated last line.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from .errors import UserError
from .fileio import read_json

RUN_FORMAT = "vae-lab-run"
RUN_FORMAT_VERSION = 1
STATES = ("queued", "running", "finished", "stopped", "failed", "diverged")
_SNAPSHOT_RE = re.compile(r"^epoch_(\d{4,})\.npz$")


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
