"""The training step alone: one default model against seed groups of K, in one process, and the bf16 peak.

    nice -n 15 python bench/bench_group_step.py [--groups 1,2,4] [--steps 20] [--threads 2]

For each K: a SeedGroup of K default VAEs (burgess, 64x64, batch 128, mixed_bfloat16) trains `--steps`
steps on random uint8 images (after 3 warm-up steps: tracing excluded), alternating the arms, 3 repeats;
reported: images/s over all seeds (median), the speed-up per image against K = 1, and GFLOP/s as a
share of this machine's bf16 matmul peak (4096^2 matmul, median of 5, same process and threads).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", default="1,2,4")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.threads)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_engines import matmul_peak_gflops, train_flops_per_image

    from vae.runs.config import TrainConfig
    from vae.training import grouped

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    out = {"threads": args.threads, "steps": args.steps, "load_before": os.getloadavg()}
    fp = train_flops_per_image()
    out["train_mflop_per_image"] = round(fp / 1e6, 2)
    rng = np.random.default_rng(0)
    groups = [int(k) for k in args.groups.split(",")]
    models, data = {}, {}
    for k in groups:
        cfgs = [TrainConfig(dataset="x", seed=s) for s in range(k)]
        models[k] = grouped.build_group(cfgs, 4096)
        data[k] = rng.integers(0, 256, size=(128 * args.steps, k, 64, 64), dtype=np.uint8)
        models[k].fit(data[k][: 128 * 3], batch_size=128, epochs=1, verbose=0)  # trace
    times = {k: [] for k in groups}
    for _ in range(args.repeats):
        for k in groups:
            t = time.perf_counter()
            models[k].fit(data[k], batch_size=128, epochs=1, verbose=0, shuffle=False)
            times[k].append(time.perf_counter() - t)
    peak = matmul_peak_gflops("bfloat16")
    out["bf16_matmul_peak_gflops"] = round(peak, 1)
    base = None
    for k in groups:
        ips = k * 128 * args.steps / statistics.median(times[k])
        base = base or ips  # the first arm (K = 1)
        g = ips * fp / 1e9
        out[f"K={k}"] = {
            "images_per_s": round(ips, 1),
            "images_per_s_vs_first": round(ips / base, 2),
            "gflops": round(g, 1),
            "share_of_bf16_peak": round(g / peak, 3),
            "seconds": [round(t, 2) for t in times[k]],
        }
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
