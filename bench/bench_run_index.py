"""Listing 500 runs: vae.runs.run_index (cached summaries) against vae.jobs.launcher.list_runs (reads every run),
and the server time of the pages that list runs, with 500 run folders on disk.

    python bench/bench_run_index.py [--runs 500] [--repeats 5]     # prints JSON

The run folders are written by the test suite's fake_run format (config.json, status.json, metrics.jsonl
with 15 epochs of batch and epoch lines, evaluation.json). Times are medians of `--repeats`; "cold" is a
fresh process cache with no .index.json, "index file" a fresh process cache reading .index.json,
"warm" the cache of an earlier call (a Streamlit rerun). Page times are AppTest runs of the page script
(the second and later runs: a rerun), which include building its table and figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_runs(home: Path, n: int) -> None:
    from vae.runs.config import TrainConfig

    runs = home / "runs"
    for i in range(n):
        d = runs / f"run-{i:04d}"
        d.mkdir(parents=True)
        cfg = TrainConfig(dataset=str(home / "datasets" / "none"), gamma=[0.0, 1e-4, 1e-3][i % 3], seed=i).to_dict()
        (d / "config.json").write_text(json.dumps({"format": "vae-lab-run", "format_version": 1, "config": cfg,
                                                   "dataset": {}, "created": 1e9 + i}))
        (d / "status.json").write_text(json.dumps({"state": "finished", "pid": None, "heartbeat": 1e9, "epoch": 15}))
        lines = []
        for e in range(1, 16):
            lines += [json.dumps({"kind": "batch", "epoch": e, "step": s, "loss": 0.3}) for s in range(5, 36, 5)]
            lines.append(json.dumps({"kind": "epoch", "epoch": e, "loss": 0.3, "val_loss": 0.31, "val_recon": 0.3,
                                     "alignment_score": 0.5, "total_correlation": 0.2}))
        (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        (d / "evaluation.json").write_text(json.dumps({"summary": {"mig": 0.1 * (i % 7), "alignment_score": 0.5},
                                                       "metrics": {"big": list(range(2000))}}))


def median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bri"))
    os.environ["VAE_LAB_HOME"] = str(home)
    os.environ["VAE_LAB_STANDBY"] = "0"
    write_runs(home, args.runs)
    from vae.data import datasets
    from vae.data import presets as data
    from vae.jobs import launcher as jobs
    from vae.runs import run_index

    datasets.write_dataset(data.preset_spec("seed-full", n=200, image_size=32), home / "datasets" / "tiny")

    def cold():
        run_index._CACHE.clear()
        (home / "runs" / run_index.INDEX_FILE).unlink(missing_ok=True)
        run_index.list_runs()

    def from_file():
        run_index._CACHE.clear()
        run_index.list_runs()

    out = {"runs": args.runs, "load": os.getloadavg()}
    out["jobs_list_runs_s"] = median_time(lambda: jobs.list_runs(home / "runs"), args.repeats)
    out["index_cold_s"] = median_time(cold, args.repeats)
    run_index.list_runs()
    out["index_from_file_s"] = median_time(from_file, args.repeats)
    out["index_warm_s"] = median_time(run_index.list_runs, args.repeats)
    out["ratio_jobs_over_warm"] = out["jobs_list_runs_s"] / out["index_warm_s"]

    from streamlit.testing.v1 import AppTest

    for name in ("compare", "embedding", "reconstructions", "train", "sweep"):
        at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=120)
        at.run()
        out[f"page_{name}_s"] = median_time(at.run, args.repeats)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    import shutil

    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
