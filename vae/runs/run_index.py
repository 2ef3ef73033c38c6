"""An index of run summaries, so a page lists hundreds of runs without reading every run's files.

`list_runs()` returns the same rows as `vae.runs.folder.list_runs` (name, path, state, message, epoch,
status, config, dataset, final, created) plus `evaluation` (evaluation.json's summary, or None), `evaluation_notes` (its notes, {}),
`val_losses` (the per-epoch validation losses, for the convergence flag)
and `sweep` (the sweep's name for a run under sweeps/NAME/runs/, whose `name` is then
"NAME/RUN"). It covers $VAE_LAB_HOME/runs and every sweep's runs.

Each run's entry is kept with the modification times and sizes of its config.json, status.json,
metrics.jsonl and evaluation.json; a call only `stat`s those files and re-reads a run whose
fingerprint changed (a trainer rewrites status.json every 2 s, so a training run is always fresh).
A run whose status says waiting, queued or running is always re-checked with `runs.run_state`, which
notices a trainer that died without saying so. The entries live in this process and in
`.index.json` beside the runs (written atomically; a server that starts later reads it instead
of every run folder; a read-only viewer keeps it in memory only). The file is a cache: deleting it only
costs one slower listing.

It also reads a sweep's status.json (`read_sweep_status`, `sweep_state`: vae.sweeps.sweep uses them), so the
delete guard (vae.jobs.deletes, below the sweeps package) can tell a sweep that will still train its runs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from vae.base.errors import UserError
from vae.base.fileio import atomic_write_text, read_json
from vae.base.paths import runs_root as default_runs_root
from vae.base.paths import sweeps_root as default_sweeps_root
from vae.base.safety import readonly
from vae.runs.folder import (
    DAMAGED,
    IN_PROGRESS,
    field_problem,
    final_metrics,
    pid_alive,
    read_config,
    read_evaluation,
    read_metrics,
    read_status,
    run_state,
)

INDEX_FILE = ".index.json"
INDEX_VERSION = 3  # 2: rows of checked configs (absolute dataset paths, numeric `created`); 3: evaluation_notes and
#                    val_losses in each row; older files are rebuilt
WATCHED = ("config.json", "status.json", "metrics.jsonl", "evaluation.json")
_CACHE: dict[str, dict] = {}  # index file path -> {run path: entry}
_LOCK = threading.Lock()


def _fingerprint(run_dir: Path) -> list | None:
    out = []
    for name in WATCHED:
        try:
            s = os.stat(run_dir / name)
            out.append([s.st_mtime_ns, s.st_size])
        except FileNotFoundError:
            if name == "config.json":
                return None
            out.append(None)
    return out


def _summary(run_dir: Path, name: str, sweep: str | None) -> dict:
    status = read_status(run_dir)
    try:
        doc = read_config(run_dir)
    except UserError as e:
        return {
            "name": name,
            "path": str(run_dir),
            "state": DAMAGED,
            "message": str(e),
            "config": {},
            "final": {},
            "created": run_dir.stat().st_mtime,
            "sweep": sweep,
            "evaluation": None,
            "status": status,
            "evaluation_notes": {},
            "val_losses": [],
        }
    try:
        evaluation = read_evaluation(run_dir)
    except UserError:  # damaged: the page that opens the run says why
        evaluation = None
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    notes = evaluation.get("notes")
    return {
        "name": name,
        "path": str(run_dir),
        "state": status.get("state"),
        "message": status.get("message", ""),
        "epoch": status.get("epoch"),
        "status": status,
        "config": doc["config"],
        "dataset": doc.get("dataset", {}),
        "final": final_metrics(run_dir),
        "created": doc.get("created", run_dir.stat().st_mtime),
        "sweep": sweep,
        "evaluation": evaluation.get("summary"),
        "evaluation_notes": notes if isinstance(notes, dict) else {},
        "val_losses": _val_losses(run_dir),
    }


def _val_losses(run_dir: Path) -> list:
    """The per-epoch validation losses from metrics.jsonl, parsing only its epoch lines (a 15-epoch run has
    about 7 batch lines per epoch line); falls back to read_metrics for a file written another way."""
    try:
        text = (run_dir / "metrics.jsonl").read_text(encoding="utf-8", errors="replace")
    except OSError:  # missing, or damaged (a folder in its place): the page that opens the run says why
        return []
    out = []
    for line in text.splitlines():
        if '"epoch"' in line and '"kind": "epoch"' in line:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("kind") == "epoch":
                out.append(row.get("val_loss"))
    if not out and '"kind":"epoch"' in text:  # compact JSON: parse every line
        out = [m.get("val_loss") for m in read_metrics(run_dir, "epoch")]
    return out


def _folders(runs_root: Path, sweeps_root: Path | None):
    if runs_root.is_dir():
        for d in runs_root.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                yield d, d.name, None
    if sweeps_root is not None and sweeps_root.is_dir():
        for s in sweeps_root.iterdir():
            if (s / "sweep.json").is_file() and (s / "runs").is_dir():
                for d in (s / "runs").iterdir():
                    if d.is_dir() and not d.name.startswith("."):
                        yield d, f"{s.name}/{d.name}", s.name


def _entry_ok(entry) -> bool:
    """An index entry as this module writes it (a damaged or hand-edited .index.json is rebuilt, not trusted)."""
    row = entry.get("row") if isinstance(entry, dict) else None
    return (
        isinstance(row, dict)
        and isinstance(entry.get("fp"), list)
        and isinstance(entry.get("name"), str)
        and isinstance(row.get("config"), dict)
        and isinstance(row.get("path"), str)
        and isinstance(row.get("state"), (str, type(None)))
        and isinstance(row.get("created"), (int, float))
        and not isinstance(row.get("created"), bool)
    )


def _load(index_path: Path) -> dict:
    try:
        doc = json.loads(index_path.read_text(encoding="utf-8"))
        if doc.get("version") == INDEX_VERSION and isinstance(doc.get("runs"), dict):
            return {path: entry for path, entry in doc["runs"].items() if _entry_ok(entry)}
    except (OSError, ValueError, AttributeError, RecursionError):
        pass
    return {}


_ONE: dict[str, dict] = {}  # run path -> entry, for summary()


def summary(run_dir) -> dict:
    """One run's summary (the row list_runs gives), re-read only when its files changed (in memory)."""
    d = Path(run_dir)
    fp = _fingerprint(d)
    if fp is None:
        return {}
    with _LOCK:
        entry = _ONE.get(str(d))
        if entry is None or entry["fp"] != fp:
            entry = _ONE[str(d)] = {"fp": fp, "row": _summary(d, d.name, None)}
    return entry["row"]


