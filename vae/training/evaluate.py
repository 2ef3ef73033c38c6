"""`python -m vae evaluate RUN`: encode every split, then measure (imports Keras).

Writes into the run folder:
- latents.csv      one row per image: id, split, the factors, transect, point, mu_1..mu_d
- evaluation.json  the disentanglement metrics (vae.measures.metrics.evaluate_all: training split as
                   train, validation as test), the factor alignment and PCA alignment of the
                   training codes (the same codes as the trainer's per-epoch numbers), the
                   transects' geometry, the hole as a zero-shot test (hole_interpolation) and
                   its reconstruction loss against the covered ring (punctured datasets), and
                   the pixel-PCA baseline. `summary` holds the headline numbers, `settings`
                   how they were computed, `notes` why some carry little information. The
                   numbers come from vae.measures.analysis / vae.measures.metrics (numpy, SciPy, scikit-learn);
                   this module only encodes and wires.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import numpy as np

from vae.base.errors import UserError
from vae.base.fileio import atomic_write_json, atomic_write_text, jsonable
from vae.base.safety import require_writable
from vae.measures import analysis, metrics
from vae.runs.folder import read_config


def _latents_csv(ds, mu: np.ndarray) -> str:
    cols = ["id", "split", *ds.factor_names, "transect", "point"]
    cols = [c for c in cols if c in ds.columns]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols + [f"mu_{k + 1}" for k in range(mu.shape[1])])
    columns = [np.asarray(ds.columns[c]) for c in cols]
    for i in range(mu.shape[0]):
        w.writerow([_cell(col[i]) for col in columns] + [f"{v:.6g}" for v in mu[i]])
    return buf.getvalue()


def _cell(v):
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{float(v):.6g}"
    return v


def evaluated_epoch(run_dir: Path) -> tuple[int | None, str]:
    """The epoch model.keras holds and the rule that chose it: the trainer's `best_epoch` (validation
    reconstruction + KL, one rule for every method) or, for runs trained before it was logged, the
    epoch of the lowest validation total loss (the earlier rule)."""
    from vae.runs.folder import read_metrics
    from vae.model.methods import SELECTION_RULE

    rows = read_metrics(run_dir, "epoch")
    if rows and rows[-1].get("best_epoch") is not None:
        return int(rows[-1]["best_epoch"]), SELECTION_RULE
    losses = [(r.get("val_loss", r.get("loss")), r.get("epoch")) for r in rows if r.get("val_loss", r.get("loss"))]
    if losses:
        return (
            int(min(losses)[1]),
            "validation total loss (the rule of runs trained before the one checkpoint rule: it includes the method's terms)",
        )
    return None, "unknown (no metrics.jsonl)"


def _logvar(model, images: np.ndarray, batch_size: int = 500):
    """log sigma^2 of each image's code for a learned-variance model; None for the study's constant."""
    if getattr(model, "variance", "constant") != "learned":
        return None
    from keras import ops

    out = [
        ops.convert_to_numpy(model.encode(np.asarray(images[i : i + batch_size]))[1])
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out).astype(np.float64)


# FactorVAE / BetaVAE budgets: disentanglement_lib's (10,000 votes / 10,000 pairs of 64-image
# batches) would render about 3 million images here; these keep `evaluate` near a minute on a
# 2-core CPU. The settings used are recorded in evaluation.json.
GENERATOR_SETTINGS = {
    "factor_vae": {"num_train": 300, "num_eval": 150, "num_variance_estimate": 2000},
    "beta_vae": {"num_train": 150, "num_eval": 75},
}


_PIXEL_PCA_CACHE: dict = {}  # the last dataset's pixel PCA: every run of a sweep on one dataset has the same one


def _pixel_pca(pixels: np.ndarray, factors: np.ndarray, names: list) -> dict:
    """analysis.pixel_pca, kept for the last images and factors given (a sweep's worker evaluates run after
    run on one dataset; the baseline depends on the images alone, so it is computed once per process)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for part in (np.ascontiguousarray(pixels), np.ascontiguousarray(factors)):
        h.update(str((part.shape, part.dtype.str)).encode())
        h.update(part.data)
    key = (h.hexdigest(), tuple(names))
    if key not in _PIXEL_PCA_CACHE:
        _PIXEL_PCA_CACHE.clear()
        _PIXEL_PCA_CACHE[key] = analysis.pixel_pca(pixels, factors, names)
    return _PIXEL_PCA_CACHE[key]


