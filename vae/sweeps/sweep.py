"""Sweeps: a grid of settings x seeds, each an ordinary run folder (never imports TensorFlow or Ray).

A sweep folder (docs/formats.md, "Sweep folder format"):
  sweep.json    format "vae-lab-sweep", format_version 1: the dataset, the grid ({setting: [values]}),
                the seeds, the fixed settings, the resources per run and the list of runs
                (name, settings, seed), in the order they are trained
  runs/NAME/    one ordinary run folder per setting x seed (config.json written by
                vae.training.train.write_run_config), so every page that opens a run opens these
  status.json   the sweep's state (planned, running, stopping, stopped, finished, failed), the
                driver's pid and heartbeat, counts, and per run the node it ran on, its wall time
                and its attempts
  results.csv   one row per run: settings, seed, state, node, wall time, final losses and the
                evaluation summary (evaluation.json's "summary", flattened); rewritten atomically
  driver.log    the driver's output (when started from the dashboard)
  stop          present while a stop was requested

The Ray engine (vae.sweeps.engine) trains and evaluates the runs; this module plans, reads and
writes the files, and starts the driver as its own process for the dashboard.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import sys
import time
from pathlib import Path

from vae.base.errors import UserError
from vae.base.fileio import atomic_write_json, atomic_write_text, read_json
from vae.base.paths import start_detached, sweeps_root
from vae.base.safety import require_writable
from vae.jobs.launcher import request_stop as request_stop_run  # noqa: F401  (used by the driver)
from vae.runs import run_index
from vae.runs.config import TrainConfig
from vae.runs.folder import ACTIVE, DAMAGED, check_name, field_problem, run_state, write_run_config
from vae.runs.run_index import DRIVER_STALE_S, sweep_state  # noqa: F401  (read there: the delete guard needs it too)
from vae.runs.run_index import read_sweep_status as read_status

SWEEP_FORMAT = "vae-lab-sweep"
SWEEP_FORMAT_VERSION = 1
NOT_SWEPT = ("dataset", "seed", "extra")  # seed has its own axis; dataset is one per sweep
SWEEP_STATES = ("planned", "running", "stopping", "stopped", "finished", "failed")
EVALUATE_MODES = ("quick", "full", "none")  # quick: every metric but the two that render new images
FINAL_KEYS = (
    "epoch",
    "loss",
    "val_loss",
    "val_recon",
    "val_kl",
    "val_entanglement",
    "alignment_score",
    "total_correlation",
    "active_units",
)


# ---------------------------------------------------------------- settings
def _fields() -> dict:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def sweepable() -> list[str]:
    """Every TrainConfig setting a grid or a fixed setting may name."""
    return [n for n in _fields() if n not in NOT_SWEPT]


def parse_value(key: str, text):
    """A setting's value from text, typed like the TrainConfig default of that setting."""
    fields = _fields()
    if key not in fields or key in NOT_SWEPT:
        raise UserError(f"{key!r} is not a setting a sweep can vary; choose one of: {', '.join(sweepable())}")
    if not isinstance(text, str):
        return text
    default = getattr(TrainConfig(), key)
    text = text.strip()
    try:
        if isinstance(default, dict):  # e.g. method_params: a JSON object
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError
            return value
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            v = float(text)
            if not v.is_integer():
                raise ValueError
            return int(v)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = (
            "true or false"
            if isinstance(default, bool)
            else "a JSON object, e.g. '{\"lambda_od\": 10}'"
            if isinstance(default, dict)
            else f"a {type(default).__name__}"
        )
        raise UserError(f"{key} must be {kind}, got {text!r}") from None
    return text


