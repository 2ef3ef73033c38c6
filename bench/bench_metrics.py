"""Time a full `evaluate_all` on 10,000 training codes (plus 5,000 test codes).

Target: under 30 s on the 2-core development machine for every latent size (3..10) with
the starfish's two continuous factors (a, b), binned into 20 bins, and for a dSprites-like
worst case (5 discrete factors of sizes 3, 6, 40, 32, 32: DCI's trees grow with the number
of classes); `cheap_metrics` (logged every epoch) should take milliseconds. The generator-based scores (FactorVAE, BetaVAE) are
not included: their cost is rendering and encoding images, which belongs to the model.

    python bench/bench_metrics.py
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vae.measures.metrics import cheap_metrics, evaluate_all  # noqa: E402

DSPRITES_SIZES = (3, 6, 40, 32, 32)


def synthetic_codes(n: int, latent_dim: int, family: str = "starfish", seed: int = 0):
    """Factors and codes that are a curved, mixed function of them plus noise.

    starfish: continuous a in [0.5, 2], b in [0, 2]; dsprites: integer labels of DSPRITES_SIZES.
    """
    rng = np.random.default_rng(seed)
    if family == "starfish":
        f = np.column_stack([rng.uniform(0.5, 2.0, n), rng.uniform(0.0, 2.0, n)])
    else:
        f = np.column_stack([rng.integers(0, s, n) for s in DSPRITES_SIZES])
    u = (f - f.min(axis=0)) / np.ptp(f, axis=0)
    sheet = np.column_stack([u, np.sin(2 * u[:, 0]) * u[:, 1]])
    mix = rng.normal(size=(sheet.shape[1], latent_dim))
    codes = sheet @ mix + 0.05 * rng.normal(size=(n, latent_dim))
    return codes, f


CASES = (("starfish", 3), ("starfish", 10), ("dsprites", 10))


def bench_metrics(cases=CASES, n_train: int = 10000, n_test: int = 5000, seed: int = 0) -> dict:
    """Seconds for evaluate_all (total and per metric) per (family, latent size), and cheap_metrics in ms."""
    figures = {"n_train": n_train, "n_test": n_test, "cpu_count": os.cpu_count(), "runs": {}}
    for family, d in cases:
        codes, f = synthetic_codes(n_train + n_test, d, family, seed)
        t = time.perf_counter()
        result = evaluate_all(codes[:n_train], f[:n_train], codes[n_train:], f[n_train:], seed=seed)
        total = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(20):
            cheap_metrics(codes[:n_train])
        cheap_ms = (time.perf_counter() - t) / 20 * 1000
        figures["runs"][f"{family} d={d}"] = {
            "evaluate_all_s": round(total, 2),
            "per_metric_s": {k: round(v, 3) for k, v in result["seconds"].items()},
            "cheap_metrics_ms": round(cheap_ms, 2),
            "mig": round(result["mig"]["score"], 3),
            "dci_disentanglement": round(result["dci"]["disentanglement"], 3),
        }
    figures["max_evaluate_all_s"] = max(r["evaluate_all_s"] for r in figures["runs"].values())
    figures["target_s"] = 30.0
    figures["within_target"] = figures["max_evaluate_all_s"] < figures["target_s"]
    return figures


if __name__ == "__main__":
    print(json.dumps(bench_metrics(), indent=2))