# What a sweep's run gets after training (vae.sweeps.engine, vae.training.grouped), by the sweep's `evaluate`:
# quick leaves out the two scores that render new images and fits DCI at the "sweep" setting (half the
# boosting stages at twice the learning rate: about half of the reference's CPU, per-setting means within the
# reference's intervals on the γ study, bench/quick_eval_equivalence.py); full is `python -m vae evaluate`'s.
SWEEP_EVALUATION = {
    "quick": {"generator_metrics": False, "dci_setting": "sweep"},
    "full": {"generator_metrics": True, "dci_setting": "reference"},
}


def sweep_evaluation(mode: str) -> dict:
    """evaluate_run's keyword arguments for a sweep's `evaluate` mode ("quick" or "full")."""
    if mode not in SWEEP_EVALUATION:
        raise UserError(f"a sweep evaluates {' or '.join(SWEEP_EVALUATION)} (or none); not {mode!r}")
    return dict(SWEEP_EVALUATION[mode])


CHANCE_ROTATIONS = 200  # random rotations per alignment measure (about 3 s for 2,000 codes on one core)


def chance_summary(chance: dict) -> dict:
    """evaluation.json's summary of the chance levels: {measure: {'mean', 'lo', 'hi'}}."""
    return {k: {s: v.get(s) for s in ("mean", "lo", "hi")} for k, v in chance.items()}


def add_chance_levels(run_dir, n: int = CHANCE_ROTATIONS, seed: int = 0) -> dict:
    """Add the chance levels to an evaluated run from its latents.csv (no model, no Keras): for runs
    evaluated before evaluate_run computed them. Rewrites evaluation.json (atomically); returns the levels."""
    run_dir = Path(run_dir)
    require_writable(f"add chance levels to run {run_dir.name} (it rewrites evaluation.json)")
    path = run_dir / "evaluation.json"
    if not path.exists() or not (run_dir / "latents.csv").exists():
        raise UserError(
            f"{run_dir.name} has no evaluation.json and latents.csv: evaluate it first "
            f"(python -m vae evaluate {run_dir})."
        )
    doc = json.loads(path.read_text())
    with open(run_dir / "latents.csv", newline="") as fh:
        train = [r for r in csv.DictReader(fh) if r.get("split") == "train"]
    names = [f for f in doc.get("factor_names", []) if train and f in train[0]]
    if not names:
        raise UserError(f"{run_dir.name}: latents.csv has no training codes with factors to rotate.")
    mu = np.array([[float(r[c]) for c in r if c.startswith("mu_")] for r in train])
    factors = np.array([[float(r[f]) for f in names] for r in train])
    max_train = (doc.get("settings") or {}).get("max_train", 10_000)
    if len(mu) > max_train:  # the same codes evaluate_run scores
        keep = np.sort(np.random.default_rng(seed).choice(len(mu), max_train, replace=False))
        mu, factors = mu[keep], factors[keep]
    doc["chance"] = jsonable(analysis.chance_levels(mu, factors, n=n, seed=seed))
    doc.setdefault("summary", {})["chance"] = chance_summary(doc["chance"])
    atomic_write_json(path, doc)
    return doc["chance"]