def parse_grid(items: list[str]) -> dict:
    """['gamma=0,1e-4', 'beta=0.001'] -> {'gamma': [0.0, 0.0001], 'beta': [0.001]} (values typed)."""
    grid: dict = {}
    for item in items or []:
        key, sep, values = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise UserError(f"--grid {item!r}: write SETTING=V1,V2,... (e.g. gamma=0,1e-4,1e-3)")
        if key in grid:
            raise UserError(f"--grid names {key} twice; give all its values in one --grid {key}=...")
        parsed = [parse_value(key, v) for v in values.split(",") if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise UserError(f"--grid {key} repeats a value: {values}")
        grid[key] = parsed
    return grid


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def run_name(index: int, settings: dict, seed: int) -> str:
    parts = [f"r{index:03d}"] + [f"{k}_{_fmt(v)}" for k, v in settings.items()] + [f"s{seed}"]
    name = "-".join(parts).replace("+", "")
    name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return name[:100]


# ---------------------------------------------------------------- planning
def plan_sweep(
    out,
    dataset,
    grid: dict,
    seeds: int = 1,
    fixed: dict | None = None,
    cpus_per_run: int | None = None,
    evaluate: str = "quick",
    name: str | None = None,
    gpus_per_run: float = 0.0,
) -> Path:
    """Validate every run's config and write sweep.json plus one run folder per setting x seed.

    Refuses an existing sweep folder (continue it with resume instead) and any run whose config
    does not validate, before anything is written.
    """
    from vae.data.datasets import load_dataset

    require_writable("start a sweep")
    out = Path(out).resolve()
    check_name(name or out.name, "sweep name")
    if (out / "sweep.json").exists():
        raise UserError(
            f"{out} already holds a sweep; continue it with `python -m vae sweep --resume {out}` "
            "or choose another --out"
        )
    if not isinstance(gpus_per_run, (int, float)) or not 0 <= gpus_per_run <= 16:
        raise UserError(f"gpus_per_run must be between 0 and 16, got {gpus_per_run!r}")
    if evaluate not in EVALUATE_MODES:
        raise UserError(f"evaluate must be one of {', '.join(EVALUATE_MODES)}, got {evaluate!r}")
    if not isinstance(seeds, int) or seeds < 1 or seeds > 1000:
        raise UserError(f"seeds must be a whole number between 1 and 1000, got {seeds!r}")
    fixed = {k.replace("-", "_"): parse_value(k.replace("-", "_"), v) for k, v in (fixed or {}).items()}
    both = sorted(set(fixed) & set(grid))
    if both:
        raise UserError(f"{', '.join(both)} is both swept (--grid) and fixed; give it only once")
    for key in grid:
        parse_value(key, None)  # names a setting
        if not grid[key]:
            raise UserError(f"--grid {key} has no values")
    ds_path = Path(dataset).resolve()
    ds = load_dataset(ds_path)
    n_train = len(ds.indices("train"))
    fixed.setdefault("image_size", ds.image_size)
    keys = list(grid)
    runs, configs = [], []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        settings = dict(zip(keys, combo))
        for seed in range(seeds):
            cfg = TrainConfig(dataset=str(ds_path), **{**fixed, **settings, "seed": seed})
            cfg.validate(train_size=n_train)
            name_i = run_name(len(runs), settings, seed)
            runs.append({"name": name_i, "settings": settings, "seed": seed})
            configs.append(cfg)
    if len(runs) > 5000:
        raise UserError(f"the grid has {len(runs)} runs; at most 5000 per sweep")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"path": str(ds_path), "name": ds_path.name, "family": ds.meta.get("family")}
    for run, cfg in zip(runs, configs):
        write_run_config(out / "runs" / run["name"], cfg, meta)
    doc = {
        "format": SWEEP_FORMAT,
        "format_version": SWEEP_FORMAT_VERSION,
        "name": name or out.name,
        "created": time.time(),
        "dataset": str(ds_path),
        "grid": grid,
        "seeds": list(range(seeds)),
        "fixed": fixed,
        "resources": {"cpus_per_run": cpus_per_run, "gpus_per_run": gpus_per_run},
        "evaluate": evaluate,
        "runs": runs,
    }
    write_status(out, {"state": "planned", "message": f"{len(runs)} runs planned", "runs": {}})
    atomic_write_json(out / "sweep.json", doc)  # last: a folder with sweep.json is complete
    write_results(out)
    return out


