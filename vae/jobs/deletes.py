"""Deleting safely: what depends on an item, and no delete while something uses it.

A dataset is used by the runs trained on it (their config.json names its folder): once it is
gone their reconstructions and embedding no longer open. `dataset_usage` says which runs those
are; `delete_dataset` refuses while one of them is active (queued, waiting or training) and holds
the runs folder's lock while it checks and deletes, so a Start cannot pick the dataset up in
between (jobs.start_run takes the same lock).
"""

from __future__ import annotations

import os
from pathlib import Path

from vae.base.errors import UserError
from vae.base.safety import require_writable
from vae.data import datasets
from vae.jobs import launcher as jobs
from vae.runs import folder as runs


def _same_folder(a, b) -> bool:
    return os.path.realpath(str(a)) == os.path.realpath(str(b))


def dataset_usage(dataset_path, runs_root) -> dict:
    """The runs trained on a dataset: {"runs": [names], "active": [names of waiting, queued or running runs]}."""
    used, active = [], []
    for run in runs.list_runs(runs_root):
        ds = (run.get("config") or {}).get("dataset")
        if ds and _same_folder(ds, dataset_path):
            used.append(run["name"])
            if run.get("state") in runs.IN_PROGRESS:
                active.append(run["name"])
    return {"runs": used, "active": active}


def describe_dataset_usage(usage: dict) -> str:
    """One sentence for a delete confirmation: what stops working when the dataset is gone."""
    runs = usage["runs"]
    if not runs:
        return "No run uses it."
    names = ", ".join(runs[:5]) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")
    return (f"Used by {len(runs)} run{'s' if len(runs) != 1 else ''} ({names}): their reconstructions and "
            "embedding will no longer open (their curves and numbers stay).")


def active_block(usage: dict) -> str | None:
    """Why the dataset cannot be deleted now (a run trains on it), or None."""
    if not usage["active"]:
        return None
    names = ", ".join(usage["active"])
    return f"run{'s' if len(usage['active']) != 1 else ''} {names} {'is' if len(usage['active']) == 1 else 'are'} " \
           "training on it (or waiting to); stop them or wait until they end, then delete it"


def delete_dataset(path, datasets_root, runs_root) -> None:
    """Delete a dataset folder unless the lab is read-only or an active run uses it."""
    require_writable(f"delete dataset {Path(path).name}")
    root = Path(runs_root)
    with jobs._locked(root):
        block = active_block(dataset_usage(path, root))
        if block:
            raise UserError(f"dataset {Path(path).name} cannot be deleted: {block}")
        datasets.delete_dataset(path, root=datasets_root)
