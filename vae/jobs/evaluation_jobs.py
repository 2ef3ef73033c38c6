"""`python -m vae evaluate RUN` from the dashboard: its own process, its progress in the run folder.

`start_evaluation(run_dir)` launches the evaluation like a trainer (`start_new_session=True`), so a
Streamlit rerun, a closed tab or a server restart never stops it. The evaluating process reports
its stage into `evaluation_progress.json` (written atomically; docs/formats.md, "Run folder format"):

    {"state": "running" | "finished" | "failed", "stage": "encoding every split", "fraction": 0.3,
     "pid": 1234, "started": 1.7e9, "updated": 1.7e9, "message": ""}

`evaluation_state(run_dir)` reads it back and reports an evaluation whose process is gone without
saying so as failed, with a pointer to evaluate.log. `evaluation_views(evaluation)` turns an
evaluation.json into the tables the pages show (which latent tracks which factor). Never imports
TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vae.base.errors import UserError
from vae.base.fileio import atomic_write_json, read_json
from vae.base.paths import child_env, package_parent
from vae.base.safety import require_writable
from vae.runs.folder import field_problem, pid_alive, read_config

PROGRESS_FILE = "evaluation_progress.json"
LOG_FILE = "evaluate.log"


def write_progress(run_dir, stage: str, fraction: float, state: str = "running", message: str = "",
                   pid: int | None = None) -> None:
    """Record the evaluation's stage (atomic); keeps the start time of the file already there."""
    require_writable(f"record the evaluation progress of run {Path(run_dir).name}")
    path = Path(run_dir) / PROGRESS_FILE
    try:
        started = read_json(path).get("started")
    except (OSError, ValueError, AttributeError):
        started = None
    now = time.time()
    atomic_write_json(path, {"state": state, "stage": stage, "fraction": float(min(max(fraction, 0.0), 1.0)),
                             "pid": os.getpid() if pid is None else pid, "started": started or now,
                             "updated": now, "message": message})


_PROGRESS_TYPES = {"state": (str,), "stage": (str,), "fraction": "number", "pid": (int, type(None)),
                   "started": "number", "updated": "number", "message": (str,)}


def evaluation_state(run_dir) -> dict:
    """The progress file, or {'state': 'none'} when the run was never evaluated from the dashboard.

    A `running` evaluation whose process has ended is reported `failed`.
    """
    path = Path(run_dir) / PROGRESS_FILE
    try:
        status = read_json(path)
    except FileNotFoundError:
        return {"state": "none", "fraction": 0.0, "stage": "", "message": ""}
    except (OSError, ValueError) as e:
        why = "it is a folder" if isinstance(e, IsADirectoryError) else (str(e).splitlines() or ["?"])[0][:200]
        return {"state": "failed", "fraction": 0.0, "stage": "", "message": f"{PROGRESS_FILE} unreadable: {why}"}
    problem = "it is not a JSON object" if not isinstance(status, dict) else field_problem(status, _PROGRESS_TYPES)
    if problem:
        return {"state": "failed", "fraction": 0.0, "stage": "",
                "message": f"{PROGRESS_FILE} is damaged ({problem}); evaluate the run again"}
    if status.get("state") == "running" and not pid_alive(status.get("pid")):
        status = {**status, "state": "failed",
                  "message": f"the evaluation process (pid {status.get('pid')}) ended during "
                             f"'{status.get('stage')}'; see {LOG_FILE} in the run folder"}
    return status


