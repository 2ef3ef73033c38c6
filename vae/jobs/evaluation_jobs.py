"""`python -m vae evaluate RUN` from the dashboard: its own process, its progress in the run folder.

`start_evaluation(run_dir)` launches the evaluation like a trainer (`start_new_session=True`), so a
Streamlit rerun, a closed tab or a server restart never stops it. The evaluating process reports
its stage into `evaluation_progress.json` (written atomically; docs/formats.md, "Run folder format"):

    {"state": "running" | "finished" | "failed", "stage": "encoding every split", "fraction": 0.3,
     "pid": 1234, "started": 1.7e9, "updated": 1.7e9, "message": ""}

`evaluation_state(run_dir)` reads it back and reports an evaluation whose process is gone without
saying so as failed, with a pointer to evaluate.log. The tables the pages draw from evaluation.json
are in vae.views.evaluation. Never imports TensorFlow.

Test hook: VAE_LAB_TEST_STAGE_DELAY_S=<seconds> makes the evaluating process wait that long after it reports
each stage, so a test can see every stage however fast the machine is (docs/testing.md); unset, nothing waits.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from vae.base.errors import UserError
from vae.base.fileio import atomic_write_json, read_json
from vae.base.paths import start_detached
from vae.base.safety import env_number, require_writable
from vae.runs.folder import field_problem, pid_alive, read_config

PROGRESS_FILE = "evaluation_progress.json"
LOG_FILE = "evaluate.log"
STAGE_DELAY_ENV = "VAE_LAB_TEST_STAGE_DELAY_S"


def stage_delay_hook() -> float:
    """Seconds the evaluation waits after reporting each stage (test hook VAE_LAB_TEST_STAGE_DELAY_S; 0 unset; a
    value that is not a number >= 0 is a UserError naming the variable)."""
    return env_number(STAGE_DELAY_ENV, 0.0, zero_ok=True)


def write_progress(
    run_dir, stage: str, fraction: float, state: str = "running", message: str = "", pid: int | None = None
) -> None:
    """Record the evaluation's stage (atomic); keeps the start time of the file already there."""
    require_writable(f"record the evaluation progress of run {Path(run_dir).name}")
    path = Path(run_dir) / PROGRESS_FILE
    try:
        started = read_json(path).get("started")
    except (OSError, ValueError, AttributeError):
        started = None
    now = time.time()
    atomic_write_json(
        path,
        {
            "state": state,
            "stage": stage,
            "fraction": float(min(max(fraction, 0.0), 1.0)),
            "pid": os.getpid() if pid is None else pid,
            "started": started or now,
            "updated": now,
            "message": message,
        },
    )


_PROGRESS_TYPES = {
    "state": (str,),
    "stage": (str,),
    "fraction": "number",
    "pid": (int, type(None)),
    "started": "number",
    "updated": "number",
    "message": (str,),
}


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
        return {
            "state": "failed",
            "fraction": 0.0,
            "stage": "",
            "message": f"{PROGRESS_FILE} is damaged ({problem}); evaluate the run again",
        }
    if status.get("state") == "running" and not pid_alive(status.get("pid")):
        status = {
            **status,
            "state": "failed",
            "message": f"the evaluation process (pid {status.get('pid')}) ended during "
            f"'{status.get('stage')}'; see {LOG_FILE} in the run folder",
        }
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
    (run_dir / PROGRESS_FILE).unlink(missing_ok=True)  # a new evaluation: its own start time
    pid = start_detached(
        [sys.executable, "-m", "vae", "evaluate", str(run_dir)] + (["--fast"] if fast else []), run_dir / LOG_FILE
    )
    write_progress(run_dir, "starting (loading TensorFlow)", 0.0, pid=pid)
    return pid


def evaluate_with_progress(run_dir, **kwargs) -> dict:
    """`evaluate.evaluate_run` that records its stages, its end and its failure in the progress file."""
    from vae.training.evaluate import evaluate_run

    require_writable(f"evaluate run {Path(run_dir).name} (it writes evaluation.json and latents.csv)")
    read_config(run_dir)  # not a run folder: the UserError, before any progress file is written

    def progress(stage: str, fraction: float) -> None:
        write_progress(run_dir, stage, fraction)
        # test hook (VAE_LAB_TEST_STAGE_DELAY_S): each stage visible on any machine; read here, inside the try
        # below, so a bad value is recorded as the evaluation's failure
        time.sleep(stage_delay_hook())

    try:
        result = evaluate_run(run_dir, progress=progress, **kwargs)
    except UserError as e:
        write_progress(run_dir, "failed", 0.0, state="failed", message=str(e))
        raise
    except BaseException as e:
        write_progress(
            run_dir, "failed", 0.0, state="failed", message=f"{type(e).__name__}: {e}; see {LOG_FILE} in the run folder"
        )
        raise
    write_progress(run_dir, "done", 1.0, state="finished")
    return result


def read_progress_text(status: dict) -> str:
    """One line for the progress bar: stage and elapsed time."""
    elapsed = (status.get("updated") or 0) - (status.get("started") or 0)
    stage = status.get("stage") or status.get("state")
    return f"{stage} · {elapsed:.0f} s" if elapsed > 0 else str(stage)