def list_runs(runs_root=None, sweeps_root=None, include_sweeps: bool = True) -> list[dict]:
    """Every run (and, with include_sweeps, every sweep's run), newest first; see the module doc."""
    runs_root = Path(runs_root) if runs_root else default_runs_root()
    if sweeps_root is None and include_sweeps:
        sweeps_root = default_sweeps_root()
    index_path = runs_root / INDEX_FILE
    key = str(index_path.resolve()) + ("+sweeps" if include_sweeps else "")
    with _LOCK:
        cache = _CACHE.get(key)
        if cache is None:  # without sweeps: the runs' entries of the full index (in memory, else its file)
            cache = _load(index_path) if include_sweeps else _CACHE.get(key + "+sweeps") or _load(index_path)
        fresh, changed = {}, False
        for d, name, sweep in _folders(runs_root, sweeps_root if include_sweeps else None):
            fp = _fingerprint(d)
            if fp is None:
                continue
            path = str(d)
            entry = cache.get(path)
            if entry is None or entry.get("fp") != fp or entry.get("name") != name:
                entry = {"fp": fp, "name": name, "row": _summary(d, name, sweep)}
                changed = True
            fresh[path] = entry
        changed = changed or len(fresh) != len(cache)
        _CACHE[key] = fresh
        if changed and include_sweeps and runs_root.is_dir() and not readonly():  # a viewer writes nothing
            try:
                atomic_write_text(index_path, json.dumps({"version": INDEX_VERSION, "runs": fresh}))
            except OSError:
                pass  # a read-only data folder: the index stays in memory
    out = []
    for entry in fresh.values():
        row = dict(entry["row"])
        if row.get("state") in IN_PROGRESS:  # a trainer (or a sweep's driver) that died without saying so
            st = run_state(row["path"])
            row.update(state=st.get("state"), message=st.get("message", ""), status=st, epoch=st.get("epoch"))
        out.append(row)
    return sorted(out, key=lambda r: float(r.get("created") or 0), reverse=True)


# ---------------------------------------------------------------- a sweep's state (vae.sweeps.sweep and the delete guard)
DRIVER_STALE_S = 30.0  # the driver writes its heartbeat every few seconds
SWEEP_IN_PROGRESS = ("planned", "running", "stopping")  # its runs not yet ended will be trained: they read the dataset


_SWEEP_STATUS_TYPES = {
    "state": (str,),
    "message": (str,),
    "driver_pid": (int, type(None)),
    "heartbeat": "number",
    "updated": "number",
    "workers": (int, type(None)),
    "runs": (dict,),
}


def read_sweep_status(sweep_dir) -> dict:
    """The sweep's status.json, checked: {'state': 'unknown'} if missing, {'state': 'damaged', 'message': why}
    if it is not a status object with the right types (resume the sweep to write it again)."""
    path = Path(sweep_dir) / "status.json"
    try:
        st = read_json(path)
    except FileNotFoundError:
        return {"state": "unknown", "runs": {}}
    except (OSError, ValueError) as e:
        why = "it is a folder" if isinstance(e, IsADirectoryError) else (str(e).splitlines() or ["?"])[0][:200]
        return {"state": DAMAGED, "runs": {}, "message": f"cannot read {path}: {why}; resume the sweep to rewrite it"}
    problem = (
        f"it holds {type(st).__name__}, not a JSON object"
        if not isinstance(st, dict)
        else field_problem(st, _SWEEP_STATUS_TYPES)
    )
    if not problem and not all(isinstance(r, dict) for r in st.get("runs", {}).values()):
        problem = "'runs' must map each run to an object"
    if problem:
        return {"state": DAMAGED, "runs": {}, "message": f"{path}: {problem}; resume the sweep to rewrite it"}
    return st


def sweep_state(sweep_dir) -> dict:
    """status.json, corrected for a driver that died without saying so (then `stopped`: resume it)."""
    st = read_sweep_status(sweep_dir)
    if st.get("state") in ("running", "stopping"):
        age = time.time() - float(st.get("heartbeat", 0) or 0)
        if not pid_alive(st.get("driver_pid")) or age > DRIVER_STALE_S:
            st = {
                **st,
                "state": "stopped",
                "message": f"the sweep driver (pid {st.get('driver_pid')}) ended without finishing; "
                "resume the sweep to train what is left",
            }
    return st