def evaluate_run(
    run_dir,
    max_train: int = 10_000,
    seed: int = 0,
    generator_metrics: bool = True,
    dci_setting: str = "reference",
    progress=None,
) -> dict:
    """Encode the run's dataset with its best model and write evaluation.json and latents.csv.

    `dci_setting`: a name in vae.measures.metrics.DCI_SETTINGS: "reference" (disentanglement_lib's settings,
    the default: `python -m vae evaluate` and the pages' Evaluate), "sweep" (a sweep's quick evaluation,
    SWEEP_EVALUATION) or "fast". evaluation.json names it (summary.dci_setting, settings.dci).
    `progress(stage, fraction)`, if given, hears each stage as it starts (vae.jobs.evaluation_jobs).
    """
    say = progress or (lambda stage, fraction: None)
    from vae.data import presets
    from vae.data.datasets import load_dataset
    from vae.model.inference import encode, load_run_model, recon_loss_from_codes, recon_loss_per_image

    run_dir = Path(run_dir)
    require_writable(f"evaluate run {run_dir.name} (it writes evaluation.json and latents.csv)")
    doc = read_config(run_dir)
    t0 = time.perf_counter()
    say("loading the dataset and the model", 0.02)
    ds = load_dataset(doc["config"]["dataset"])
    model = load_run_model(run_dir)
    images = np.asarray(ds.images)
    say("encoding every split", 0.1)
    mu = encode(model, images)
    t_encode = time.perf_counter() - t0
    atomic_write_text(run_dir / "latents.csv", _latents_csv(ds, mu))

    split = np.asarray(ds.columns["split"]).astype(str)
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "validation")
    epoch, rule = evaluated_epoch(run_dir)
    result: dict = {
        "format": "vae-lab-evaluation",
        "format_version": 1,
        "run": run_dir.name,
        "dataset": str(ds.path),
        "model": f"model.keras (epoch {epoch}, best by {rule})",
        "evaluated_epoch": epoch,
        "checkpoint_rule": rule,
        "factor_names": list(ds.factor_names),
    }
    if dci_setting not in metrics.DCI_SETTINGS:
        raise UserError(f"dci_setting must be one of {', '.join(metrics.DCI_SETTINGS)}, not {dci_setting!r}")
    rng = np.random.default_rng(seed)
    tr_m = tr if len(tr) <= max_train else np.sort(rng.choice(tr, max_train, replace=False))
    names = list(ds.factor_names)
    factors = np.column_stack([np.asarray(ds.columns[f], dtype=np.float64) for f in names]) if names else None
    with_factors = bool(names) and len(va) > 0
    fa, result["pca_alignment"] = analysis.snapshot_alignments(mu[tr_m], factors[tr_m] if with_factors else None)
    summary = {
        "alignment_codes": f"training split ({len(tr_m)} codes)",
        "evaluated_epoch": epoch,
        "pca_alignment": result["pca_alignment"]["score"],
        "pca_alignment_reason": result["pca_alignment"]["reason"],
    }
    # Active units and per-latent KL (docs/measures.md): first-class measures, with the collapse flag.
    usage = metrics.latent_usage(mu[tr_m], _logvar(model, images[tr_m]), num_factors=len(ds.factor_names) or None)
    result["latent_usage"] = usage
    summary.update(
        {
            "active_units": usage["active_units"],
            "collapsed": usage["collapsed"],
            "collapsed_latents": usage["collapsed_latents"],
            "kl_total": usage["kl_total"],
            "kl_per_latent": {str(i + 1): float(v) for i, v in enumerate(usage["kl_per_latent"])},
        }
    )
    # What the study's term prefers on these codes (each latent plane rotated 0-90 degrees).
    result["entanglement_profile"] = analysis.entanglement_profile(mu[tr_m], mode="seed")
    settings = {
        "alignment_codes": "train",
        "n_alignment_codes": int(len(tr_m)),
        "max_train": max_train,
        "seed": seed,
        "dci": metrics.DCI_SETTINGS[dci_setting]["label"],
        "dci_setting": dci_setting,
    }
    notes = {}

    if with_factors:
        gt, enc = None, None
        if generator_metrics:
            try:
                spec = presets.DatasetSpec.from_dict(ds.meta["spec"])
                gt = presets.ground_truth(spec)
                enc = lambda imgs: encode(model, imgs)  # noqa: E731
            except (UserError, KeyError, TypeError):
                gt = None
        result["factor_alignment"] = fa
        summary["factor_alignment"] = result["factor_alignment"]["score"]
        summary["factor_alignment_local"] = result["factor_alignment"]["local"]["score"]
        say("disentanglement metrics (MIG, DCI, SAP, FactorVAE, BetaVAE)", 0.3)
        result["metrics"] = metrics.evaluate_all(
            mu[tr_m],
            factors[tr_m],
            mu[va],
            factors[va],
            ground_truth=gt,
            encode=enc,
            seed=seed,
            generator_settings=GENERATOR_SETTINGS,
            dci_setting=dci_setting,
        )
        m = result["metrics"]
        m["settings"]["codes"] = {"train": "training split", "test": "validation split"}
        summary.update(
            {
                "mig": m.get("mig", {}).get("score"),
                "dci_disentanglement": m.get("dci", {}).get("disentanglement"),
                "dci_completeness": m.get("dci", {}).get("completeness"),
                "dci_informativeness_test": m.get("dci", {}).get("informativeness_test"),
                "sap_continuous": m.get("sap_continuous", {}).get("score"),
                "total_correlation": m.get("total_correlation"),
                "modularity": m.get("modularity", {}).get("score"),
                "factor_vae": (m.get("factor_vae") or {}).get("eval_accuracy"),
                "beta_vae": (m.get("beta_vae") or {}).get("eval_accuracy"),
            }
        )
        notes.update(m.get("notes", {}))
        if gt is not None:
            settings["generator_metrics"] = GENERATOR_SETTINGS
        sub = tr if len(tr) <= 5000 else np.sort(rng.choice(tr, 5000, replace=False))
        result["pixel_pca"] = _pixel_pca(images[sub].reshape(len(sub), -1), factors[sub], names)

    if names and len(va):  # chance levels: the alignment measures over random rotations of these codes
        say("chance levels (random rotations of the codes)", 0.8)
        result["chance"] = analysis.chance_levels(mu[tr_m], factors[tr_m], n=CHANCE_ROTATIONS, seed=seed)
        summary["chance"] = chance_summary(result["chance"])

    say("transects, hole and reconstruction losses", 0.85)
    # Each image's reconstruction loss once (the hole's and the covered ring's images are also the hole's and
    # the validation split's), decoded from the codes just encoded: the model's own call decodes the mean too,
    # so only the decoder runs (the same numbers, to float32 rounding).
    needed = [np.flatnonzero(split == s)[:2000] for s in ("train", "validation", "hole", "transects")]
    needed = np.unique(np.concatenate(needed)) if needed else np.zeros(0, dtype=int)
    loss_of = np.full(len(images), np.nan)
    if len(needed):
        loss_of[needed] = recon_loss_from_codes(model, images[needed], mu[needed])

    def recon_of(idx):
        out = loss_of[idx]
        missing = np.isnan(out)
        if missing.any():  # not in the splits above (cannot happen today): run them through the model
            out = out.copy()
            out[missing] = recon_loss_per_image(model, images[np.asarray(idx)[missing]])
        return out

    if "transect" in ds.columns and np.any(split == "transects"):
        t = np.flatnonzero(split == "transects")
        geo = analysis.transects_geometry(
            mu[t], np.asarray(ds.columns["transect"])[t], np.asarray(ds.columns["point"])[t]
        )
        result["transects"] = geo
        summary["straightness"] = {k: v["straightness"] for k, v in geo.items()}

    hole = np.flatnonzero(split == "hole")
    if len(hole) and len(va) and {"a", "b"} <= set(names):
        centre, radius = analysis.hole_of_spec(ds.meta.get("spec"))
        a, b = np.asarray(ds.columns["a"], float), np.asarray(ds.columns["b"], float)
        covered = va[analysis.covered_region_mask(a[va], b[va], centre, radius)]
        ab = np.column_stack([a, b])
        result["hole_interpolation"] = analysis.hole_test(
            mu[tr], ab[tr], mu[hole], ab[hole], mu[va], ab[va], ds.meta.get("spec")
        )
        hi = result["hole_interpolation"]
        summary.update({"hole_error": hi["hole_error"], "hole_ring_error": hi["ring_error"], "hole_ratio": hi["ratio"]})
        if len(covered):
            result["hole"] = analysis.hole_analysis(recon_of(hole), recon_of(covered))
            summary["hole_recon_ratio"] = result["hole"]["recon_ratio_mean"]

    recon = {}
    for s in ("train", "validation", "hole", "transects"):
        idx = np.flatnonzero(split == s)
        if len(idx):
            idx = idx[:2000]
            recon[s] = float(np.mean(recon_of(idx)))
    result["recon_loss_per_split"] = recon
    summary["recon_loss_per_split"] = recon
    result["seconds"] = {"encode": t_encode, "total": time.perf_counter() - t0}
    summary["seconds"] = result["seconds"]["total"]
    summary["dci_setting"] = dci_setting
    result["summary"] = summary
    result["settings"] = settings
    result["notes"] = notes
    result = jsonable(result)
    atomic_write_json(run_dir / "evaluation.json", result)
    return result