def read_sweep(sweep_dir) -> dict:
    """sweep.json, checked; raises UserError for a folder that is not a sweep."""
    path = Path(sweep_dir) / "sweep.json"
    try:
        doc = read_json(path)
    except FileNotFoundError:
        raise UserError(
            f"{sweep_dir} is not a sweep folder (no sweep.json); plan one with "
            "`python -m vae sweep --data ... --out ...`"
        ) from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a file; the sweep folder is damaged") from None
    except (OSError, ValueError) as e:
        raise UserError(
            f"cannot read {path}: {(str(e).splitlines() or ['?'])[0][:200]}; the sweep folder is damaged"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != SWEEP_FORMAT:
        raise UserError(f"{path} is not a {SWEEP_FORMAT} file")
    if doc.get("format_version") != SWEEP_FORMAT_VERSION:
        raise UserError(
            f"{path} has sweep format version {doc.get('format_version')}; this lab reads "
            f"version {SWEEP_FORMAT_VERSION}"
        )
    if not isinstance(doc.get("runs"), list):
        raise UserError(f"{path} has no list of runs; the sweep folder is damaged")
    problem = field_problem(
        doc,
        {
            "name": (str,),
            "dataset": (str,),
            "created": "number",
            "grid": (dict,),
            "seeds": (list,),
            "fixed": (dict,),
            "resources": (dict,),
            "evaluate": (str,),
        },
    )
    for run in doc["runs"]:
        if problem:
            break
        if (
            not isinstance(run, dict)
            or not isinstance(run.get("name"), str)
            or not run["name"]
            or "/" in run["name"]
            or run["name"].startswith(".")
        ):
            problem = f"a run entry {str(run)[:80]} has no valid name"
        else:
            problem = field_problem(run, {"settings": (dict,), "seed": (int,)})
    if problem:
        raise UserError(f"{path}: {problem}; the sweep folder is damaged")
    return doc


def run_dir_of(sweep_dir, run: dict | str) -> Path:
    return Path(sweep_dir) / "runs" / (run if isinstance(run, str) else run["name"])


# ---------------------------------------------------------------- status
def write_status(sweep_dir, status: dict) -> None:
    require_writable(f"write the status of sweep {Path(sweep_dir).name}")
    atomic_write_json(Path(sweep_dir) / "status.json", {**status, "updated": time.time()})


def mark_resumed(run_dir, driver_pid: int, sweep_name: str = "") -> bool:
    """A failed or stopped run the driver submits again is `waiting` (for a Ray worker), not still failed,
    in every list until its trainer starts; failed again if the driver ends first (folder.run_state).
    Returns whether it was marked."""
    from vae.runs.folder import WAITING, read_status

    status = run_state(run_dir)
    if status.get("state") not in ("failed", "stopped"):
        return False
    atomic_write_json(
        Path(run_dir) / "status.json",
        {
            **read_status(run_dir),
            "state": WAITING,
            "pid": None,
            "driver_pid": int(driver_pid),
            "queued_at": time.time(),
            "resume": True,
            "message": f"resumed by sweep {sweep_name}: waiting for a Ray worker".replace("  ", " "),
        },
    )
    return True


def run_done(run_dir, evaluate: str = "quick") -> bool:
    """A run needs no more work: finished (and evaluated, when the sweep evaluates)."""
    if run_state(run_dir).get("state") != "finished":
        return False
    return evaluate == "none" or (Path(run_dir) / "evaluation.json").exists()


def progress(sweep_dir, doc: dict | None = None) -> dict:
    """Counts of runs per state, from the run folders: {'finished', 'running', 'queued', 'failed', ...}."""
    doc = doc or read_sweep(sweep_dir)
    counts: dict = {}
    for run in doc["runs"]:
        state = run_state(run_dir_of(sweep_dir, run)).get("state")
        state = "queued" if state in ("unknown", None) else state
        counts[state] = counts.get(state, 0) + 1
    counts["total"] = len(doc["runs"])
    return counts


# ---------------------------------------------------------------- results
def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}_{k}" if prefix else str(k), v, out)
    elif isinstance(value, bool):
        out[prefix] = value
    elif isinstance(value, (int, float, str)) or value is None:
        out[prefix] = value


def result_rows(sweep_dir, doc: dict | None = None, status: dict | None = None) -> list[dict]:
    """One row per planned run, read from its run folder and the sweep's status (node, wall time)."""
    doc = doc or read_sweep(sweep_dir)
    status = status if status is not None else read_status(sweep_dir)
    records = status.get("runs") or {}
    rows = []
    for run in doc["runs"]:
        rd = run_dir_of(sweep_dir, run)
        st = run_state(rd)
        rec = records.get(run["name"], {})
        row = {
            "run": run["name"],
            **run["settings"],
            "seed": run["seed"],
            "state": "queued" if st.get("state") in ("unknown", None) else st.get("state"),
            # a grouped run finished by a task whose result never reached the driver: its own status says
            "node": rec.get("node") or st.get("node"),
            "host": rec.get("host") or st.get("host"),
            "wall_s": rec.get("wall_s") or _trained_s(st),
            "attempts": rec.get("attempts", 0),
        }
        cached = run_index.summary(rd)  # final metrics and evaluation, re-read only when they change
        final = cached.get("final") or {}
        row.update({k if k != "epoch" else "epochs_done": final.get(k) for k in FINAL_KEYS})
        summary = cached.get("evaluation") or {}
        flat: dict = {}
        _flatten("", summary, flat)
        row.update({f"eval_{k}": v for k, v in flat.items()})
        rows.append(row)
    return rows


def _trained_s(st: dict):
    try:
        return round(float(st["finished"]) - float(st["started"]), 2)
    except (KeyError, TypeError, ValueError):
        return None


def write_results(sweep_dir, rows: list[dict] | None = None) -> Path:
    """results.csv (atomic): the columns are the union of every row's keys, in first-seen order."""
    require_writable(f"write the results of sweep {Path(sweep_dir).name}")
    rows = result_rows(sweep_dir) if rows is None else rows
    path = Path(sweep_dir) / "results.csv"
    atomic_write_text(path, table_csv(rows))
    return path


