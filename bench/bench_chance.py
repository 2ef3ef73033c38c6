"""Every measure of a trained run beside its chance level under random rotations of the codes (issue 23).

For each run folder given: the training codes (latents.csv, written by `python -m vae evaluate`) are
rotated by `--rotations` Haar-random orthogonal matrices and each measure is recomputed: the median and
the 95th percentile of those are the chance level (what a code with the same shape, set at a random
angle to the latent axes, scores). Measures that do not change under rotation (hole error, active
units are not: see the output) are marked. numpy/scikit-learn only.

    nice -n 15 python bench/bench_chance.py RUN_DIR [RUN_DIR ...] --rotations 20
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae.base.fileio import jsonable  # noqa: E402
from vae.measures import analysis, metrics  # noqa: E402


def load(run: Path):
    rows = list(csv.DictReader(open(run / "latents.csv")))
    mu_cols = [c for c in rows[0] if c.startswith("mu_")]
    split = np.array([r["split"] for r in rows])
    mu = np.array([[float(r[c]) for c in mu_cols] for r in rows])
    ab = np.array([[float(r["a"]), float(r["b"])] for r in rows])
    return split, mu, ab


def measures(split, mu, ab, seed=0) -> dict:
    tr, va = split == "train", split == "validation"
    fa = analysis.factor_alignment(mu[tr], ab[tr], local=False, active=analysis.active_latents(mu[tr]))
    pca = analysis.pca_alignment(mu[tr])
    usage = metrics.latent_usage(mu[tr], num_factors=2)
    binned = metrics.discretize_factors(ab[tr], 20)
    bte = metrics.discretize_factors(ab[va], reference=binned)["labels"]
    out = {
        "factor_alignment": fa["score"],
        "pca_alignment": pca["score"],
        "pca_alignment_if_defined": pca["score_if_defined"],
        "mig": metrics.mig(mu[tr], binned["labels"])["score"],
        "modularity": metrics.modularity(mu[tr], binned["labels"])["score"],
        "sap_continuous": metrics.sap(mu[tr], ab[tr], mu[va], ab[va], continuous_factors=True)["score"],
        "dci_disentanglement": metrics.dci(mu[tr], binned["labels"], mu[va], bte, n_estimators=20, max_train=2000)[
            "disentanglement"
        ],
        "total_correlation": metrics.gaussian_total_correlation(mu[tr]),
        "active_units": usage["active_units"],
        "kl_total": usage["kl_total"],
        "entanglement_seed": analysis.entanglement_value(mu[tr], "seed"),
    }
    hole = split == "hole"
    if hole.any():
        ev = hole | va
        hi = analysis.hole_interpolation(mu[tr], ab[tr], mu[ev], ab[ev])
        out.update(hole_error=hi["hole_error"], hole_ring_error=hi["ring_error"])
    return out


def haar(d, rng):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--rotations", type=int, default=20)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    report = {}
    for run in map(Path, args.runs):
        split, mu, ab = load(run)
        actual = measures(split, mu, ab)
        rotated = [measures(split, mu @ haar(mu.shape[1], rng), ab) for _ in range(args.rotations)]
        rows = {}
        for key, value in actual.items():
            vals = np.array([r[key] for r in rotated if r[key] is not None], dtype=float)
            rows[key] = {
                "value": value,
                "chance_median": float(np.median(vals)) if vals.size else None,
                "chance_p95": float(np.percentile(vals, 95)) if vals.size else None,
                "chance_defined": int(vals.size),
            }
        report[run.name] = rows
        print(
            f"\n{run.name}  ({args.rotations} random rotations of the {int((split == 'train').sum())} training codes)"
        )
        print(f"{'measure':28s} {'value':>9s} {'chance med':>11s} {'chance p95':>11s}")
        for key, r in rows.items():
            fmt = lambda v: "None" if v is None else f"{v:.3f}"  # noqa: E731
            print(
                f"{key:28s} {fmt(r['value']):>9s} {fmt(r['chance_median']):>11s} {fmt(r['chance_p95']):>11s}"
                f"{'' if r['chance_defined'] == args.rotations else '  (defined in %d)' % r['chance_defined']}"
            )
    print(json.dumps(jsonable(report)))


if __name__ == "__main__":
    main()
