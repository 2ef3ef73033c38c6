"""Where a sweep run's wall time goes: process start + imports, building + tracing, the steps,
per-epoch snapshots / validation / checkpoints, evaluation (by stage).

    nice -n 15 python bench/profile_sweep_run.py --data DATASET [--epochs 15] [--engine per-run|grouped] [--seeds 4]

`per-run`: one run through today's path (vae.training.train.train_run + evaluate_run quick), as a
sweep worker runs it. `grouped`: `--seeds` runs through vae.sweeps.grouped (one process, one grouped
model, the fast evaluation). Prints JSON: seconds per part and each part's share.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def import_seconds() -> float:
    """A new Python process importing what a trainer imports (median of 3)."""
    code = "import vae.training.train, vae.training.evaluate"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True,
        )
        times.append(time.perf_counter() - t0)
    return sorted(times)[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--engine", default="per-run", choices=("per-run", "grouped"))
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = {"engine": args.engine, "epochs": args.epochs, "threads": args.threads, "load_before": os.getloadavg()}
    out["process_start_and_imports_s"] = round(import_seconds(), 2)

    t0 = time.perf_counter()
    from vae.sweeps import sweep
    from vae.training import train

    out["in_process_import_s"] = round(time.perf_counter() - t0, 2)
    home = Path(tempfile.mkdtemp(prefix="prof"))
    n = 1 if args.engine == "per-run" else args.seeds
    sweep_dir = sweep.plan_sweep(home / "sw", args.data, {}, seeds=n, fixed={"epochs": args.epochs})
    runs = [sweep.run_dir_of(sweep_dir, r) for r in sweep.read_sweep(sweep_dir)["runs"]]

    snap_t = []
    real_snapshot = train.save_snapshot

    def timed_snapshot(*a, **k):
        t = time.perf_counter()
        r = real_snapshot(*a, **k)
        snap_t.append(time.perf_counter() - t)
        return r

    train.save_snapshot = timed_snapshot
    stages: dict = {}
    last = [None, time.perf_counter()]

    def progress(stage, fraction):
        now = time.perf_counter()
        if last[0] is not None:
            stages[last[0]] = stages.get(last[0], 0.0) + now - last[1]
        last[0], last[1] = stage, now

    t0 = time.perf_counter()
    if args.engine == "per-run":
        from vae.training.evaluate import evaluate_run

        train.train_run(runs[0])
        t_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        evaluate_run(runs[0], generator_metrics=False, progress=progress)
        progress("end", 1.0)
        t_eval = time.perf_counter() - t1
    else:
        from vae.sweeps import grouped

        timings = grouped.train_group(runs, evaluate="quick")
        t_train, t_eval = timings["train_s"], timings["evaluate_s"]
        stages = timings.get("evaluate_stages", {})
        snap_t = timings.get("epoch_end_s", [])
    total = time.perf_counter() - t0
    rows = [json.loads(x) for r in runs for x in (r / "metrics.jsonl").read_text().splitlines()]
    batches = [r for r in rows if r["kind"] == "batch"]
    first = min(r["time"] for r in batches)
    speeds = sorted(r["images_per_s"] for r in batches if "images_per_s" in r)
    out.update(
        {
            "runs": n,
            "train_s": round(t_train, 2),
            "evaluate_s": round(t_eval, 2),
            "total_s": round(total, 2),
            "first_batch_s (build+trace)": round(first, 2),
            "epoch_end_s_total (snapshot+analysis+checkpoint)": round(sum(snap_t), 2),
            "median_images_per_s (per run)": speeds[len(speeds) // 2] if speeds else None,
            "evaluate_stages_s": {k: round(v, 2) for k, v in stages.items()},
            "load_after": os.getloadavg(),
        }
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