def start_evaluation(run_dir, fast: bool = False) -> int:
    """Launch `python -m vae evaluate RUN` (with `--fast`: DCI's fast, labelled setting) in its own session.

    Returns its pid.
    Refuses (UserError) a folder that is not a run, a run without a model yet, and a second
    evaluation of a run that is being evaluated.
    """
    run_dir = Path(run_dir).resolve()
    require_writable(f"evaluate run {run_dir.name} (it writes evaluation.json and latents.csv)")
    read_config(run_dir)
    if not (run_dir / "model.keras").exists():
        raise UserError(f"run {run_dir.name} has no model.keras yet; evaluate it after its first epoch")
    if evaluation_state(run_dir).get("state") == "running":
        raise UserError(f"run {run_dir.name} is already being evaluated; wait for it to finish")
    env = child_env()
    (run_dir / PROGRESS_FILE).unlink(missing_ok=True)  # a new evaluation: its own start time
    with open(run_dir / LOG_FILE, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "vae", "evaluate", str(run_dir)] + (["--fast"] if fast else []),
                                stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=package_parent(), env=env,
                                start_new_session=True)
    # Wait for it in a thread: an exited child nobody waits for stays a zombie under the server.
    threading.Thread(target=proc.wait, name=f"reap-evaluate-{proc.pid}", daemon=True).start()
    write_progress(run_dir, "starting (loading TensorFlow)", 0.0, pid=proc.pid)
    return proc.pid


def evaluate_with_progress(run_dir, **kwargs) -> dict:
    """`evaluate.evaluate_run` that records its stages, its end and its failure in the progress file."""
    from vae.training.evaluate import evaluate_run

    require_writable(f"evaluate run {Path(run_dir).name} (it writes evaluation.json and latents.csv)")
    read_config(run_dir)  # not a run folder: the UserError, before any progress file is written

    def progress(stage: str, fraction: float) -> None:
        write_progress(run_dir, stage, fraction)

    try:
        result = evaluate_run(run_dir, progress=progress, **kwargs)
    except UserError as e:
        write_progress(run_dir, "failed", 0.0, state="failed", message=str(e))
        raise
    except BaseException as e:
        write_progress(run_dir, "failed", 0.0, state="failed",
                       message=f"{type(e).__name__}: {e}; see {LOG_FILE} in the run folder")
        raise
    write_progress(run_dir, "done", 1.0, state="finished")
    return result


# ---------------------------------------------------------------- what the pages show

def _factor_names(evaluation: dict, k: int) -> list[str]:
    names = evaluation.get("factor_names") or (evaluation.get("pixel_pca") or {}).get("factor_names")
    return list(names) if names and len(names) == k else [f"factor {j + 1}" for j in range(k)]


def settings_text(result: dict, skip: tuple = ()) -> str:
    """'num_bins 20 · n_train 2000 · …': the scalar settings a metric recorded beside its numbers."""
    if not isinstance(result, dict):
        return ""
    keys = ("num_bins", "n_train", "n_train_given", "n_test", "n_estimators", "seed", "batch_size", "num_train",
            "num_eval", "threshold", "note", "sklearn_version")
    parts = [f"{k} {result[k]}" for k in keys if k in result and k not in skip and result[k] not in (None, "")]
    return " · ".join(parts)


def factor_alignment_view(fa: dict, evaluation: dict) -> dict:
    """Rows per factor (its own latent, |cos| to it, angle, R², score) and the |cos| matrix, from
    evaluation.json's `factor_alignment` (vae.measures.analysis.factor_alignment)."""
    cos = np.asarray(fa["abs_cos"], dtype=float)  # (K factors, d latents)
    k, d = cos.shape
    names = _factor_names(evaluation, k)

    def col(key, default=None):
        v = fa.get(key)
        return list(v) if isinstance(v, list) and len(v) == k else [default] * k

    nearest = [int(np.argmax(cos[j])) for j in range(k)]
    assigned = [a if isinstance(a, int) and 0 <= a < d else nearest[j] for j, a in enumerate(col("assigned_axis"))]
    rows = [{"factor": names[j], "its latent": f"μ{assigned[j] + 1}", "|cos| to it": float(cos[j, assigned[j]]),
             "angle to the nearest axis (°)": col("angles_deg")[j], "R² (codes hold the factor)": col("r2")[j],
             "alignment (1 = on its own axis)": col("per_factor")[j]} for j in range(k)]
    settings = " · ".join(f"{key} {fa[key]}" for key in ("score_uses", "n", "min_r2", "note")
                          if fa.get(key) not in (None, ""))
    return {"rows": rows, "abs_cos": cos, "factors": names, "latents": [f"μ{i + 1}" for i in range(d)],
            "score": fa.get("score"), "settings": settings}


