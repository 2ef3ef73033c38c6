"""Cost of the measures on a seed-punctured-sized split (4,330 training / 213 test codes, d = 3, two
continuous factors binned into 20): DCI at disentanglement_lib's settings against the fast setting (the
ratio in one script), the factor alignment (global + local), cheap_metrics (per epoch) and the hole's
thin-plate-spline interpolation. Medians of a few repeats; the machine is shared, so read the ratios.

    python bench/bench_measures.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vae.measures.analysis import factor_alignment, hole_interpolation  # noqa: E402
from vae.measures.metrics import DCI_SETTINGS, cheap_metrics, dci, discretize_factors  # noqa: E402


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main():
    rng = np.random.default_rng(0)
    f = np.column_stack([rng.uniform(0.5, 2.0, 5000), rng.uniform(0.0, 2.0, 5000)])
    u = (f - f.min(0)) / np.ptp(f, 0)
    codes = np.column_stack([u[:, 0] + 0.3 * u[:, 1], np.sin(2 * u[:, 0]) * u[:, 1], u[:, 1]]) + 0.02 * rng.normal(
        size=(5000, 3)
    )
    hole = np.hypot(f[:, 0] - 1.25, f[:, 1] - 1.0) <= 0.3
    tr, te = np.flatnonzero(~hole)[:4330], np.flatnonzero(~hole)[4330:4543]
    bins = discretize_factors(f[tr])
    ytr, yte = bins["labels"], discretize_factors(f[te], reference=bins)["labels"]
    fast = {k: v for k, v in DCI_SETTINGS["fast"].items() if k != "label"}
    rows = {
        "dci reference (100 stages, all 4330)": timed(lambda: dci(codes[tr], ytr, codes[te], yte), 1),
        "dci fast (20 stages, 2000)": timed(lambda: dci(codes[tr], ytr, codes[te], yte, **fast), 3),
        "factor_alignment (global + local)": timed(lambda: factor_alignment(codes[tr], f[tr]), 5),
        "factor_alignment (global only)": timed(lambda: factor_alignment(codes[tr], f[tr], local=False), 5),
        "cheap_metrics (per epoch)": timed(lambda: cheap_metrics(codes[tr], f[tr], "train"), 5),
        "hole_interpolation": timed(
            lambda: hole_interpolation(
                codes[tr], f[tr], codes[np.r_[np.flatnonzero(hole), te]], f[np.r_[np.flatnonzero(hole), te]]
            ),
            3,
        ),
    }
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"load average {' '.join(load)}")
    for name, sec in rows.items():
        print(f"{name:40s} {sec:8.3f} s")
    ref, fst = rows["dci reference (100 stages, all 4330)"], rows["dci fast (20 stages, 2000)"]
    print(f"DCI reference / fast: {ref / fst:.1f}x")


if __name__ == "__main__":
    main()