def table_csv(rows: list[dict]) -> str:
    """Rows as CSV text: the columns are the union of the rows' keys in first-seen order; None as empty."""
    cols: list = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def list_sweeps(root=None) -> list[dict]:
    """Every sweep folder under root (default sweeps_root()), newest first, with its state and counts."""
    root = Path(root) if root else sweeps_root()
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if not (d / "sweep.json").exists():
            continue
        try:
            doc = read_sweep(d)
        except UserError as e:  # listed, with why it cannot be opened
            out.append(
                {
                    "name": d.name,
                    "path": str(d),
                    "created": d.stat().st_mtime,
                    "grid": {},
                    "n_runs": 0,
                    "state": DAMAGED,
                    "message": str(e),
                }
            )
            continue
        st = sweep_state(d)
        out.append(
            {
                "name": d.name,
                "path": str(d),
                "created": doc.get("created") or 0,
                "grid": doc.get("grid", {}),
                "n_runs": len(doc["runs"]),
                "state": st.get("state"),
                "message": st.get("message", ""),
            }
        )
    return sorted(out, key=lambda s: s["created"], reverse=True)


# ---------------------------------------------------------------- driver process (for the dashboard)
def request_stop(sweep_dir) -> None:
    """Ask the driver to stop: queued runs are not started, running ones stop after their batch."""
    require_writable("stop a sweep")
    read_sweep(sweep_dir)
    atomic_write_json(Path(sweep_dir) / "stop", {"requested": time.time()})


def driver_command(sweep_dir, address: str | None = None, workers: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "vae", "sweep", "--resume", str(Path(sweep_dir).resolve())]
    if address:
        cmd += ["--ray-address", address]
    if workers:
        cmd += ["--workers", str(int(workers))]
    return cmd


def launch_driver(sweep_dir, address: str | None = None, workers: int | None = None) -> int:
    """Start `python -m vae sweep --resume SWEEP` as its own OS process (its own session, so a
    Streamlit rerun or a server restart never touches it); returns its pid. Refuses a sweep whose
    driver is alive."""
    require_writable("resume a sweep")
    sweep_dir = Path(sweep_dir).resolve()
    read_sweep(sweep_dir)
    st = sweep_state(sweep_dir)
    if st.get("state") in ("running", "stopping"):
        raise UserError(f"sweep {sweep_dir.name} is already {st['state']} (driver pid {st.get('driver_pid')})")
    (sweep_dir / "stop").unlink(missing_ok=True)
    pid = start_detached(driver_command(sweep_dir, address, workers), sweep_dir / "driver.log")
    status = read_status(sweep_dir)
    write_status(
        sweep_dir,
        {
            **status,
            "state": "running",
            "message": "starting the sweep driver",
            "driver_pid": pid,
            "heartbeat": time.time(),
        },
    )
    return pid


def start_sweep(
    dataset,
    grid: dict,
    seeds: int,
    fixed: dict,
    name: str,
    root=None,
    workers: int | None = None,
    address: str | None = None,
) -> Path:
    """Plan a sweep under root/name and launch its driver process (the dashboard's Start)."""
    require_writable("start a sweep")  # before sweeps/ is created
    root = Path(root) if root else sweeps_root(create=True)
    out = plan_sweep(root / check_name(name, "sweep name"), dataset, grid, seeds, fixed)
    launch_driver(out, address=address, workers=workers)
    return out


def active(state: str | None) -> bool:
    return state in ACTIVE


def watch_summary(rows: list[dict], status: dict) -> dict:
    """Runs done / running / queued / failed and an estimate of the time left (seconds, or None).

    The estimate is the mean wall time of the runs done so far, times the runs left, divided by
    the runs trained at a time."""
    counts = {"finished": 0, "running": 0, "queued": 0, "failed": 0}
    for r in rows:
        s = r.get("state")
        key = s if s in counts else ("failed" if s in ("diverged", "damaged") else "queued")
        counts[key] += 1
    walls = [
        float(r["wall_s"]) for r in rows if r.get("state") == "finished" and isinstance(r.get("wall_s"), (int, float))
    ]
    left = counts["running"] + counts["queued"]
    workers = max(1, int(status.get("workers") or 1))
    eta = (sum(walls) / len(walls)) * left / workers if walls and left and status.get("state") == "running" else None
    return {**counts, "total": len(rows), "eta_s": eta}


def start_seeds(cfg: TrainConfig, seeds: int, root=None) -> Path:
    """The Train page's Start with N seeds: a sweep over seeds 0..N-1 of one config, started at once."""
    fixed = {k: v for k, v in cfg.to_dict().items() if k not in NOT_SWEPT}
    name = f"{Path(cfg.dataset).name}-seeds-{time.strftime('%Y%m%d-%H%M%S')}"[:100]
    return start_sweep(cfg.dataset, {}, seeds, fixed, name, root=root)
