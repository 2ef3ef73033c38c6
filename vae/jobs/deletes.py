"""Deleting safely: what depends on an item, and no delete while something uses it.

A dataset is used by the runs trained on it (their config.json names its folder), sweep runs included:
once it is gone their reconstructions and embedding no longer open. `dataset_usage` says which runs those
are; `delete_dataset` refuses while one of them is active (queued, waiting or training, or a run a planned
or running sweep will still train) and holds
the runs folder's lock while it checks and deletes, so a Start cannot pick the dataset up in
between (launcher.start_run takes the same lock).
"""

from __future__ import annotations

import os
from pathlib import Path

from vae.base.errors import UserError
from vae.base.safety import require_writable
from vae.data import datasets
from vae.jobs import launcher
from vae.runs import folder
from vae.runs import run_index


def _same_folder(a, b) -> bool:
    return os.path.realpath(str(a)) == os.path.realpath(str(b))


def dataset_usage(dataset_path, runs_root, sweeps_root=None) -> dict:
    """The runs that read a dataset: {"runs": [names], "active": [names of runs that will read it soon],
    "sweeps": [names of the sweeps in progress among them]}.

    Every run under `runs_root` and every run of every sweep under `sweeps_root` (default: the `sweeps`
    folder beside `runs_root`), by the dataset its config.json names (an old relative path resolved as
    `vae.runs.folder.read_config` does, so a CLI run started from any folder counts). Active: a run
    waiting, queued or training, and a run of a planned, running or stopping sweep that has not
    finished (the sweep's driver will train it)."""
    runs_root = Path(runs_root)
    sweeps_root = Path(sweeps_root) if sweeps_root is not None else runs_root.parent / "sweeps"
    used, active, sweeps, sweep_states = [], [], [], {}
    for run in run_index.list_runs(runs_root, sweeps_root):
        ds = (run.get("config") or {}).get("dataset")
        if not ds or not _same_folder(ds, dataset_path):
            continue
        used.append(run["name"])
        sweep = run.get("sweep")
        if sweep and sweep not in sweep_states:
            sweep_states[sweep] = run_index.sweep_state(sweeps_root / sweep).get("state")
        if run.get("state") in folder.IN_PROGRESS or (
            sweep and sweep_states[sweep] in run_index.SWEEP_IN_PROGRESS and run.get("state") not in SWEEP_RUN_DONE
        ):
            active.append(run["name"])
            if sweep and sweep not in sweeps:
                sweeps.append(sweep)
    return {"runs": used, "active": active, "sweeps": sweeps}


SWEEP_RUN_DONE = ("finished", "diverged")  # a sweep's driver trains its other runs (again)


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def describe_dataset_usage(usage: dict) -> str:
    """One sentence for a delete confirmation: what stops working when the dataset is gone."""
    used = usage["runs"]
    if not used:
        return "No run uses it."
    names = _names(used)
    return (
        f"Used by {len(used)} run{'s' if len(used) != 1 else ''} ({names}): their reconstructions and "
        "embedding will no longer open (their curves and numbers stay)."
    )


def active_block(usage: dict) -> str | None:
    """Why the dataset cannot be deleted now (a run trains on it), or None."""
    if not usage["active"]:
        return None
    names = _names(usage["active"])
    sweeps = usage.get("sweeps") or []
    return (
        f"run{'s' if len(usage['active']) != 1 else ''} {names} {'is' if len(usage['active']) == 1 else 'are'} "
        "training on it (or waiting to); stop them or wait until they end, then delete it"
        + (
            f" (sweep{'s' if len(sweeps) != 1 else ''} {_names(sweeps)}: stop {'it' if len(sweeps) == 1 else 'them'} on "
            "the Sweeps page; a sweep that is only planned trains when started: delete its folder under sweeps/ "
            "if it will not run)"
            if sweeps
            else ""
        )
    )


def delete_dataset(path, datasets_root, runs_root) -> None:
    """Delete a dataset folder unless the lab is read-only or an active run uses it."""
    require_writable(f"delete dataset {Path(path).name}")
    root = Path(runs_root)
    with launcher._locked(root):
        block = active_block(dataset_usage(path, root))
        if block:
            raise UserError(f"dataset {Path(path).name} cannot be deleted: {block}")
        datasets.delete_dataset(path, root=datasets_root)
