"""The disentanglement methods side by side: speed of one training step, and MIG / DCI / total correlation
after a fixed small budget, with the papers' reductions and usual hyperparameters.

Two parts, both in this one process so the ratios share the machine's load:
1. step cost: the median training-step time of every method (burgess net, 64x64, batch 64, 10 latents,
   mixed bfloat16), each measured twice in interleaved order, as a ratio to the beta-VAE step;
   FactorVAE with the paper's 6 x 1000 discriminator and with 6 x 256.
2. disentanglement: each method on `dsprites` (10 latents) and `seed-punctured` (3 latents) at 64x64,
   3 seeds, a fixed budget of BUDGET_STEPS steps of batch 64 (papers' reduction, learned variance,
   lr 5e-4, no study term: gamma = 0). Runs go seed by seed so a cut-short benchmark still covers every
   method. Metrics on the validation codes: MIG (20 bins), DCI with the reference 100 boosting stages
   on at most 1,000 training codes (and the validation codes as test set), the Gaussian total
   correlation of the means, images/s of training (median of the logged batch lines).

    nice -n 10 python bench/bench_methods.py [--out bench/methods_runs] [--budget 600] [--seeds 3]
    python bench/bench_methods.py --report   # the markdown tables from bench/methods_results.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vae.data import datasets
from vae.data.presets import preset_spec  # noqa: E402
from vae.measures import metrics
from vae.measures.analysis import factor_alignment  # noqa: E402
from vae.model import methods
from vae.runs import folder  # noqa: E402
from vae.runs.config import TrainConfig  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "methods_results.jsonl"
# The papers' usual values (disentanglement_lib's unsupervised study; Burgess et al.; Kim & Mnih; Chen et al.).
SETTINGS = {
    "beta-vae": dict(beta=4.0, method_params={}),
    "annealed": dict(beta=1.0, method_params={"gamma_c": 1000.0, "c_max": 25.0}),  # c_steps: the budget
    "factor-vae": dict(beta=1.0, method_params={"gamma_tc": 10.0}),
    "beta-tcvae": dict(beta=1.0, method_params={"beta_tc": 6.0}),
    "dip-vae-i": dict(beta=1.0, method_params={"lambda_od": 10.0, "lambda_d_factor": 10.0}),
    "dip-vae-ii": dict(beta=1.0, method_params={"lambda_od": 10.0, "lambda_d_factor": 1.0}),
}
DATASETS = {"dsprites": dict(n=10_000, latent_dim=10), "seed-punctured": dict(n=6_000, latent_dim=3)}


def step_costs(repeats: int = 2, steps: int = 12, only: tuple | None = None) -> dict:
    import keras

    from vae.model.networks import build_vae
    from vae.training.train import _fit_data

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    x = (np.random.default_rng(0).random((64 * steps, 64, 64)) > 0.7).astype(np.uint8) * 255
    variants = [(m, SETTINGS[m]["method_params"]) for m in SETTINGS] + [
        ("factor-vae", {"gamma_tc": 10.0, "disc_units": 256})
    ]
    if only:
        variants = [v for v in variants if v[0] in only]
    times: dict[str, list] = {}

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            self.t = []

        def on_train_batch_end(self, batch, logs=None):
            self.t.append(time.perf_counter())

    for _ in range(repeats):
        for name, params in variants:
            keras.utils.set_random_seed(0)
            m = build_vae(
                "burgess",
                64,
                10,
                "learned",
                beta=1.0,
                gamma=0.0,
                method=name,
                method_params=params,
                reduction="papers",
                dataset_size=len(x),
            )
            m.compile(keras.optimizers.Adam(1e-4))
            m.optimizer.build(m.trainable_variables)
            clock = Clock()
            m.fit(
                **_fit_data(TrainConfig(dataset="x", batch_size=64), x, None, None, steps),
                epochs=3,
                callbacks=[clock],
                verbose=0,
            )
            label = name + ("" if params.get("disc_units", 1000) == 1000 else f" (D {params['disc_units']} units)")
            times.setdefault(label, []).extend(np.diff(clock.t)[steps:].tolist())  # epochs 2-3
    base = float(np.median(times["beta-vae"]))
    return {
        k: {
            "median_step_ms": round(1000 * float(np.median(v)), 1),
            "ratio_to_beta_vae": round(float(np.median(v)) / base, 2),
        }
        for k, v in times.items()
    }


def make_datasets(root: Path) -> dict:
    out = {}
    for name, d in DATASETS.items():
        path = root / "datasets" / name
        if not (path / "dataset.json").exists():
            datasets.write_dataset(preset_spec(name, n=d["n"], image_size=64, seed=0), path)
        out[name] = path
    return out


def evaluate(run_dir: Path, ds_path: Path, seed: int) -> dict:
    from vae.model.inference import encode, load_run_model

    ds = datasets.load_dataset(ds_path)
    model = load_run_model(run_dir)
    split = np.asarray(ds.columns["split"]).astype(str)
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "validation")
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.choice(tr, min(1000, len(tr)), replace=False))
    va = va[:2000]
    images = np.asarray(ds.images)
    mu_tr, mu_va = encode(model, images[tr]), encode(model, images[va])
    factors = np.column_stack([np.asarray(ds.columns[f], dtype=np.float64) for f in ds.factor_names])
    binned = metrics.discretize_factors(factors[np.concatenate([tr, va])], num_bins=20)
    labels = binned["labels"] if isinstance(binned, dict) and "labels" in binned else binned
    y_tr, y_va = labels[: len(tr)], labels[len(tr) :]
    dci = metrics.dci(mu_tr, y_tr, mu_va, y_va, n_estimators=100, max_train=1000, seed=seed)
    out = {
        "mig": metrics.mig(mu_va, y_va)["score"],
        "dci_disentanglement": dci["disentanglement"],
        "dci_completeness": dci["completeness"],
        "dci_informativeness_test": float(np.mean(dci.get("informativeness_test", dci.get("acc_test", np.nan)))),
        "gaussian_tc": metrics.gaussian_total_correlation(mu_va),
    }
    # as `python -m vae evaluate` does: the training codes against every factor (the dashboard's number)
    out["factor_alignment"] = factor_alignment(mu_tr, factors[tr])["score"]
    return out


def train_one(root: Path, ds_name: str, ds_path: Path, method: str, seed: int, budget: int) -> dict:
    from vae.training.train import train_run

    n_train = len(datasets.load_dataset(ds_path).indices("train"))
    steps_per_epoch = math.ceil(n_train / 64)
    epochs = max(1, round(budget / steps_per_epoch))
    s = SETTINGS[method]
    params = dict(s["method_params"])
    if method == "annealed":
        params["c_steps"] = epochs * steps_per_epoch  # C reaches C_max at the end of this short budget
    cfg = TrainConfig(
        dataset=str(ds_path),
        image_size=64,
        latent_dim=DATASETS[ds_name]["latent_dim"],
        variance="learned",
        method=method,
        method_params=params,
        reduction="papers",
        beta=s["beta"],
        gamma=0.0,
        batch_size=64,
        lr=5e-4,
        epochs=epochs,
        seed=seed,
        log_every=10,
        snapshot_max_codes=500,
    ).validate(train_size=n_train)
    run_dir = folder.write_run_config(root / "runs" / f"{ds_name}-{method}-s{seed}", cfg)
    t0 = time.time()
    status = train_run(run_dir)
    wall = time.time() - t0
    speeds = [r["images_per_s"] for r in folder.read_metrics(run_dir, "batch") if "images_per_s" in r]
    row = {
        "dataset": ds_name,
        "method": method,
        "seed": seed,
        "state": status["state"],
        "epochs": epochs,
        "steps": epochs * steps_per_epoch,
        "train_wall_s": round(wall, 1),
        "images_per_s": float(np.median(speeds)) if speeds else None,
    }
    if status["state"] == "finished":
        row.update(evaluate(run_dir, ds_path, seed))
    return row


def report(rows: list[dict], costs: dict | None) -> str:
    first = {}
    for r in rows:  # one row per (dataset, method, seed): the first one written
        first.setdefault((r["dataset"], r["method"], r["seed"]), r)
    rows = list(first.values())
    lines = []
    if costs:
        lines += ["| method | median step (ms) | x beta-VAE step |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['median_step_ms']} | {v['ratio_to_beta_vae']} |" for k, v in costs.items()]
        lines.append("")
    keys = ("mig", "dci_disentanglement", "factor_alignment", "gaussian_tc", "images_per_s")
    for ds in DATASETS:
        steps = sorted({r["steps"] for r in rows if r["dataset"] == ds})
        lines += [
            f"**{ds}** (mean ± sd over seeds; n = number of finished seeds; {'/'.join(map(str, steps))} "
            "training steps of batch 64 per run; images/s of training from the step-cost table)",
            "",
            "| method | n | MIG | DCI disentanglement | factor alignment | Gaussian TC of μ | images/s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for m in SETTINGS:
            sel = [r for r in rows if r["dataset"] == ds and r["method"] == m and r.get("state") == "finished"]
            cells = []
            for k in keys:
                vals = [r[k] for r in sel if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
                if not vals:
                    cells.append("n/a")
                elif k == "images_per_s":
                    cells.append(f"{np.median(vals):,.0f}")
                else:
                    cells.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f}")
            if costs and m in costs:  # training speed from the quiet step-cost part, not the runs' own lines
                cells[-1] = f"{64000 / costs[m]['median_step_ms']:,.0f} ({costs[m]['ratio_to_beta_vae']:.2f}x step)"
            lines.append(f"| {methods.get(m).label} | {len(sel)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "methods_runs"))
    ap.add_argument("--budget", type=int, default=600, help="training steps of batch 64 per run")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", nargs="*", help="only the step costs of these methods (3 interleaved repeats)")
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS), help="a subset of the datasets")
    a = ap.parse_args()
    costs_path = HERE / "methods_step_costs.json"
    if a.report:
        rows = [json.loads(x) for x in RESULTS.read_text().splitlines()] if RESULTS.exists() else []
        costs = json.loads(costs_path.read_text()) if costs_path.exists() else None
        print(report(rows, costs))
        return
    print("load:", os.getloadavg(), flush=True)
    if a.speed_only:
        costs = step_costs(repeats=3, only=tuple(a.speed_only))
        (HERE / "methods_step_costs_factor.json").write_text(json.dumps({"load": os.getloadavg(), **costs}, indent=1))
        print(json.dumps(costs, indent=1), flush=True)
        return
    if not a.skip_speed:
        costs = step_costs()
        costs_path.write_text(json.dumps(costs, indent=1))
        print(json.dumps(costs, indent=1), flush=True)
    root = Path(a.out)
    paths = {k: v for k, v in make_datasets(root).items() if k in a.datasets}
    done = set()
    if RESULTS.exists():
        done = {(r["dataset"], r["method"], r["seed"]) for r in map(json.loads, RESULTS.read_text().splitlines())}
    for seed in range(a.seeds):
        for ds_name, ds_path in paths.items():
            for method in SETTINGS:
                if (ds_name, method, seed) in done:
                    continue
                row = train_one(root, ds_name, ds_path, method, seed, a.budget)
                row["load"] = round(os.getloadavg()[0], 2)
                with open(RESULTS, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
