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


def _evaluation(i: int) -> dict:
    """An evaluation.json of about the size the evaluator writes (summary, notes, per-factor matrices)."""
    return {
        "summary": {
            "mig": 0.1 * (i % 7),
            "factor_alignment": 0.5,
            "pca_alignment": 0.4,
            "dci_disentanglement": 0.3,
            "active_units": 3 - (i % 2),
            "collapsed": i % 2,
            "recon_loss_per_split": {"train": 0.2, "validation": 0.21},
        },
        "notes": {
            "modularity": "near 1 for any code when a factor has few values",
            "beta_vae": "accuracy at chance with 2 factors",
        },
        "metrics": {"big": {"values": list(range(6000))}},  # a metric is an object (or a number)
        "pixel_pca": {"components": [[0.01] * 200] * 20},
    }


def _write_run(d: Path, cfg: dict, i: int, snapshots: dict | None = None) -> None:
    d.mkdir(parents=True)
    (d / "config.json").write_text(
        json.dumps({"format": "vae-lab-run", "format_version": 1, "config": cfg, "dataset": {}, "created": 1e9 + i})
    )
    (d / "status.json").write_text(
        json.dumps(
            {
                "state": "finished",
                "pid": None,
                "heartbeat": 1e9,
                "epoch": 15,
                "epochs": 15,
                "started": 1e9,
                "finished": 1e9 + 60,
            }
        )
    )
    lines = []
    for e in range(1, 16):
        lines += [json.dumps({"kind": "batch", "epoch": e, "step": s, "loss": 0.3}) for s in range(5, 36, 5)]
        lines.append(
            json.dumps(
                {
                    "kind": "epoch",
                    "epoch": e,
                    "loss": 0.3,
                    "val_loss": 0.31 + 0.1 / e,
                    "val_recon": 0.3,
                    "alignment_score": 0.5,
                    "total_correlation": 0.2,
                }
            )
        )
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (d / "evaluation.json").write_text(json.dumps(_evaluation(i)))
    if snapshots:
        import numpy as np

        (d / "snapshots").mkdir()
        rng = np.random.default_rng(i)
        for e in range(1, 16):
            first = snapshots.get("validation", snapshots["train"])[:16]  # what the trainer reconstructs
            snap = {"recon_index": first, "recon": rng.uniform(size=(len(first), 32, 32)).astype(np.float32)}
            for split, ids in snapshots.items():
                snap[f"index_{split}"] = ids
                snap[f"mu_{split}"] = (
                    rng.normal(size=(len(ids), cfg["latent_dim"])) * [1.0, 0.5, 0.2][: cfg["latent_dim"]]
                ).astype(np.float32)
            np.savez_compressed(d / "snapshots" / f"epoch_{e:04d}.npz", **snap)


def write_runs(home: Path, n: int, dataset: Path | None = None, with_snapshots: int = 0, sweep_runs: int = 0) -> None:
    """`n` evaluated runs: `n - sweep_runs` under runs/, `sweep_runs` in one finished sweep; the
    newest `with_snapshots` runs under runs/ have 15 epoch snapshots of the dataset's splits."""
    from vae.runs.config import TrainConfig

    data = str(dataset or home / "datasets" / "none")
    ids = None
    if with_snapshots and dataset is not None:
        from vae.data.datasets import load_dataset

        ds = load_dataset(dataset)
        ids = {s: ds.indices(s) for s in ds.splits}
    plain = n - sweep_runs
    for i in range(plain):
        cfg = TrainConfig(dataset=data, gamma=[0.0, 1e-4, 1e-3][i % 3], seed=i).to_dict()
        _write_run(home / "runs" / f"run-{i:04d}", cfg, i, ids if i >= plain - with_snapshots else None)
    if sweep_runs:
        from vae.sweeps import sweep

        seeds = max(1, sweep_runs // 3)
        out = sweep.plan_sweep(
            home / "sweeps" / "bench", data, {"gamma": [0.0, 1e-3, 1e-2]}, seeds=seeds, fixed={"epochs": 15}
        )
        doc = sweep.read_sweep(out)
        for j, run in enumerate(doc["runs"]):
            rd = sweep.run_dir_of(out, run)
            cfg = json.loads((rd / "config.json").read_text())["config"]
            import shutil

            shutil.rmtree(rd)
            _write_run(rd, cfg, plain + j)
        sweep.write_status(
            out,
            {
                "state": "finished",
                "message": "finished",
                "workers": 2,
                "runs": {r["name"]: {"wall_s": 60.0, "attempts": 1} for r in doc["runs"]},
            },
        )
        sweep.write_results(out)


def median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _page(name: str):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bri"))
    os.environ["VAE_LAB_HOME"] = str(home)
    os.environ["VAE_LAB_STANDBY"] = "0"
    from vae.data import datasets
    from vae.data import presets

    tiny = home / "datasets" / "tiny"
    datasets.write_dataset(presets.preset_spec("seed-full", n=2000, image_size=32), tiny)
    write_runs(home, args.runs, dataset=tiny, with_snapshots=2, sweep_runs=min(30, args.runs // 10))
    from vae.jobs import launcher
    from vae.runs import run_index

    def cold():
        run_index._CACHE.clear()
        (home / "runs" / run_index.INDEX_FILE).unlink(missing_ok=True)
        run_index.list_runs()

    def from_file():
        run_index._CACHE.clear()
        run_index.list_runs()

    out = {"runs": args.runs, "load": os.getloadavg()}
    out["jobs_list_runs_s"] = median_time(lambda: launcher.list_runs(home / "runs"), args.repeats)
    out["index_cold_s"] = median_time(cold, args.repeats)
    run_index.list_runs()
    out["index_from_file_s"] = median_time(from_file, args.repeats)
    out["index_warm_s"] = median_time(run_index.list_runs, args.repeats)
    out["ratio_jobs_over_warm"] = out["jobs_list_runs_s"] / out["index_warm_s"]

    for name in ("home", "dataset", "train", "reconstructions", "embedding", "compare", "sweep"):
        t0 = time.perf_counter()
        at = _page(name)
        at.run()
        out[f"page_{name}_first_s"] = time.perf_counter() - t0  # a new session (imports already loaded)
        out[f"page_{name}_rerun_s"] = median_time(at.run, args.repeats)
        if at.exception:
            out[f"page_{name}_error"] = str(at.exception[0].message)[:200]
        if name == "embedding":  # switch between the two runs with snapshots
            names = [r["name"] for r in run_index.list_runs() if (Path(r["path"]) / "snapshots").is_dir()]
            ts = []
            for k in range(args.repeats):
                at.session_state["selected_run"] = names[k % 2]
                t0 = time.perf_counter()
                at.run()
                ts.append(time.perf_counter() - t0)
            out["page_embedding_switch_s"] = statistics.median(ts)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    import shutil

    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