def _table(value) -> list[dict] | None:
    """A list of row dicts from a JSON value shaped like a table (list of dicts, or dict of equal lists)."""
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return [dict(r) for r in value]
    if isinstance(value, dict):
        lists = {k: v for k, v in value.items() if isinstance(v, list)}
        lengths = {len(v) for v in lists.values()}
        if lists and len(lengths) == 1 and next(iter(lengths)) > 0 and all(
                not isinstance(x, (list, dict)) for v in lists.values() for x in v):
            n = next(iter(lengths))
            return [{k: v[i] for k, v in lists.items()} for i in range(n)]
    return None


def evaluation_views(evaluation: dict | None) -> dict:
    """The parts of an evaluation.json the pages draw, or {} when there is none.

    Keys (each present only when the evaluation holds it):
    - `summary`: {name: number}
    - `mig_per_factor`: rows {factor, MIG gap, best latent}; `mig_settings`
    - `dci_importance`: {matrix (d x K), latents, factors}; `dci_settings`, `dci_scores`
    - `tables`: {title: rows} for every other table-shaped entry (e.g. `factor_alignment`), as is
    """
    if not evaluation:
        return {}
    out: dict = {"summary": {k: v for k, v in (evaluation.get("summary") or {}).items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool)}}
    m = evaluation.get("metrics") or {}
    mig = m.get("mig") or {}
    if isinstance(mig.get("per_factor"), list) and mig["per_factor"]:
        gaps = mig["per_factor"]
        names = _factor_names(evaluation, len(gaps))
        mi = np.asarray(mig.get("mutual_info") or [], dtype=float)  # (d, K)
        best = [f"μ{int(np.argmax(mi[:, j])) + 1}" if mi.ndim == 2 and mi.shape[1] == len(gaps) else "-"
                for j in range(len(gaps))]
        out["mig_per_factor"] = [{"factor": n, "MIG (normalised gap)": g, "most informative latent": b}
                                 for n, g, b in zip(names, gaps, best)]
        out["mig_settings"] = settings_text(mig)
    dci = m.get("dci") or {}
    imp = np.asarray(dci.get("importance_matrix") or [], dtype=float)
    if imp.ndim == 2 and imp.size:
        out["dci_importance"] = {"matrix": imp, "latents": [f"μ{i + 1}" for i in range(imp.shape[0])],
                                 "factors": _factor_names(evaluation, imp.shape[1])}
        out["dci_settings"] = settings_text(dci)
        out["dci_scores"] = {k: dci.get(k) for k in ("disentanglement", "completeness", "informativeness_test")
                             if isinstance(dci.get(k), (int, float))}
    fa = evaluation.get("factor_alignment")
    if isinstance(fa, dict) and np.asarray(fa.get("abs_cos") or [], dtype=float).ndim == 2:
        out["factor_alignment"] = factor_alignment_view(fa, evaluation)
    tables = {}
    for source in (evaluation, m):
        for key, value in source.items():
            if key in ("metrics", "summary", "pca_alignment", "mig", "dci") or key in tables or key in out:
                continue
            rows = _table(value) if key != "recon_loss_per_split" else None
            if rows is None and isinstance(value, dict) and key == "factor_alignment":
                rows = _table(value.get("table") or value.get("rows"))
            if rows:
                tables[key] = rows
    out["tables"] = tables
    out["settings"] = {k: settings_text(v) for k, v in
                       {**{k: v for k, v in evaluation.items() if isinstance(v, dict)}, **m}.items()
                       if isinstance(v, dict) and settings_text(v)}
    return out


def read_progress_text(status: dict) -> str:
    """One line for the progress bar: stage and elapsed time."""
    elapsed = (status.get("updated") or 0) - (status.get("started") or 0)
    stage = status.get("stage") or status.get("state")
    return f"{stage} · {elapsed:.0f} s" if elapsed > 0 else str(stage)
