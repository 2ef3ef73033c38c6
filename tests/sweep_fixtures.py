"""A planned sweep whose runs look trained and evaluated (no training), for page tests."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from vae.sweeps import sweep


def fake_finished_sweep(
    home: Path, dataset: Path, name: str = "gsweep", gammas=(0.0, 1e-3, 1e-2), seeds: int = 3, effect: float = 0.3
) -> Path:
    """γ x seeds, every run finished with an evaluation summary; MIG rises by `effect` at the largest γ."""
    out = sweep.plan_sweep(home / "sweeps" / name, dataset, {"gamma": list(gammas)}, seeds=seeds, fixed={"epochs": 1})
    doc = sweep.read_sweep(out)
    rng = np.random.default_rng(0)
    records = {}
    for run in doc["runs"]:
        rd = sweep.run_dir_of(out, run)
        g = run["settings"]["gamma"]
        mig = 0.2 + (effect if g == max(gammas) else 0.0) + 0.02 * rng.normal()
        (rd / "status.json").write_text(
            json.dumps(
                {
                    "state": "finished",
                    "pid": None,
                    "heartbeat": time.time(),
                    "started": 1.0,
                    "finished": 2.0,
                    "epoch": 1,
                    "epochs": 1,
                }
            )
        )
        (rd / "metrics.jsonl").write_text(
            json.dumps(
                {
                    "kind": "epoch",
                    "epoch": 1,
                    "val_loss": 0.3 + 0.01 * rng.normal(),
                    "val_recon": 0.25,
                    "val_kl": 2.0 + rng.normal(),
                }
            )
            + "\n"
        )
        (rd / "evaluation.json").write_text(
            json.dumps(
                {
                    "summary": {
                        "factor_alignment": 0.5 + 0.05 * rng.normal(),
                        "mig": mig,
                        "dci_disentanglement": mig / 2,
                        "total_correlation": 0.4 + 0.05 * rng.normal(),
                        "hole_recon_ratio": 1.2,
                        "chance": {"factor_alignment": {"mean": 0.42, "lo": 0.05, "hi": 0.85}},
                    }
                }
            )
        )
        records[run["name"]] = {"node": "node-a", "host": "h", "wall_s": 30.0, "attempts": 1}
    sweep.write_status(
        out,
        {
            "state": "finished",
            "message": f"all {len(doc['runs'])} runs finished and evaluated",
            "runs": records,
            "workers": 2,
        },
    )
    sweep.write_results(out)
    return out
