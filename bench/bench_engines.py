"""The sweep engines head to head, in one script: runs per hour, the same answers, the share of bf16 peak.

    nice -n 15 python bench/bench_engines.py [--n 5045] [--epochs 15] [--seeds 10] [--grid gamma=0,1e-2] [--group-size 5]
    nice -n 15 python bench/bench_engines.py --order baseline@c864a9b:per-run,per-run   # an older commit's engine

Full size (issue 25): `python bench/bench_engines.py --seeds 10 --epochs 15` (seed-exact with the hole, 64x64,
default network, evaluated quick; about 2 x 20 runs).

Arms, back to back on the same dataset and the same planned sweep:
- per-run:  `python -m vae sweep --engine per-run ...` (one run per Ray task, 1 thread, 2 at a time);
- grouped:  `python -m vae sweep --engine grouped ...` (a setting's seeds as one SeedGroup per task);
- LABEL@COMMIT:ENGINE: the same sweep by the code of an earlier commit of this repository (`git archive` of
  COMMIT into the bench's folder, run from there): today's code against the code before a change, in one script.
Reported: each arm's wall time and runs per hour, their ratio; for every setting and metric the mean
with a 95% t-interval over seeds in each arm, and whether each arm's mean lies in the other's interval;
the bf16 matmul peak of this machine (4096^2, median of 5) and a default run's training GFLOP/s (median
images/s of its batch lines x the network's training FLOPs per image) as a share of it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
METRICS = (
    "eval_factor_alignment",
    "eval_mig",
    "eval_dci_disentanglement",
    "eval_total_correlation",
    "val_recon",
    "eval_hole_ratio",
)


def matmul_peak_gflops(dtype: str = "bfloat16", n: int = 4096, threads: int = 0) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    f = tf.function(lambda x: tf.matmul(x, x))
    f(a).numpy()
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        f(a).numpy()
        ts.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(ts) / 1e9


def train_flops_per_image(arch: str = "burgess", size: int = 64, latent: int = 3) -> float:
    """Multiply-adds x 2 of the forward pass (convolutions, transposed convolutions, dense), x 3 for training."""
    import keras

    from vae.model.networks import build_vae

    m = build_vae(arch, size, latent)
    flops = 0
    for net in (m.encoder, m.decoder):
        for layer in net.layers:
            w = [v for v in layer.weights if len(v.shape) >= 2]
            if not w:
                continue
            k = w[0].shape
            if isinstance(layer, keras.layers.Dense):
                flops += 2 * k[0] * k[1]
            elif len(k) == 4:
                out = layer.output.shape
                inp = layer.input.shape
                if "Transpose" in type(layer).__name__ or type(layer).__name__ == "ConvTranspose":
                    flops += 2 * inp[1] * inp[2] * k[0] * k[1] * k[2] * k[3]
                else:
                    flops += 2 * out[1] * out[2] * k[0] * k[1] * k[2] * k[3]
    return 3.0 * flops


def interval(values):
    from scipy import stats

    v = [float(x) for x in values if x not in ("", None)]
    if len(v) < 2:
        return (v[0] if v else float("nan"), float("nan"), float("nan"))
    m, s = statistics.mean(v), statistics.stdev(v)
    h = float(stats.t.ppf(0.975, len(v) - 1)) * s / len(v) ** 0.5
    return m, m - h, m + h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5045, help="draws of seed-exact (at most 5000 + the hole's)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--grid", default="gamma=0,1e-2")
    ap.add_argument("--group-size", type=int, default=5)
    ap.add_argument("--order", default="per-run,grouped")
    ap.add_argument(
        "--reuse",
        metavar="HOME",
        help="analyse the sweeps an earlier run of this script left in HOME "
        "(its per-arm JSON lines give the walls: --walls)",
    )
    ap.add_argument("--walls", default="", help="with --reuse: per-run=SECONDS,grouped=SECONDS")
    args = ap.parse_args()
    walls = {k: float(v) for k, v in (w.split("=") for w in args.walls.split(",") if w)}
    home = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="beng"))
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(ROOT),
        "VAE_LAB_HOME": str(home),
        "RAY_TMPDIR": str(home / "ray"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    (home / "ray").mkdir(exist_ok=True)
    py = [sys.executable, "-m", "vae"]
    data = home / "datasets" / "seed-exact-hole"
    gen = py + ["generate", "--preset", "seed-exact", "--hole", "--size", "64", "--out", str(data)]
    if args.n < 5045:
        gen += ["--n", str(args.n)]
    if not args.reuse:
        subprocess.run(gen, check=True, env=env, cwd=ROOT, capture_output=True)
    out = {
        "args": vars(args),
        "cpu": subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True)
        .stdout.split(":")[-1]
        .strip(),
        "cores": os.cpu_count(),
        "load_before": os.getloadavg(),
        "arms": {},
    }
    rows = {}
    for arm in args.order.split(","):
        engine, code = arm, ROOT
        if "@" in arm:
            label, rest = arm.split("@", 1)
            commit, engine = rest.split(":", 1) if ":" in rest else (rest, "per-run")
            code = home / "code" / label
            if not code.exists():
                code.mkdir(parents=True)
                archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
                subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
            out.setdefault("commits", {})[label] = subprocess.run(
                ["git", "rev-parse", commit], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        arm_env = {**env, "PYTHONPATH": str(code)}
        sweep_dir = home / "sweeps" / arm.replace("@", "-").replace(":", "-")
        cmd = py + [
            "sweep",
            "--data",
            str(data),
            "--out",
            str(sweep_dir),
            "--grid",
            args.grid,
            "--seeds",
            str(args.seeds),
            "--epochs",
            str(args.epochs),
            "--engine",
            engine,
            "--group-size",
            str(args.group_size),
            "--quiet",
        ]
        t0 = time.perf_counter()
        proc = (
            subprocess.run(cmd, env=arm_env, cwd=code, capture_output=True, text=True)
            if not args.reuse
            else subprocess.CompletedProcess(cmd, 0)
        )
        wall = walls[arm] if args.reuse else time.perf_counter() - t0
        if proc.returncode:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{arm} sweep failed")
        with open(sweep_dir / "results.csv") as f:
            rows[arm] = list(csv.DictReader(f))
        n = len(rows[arm])
        speeds = []
        for r in rows[arm]:
            for line in (sweep_dir / "runs" / r["run"] / "metrics.jsonl").read_text().splitlines():
                d = json.loads(line)
                if d.get("kind") == "batch" and "images_per_s" in d:
                    speeds.append(d["images_per_s"])
        out["arms"][arm] = {
            "wall_s": round(wall, 1),
            "runs": n,
            "runs_per_hour": round(3600 * n / wall, 1),
            "median_images_per_s_per_run": statistics.median(speeds) if speeds else None,
            "load_after": os.getloadavg(),
        }
        print(json.dumps({arm: out["arms"][arm]}), flush=True)
    a, b = args.order.split(",")[:2]
    out["ratio_runs_per_hour"] = round(out["arms"][b]["runs_per_hour"] / out["arms"][a]["runs_per_hour"], 2)
    key = args.grid.split("=")[0]
    compare, agree = {}, True
    for value in sorted({r[key] for r in rows[a]}):
        for metric in METRICS:
            ia = interval([r.get(metric) for r in rows[a] if r[key] == value])
            ib = interval([r.get(metric) for r in rows[b] if r[key] == value])
            ok = bool((ib[1] <= ia[0] <= ib[2] and ia[1] <= ib[0] <= ia[2]) or ia[0] == ib[0])
            agree = agree and (ok or any(x != x for x in ia + ib))
            compare[f"{key}={value} {metric}"] = {
                a: [round(x, 5) for x in ia],
                b: [round(x, 5) for x in ib],
                "each mean in the other's interval": ok,
            }
    out["equivalence"] = compare
    out["all_means_within_intervals"] = agree
    os.environ["TF_NUM_INTRAOP_THREADS"] = "2"
    peak = matmul_peak_gflops("bfloat16")
    fp = train_flops_per_image()
    out["bf16_matmul_peak_gflops"] = round(peak, 1)
    out["train_mflop_per_image"] = round(fp / 1e6, 2)
    for engine, arm in out["arms"].items():
        if arm["median_images_per_s_per_run"]:
            g = arm["median_images_per_s_per_run"] * fp / 1e9
            arm["gflops_per_run"] = round(g, 1)
            arm["share_of_bf16_peak_per_run"] = round(g / peak, 3)
    out["load_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
