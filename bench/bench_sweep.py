"""The sweep engine's cost: a sweep of N default runs on Ray against the same runs trained one after
another by the standalone trainer, Ray's start-up time and the per-run overhead.

    nice -n 10 python bench/bench_sweep.py [--runs 12] [--epochs 8] [--size 64]   # prints JSON

Arms (same dataset, same configs: default network, seeds 0..N-1):
- serial: `python -m vae train --data D --out R --epochs E --seed i` for each run, one after
  another (the trainer uses every core);
- sweep:  `python -m vae sweep --data D --out S --seeds N --epochs E --evaluate none` on a local Ray
  instance: one run per core (1 CPU, 1 thread each, `--workers` = cores).
Reported: both totals and their ratio (sweep / serial), Ray's start-up (ray.init) from the sweep's
status history, and the per-run overhead (a task's wall time minus its trainer's own time from
status.json's started..finished, median). Load (`uptime`) before and after, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--preset", default="seed-full")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bsw"))
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(ROOT),
        "VAE_LAB_HOME": str(home),
        "RAY_TMPDIR": str(home / "ray"),
    }
    (home / "ray").mkdir()
    py = [sys.executable, "-m", "vae"]
    data = home / "datasets" / args.preset
    subprocess.run(
        py + ["generate", "--preset", args.preset, "--size", str(args.size), "--out", str(data)],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    out = {
        "runs": args.runs,
        "epochs": args.epochs,
        "size": args.size,
        "preset": args.preset,
        "cores": os.cpu_count(),
        "load_before": _uptime(),
    }

    t0 = time.perf_counter()
    serial_train = []
    for i in range(args.runs):
        rd = home / "runs" / f"serial-{i}"
        subprocess.run(
            py
            + [
                "train",
                "--data",
                str(data),
                "--out",
                str(rd),
                "--epochs",
                str(args.epochs),
                "--seed",
                str(i),
                "--quiet",
            ],
            check=True,
            env=env,
            cwd=ROOT,
            capture_output=True,
        )
        st = json.loads((rd / "status.json").read_text())
        serial_train.append(st["finished"] - st["started"])
    out["serial_s"] = time.perf_counter() - t0
    out["load_mid"] = _uptime()

    sweep_dir = home / "sweeps" / "bench"
    cmd = py + [
        "sweep",
        "--data",
        str(data),
        "--out",
        str(sweep_dir),
        "--seeds",
        str(args.runs),
        "--epochs",
        str(args.epochs),
        "--evaluate",
        "none",
    ]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True)
    out["sweep_s"] = time.perf_counter() - t0
    out["ratio_sweep_over_serial"] = out["sweep_s"] / out["serial_s"]
    status = json.loads((sweep_dir / "status.json").read_text())
    hist = status["history"][-1]
    out.update(ray_init_s=hist["ray_init_s"], workers=hist["workers"], cpus_per_run=hist["cpus_per_run"])
    overheads, trains = [], []
    for name, rec in status["runs"].items():
        st = json.loads((sweep_dir / "runs" / name / "status.json").read_text())
        trains.append(st["finished"] - st["started"])
        overheads.append(rec["wall_s"] - trains[-1])
    out["per_run_overhead_s_median"] = statistics.median(overheads)
    out["sweep_run_train_s_median"] = statistics.median(trains)
    out["serial_run_train_s_median"] = statistics.median(serial_train)
    out["runs_per_node"] = len({r.get("node") for r in status["runs"].values()}) and out["workers"]
    out["load_after"] = _uptime()
    print(json.dumps(out, indent=2))
    subprocess.run(["rm", "-rf", str(home)])


if __name__ == "__main__":
    main()
