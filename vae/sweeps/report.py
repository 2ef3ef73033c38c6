"""A sweep's answer: per setting the distribution over seeds, the effect of each swept value against
its baseline, seed versus setting variance, ranking stability, and unsupervised-versus-supervised
rank correlations. Reads result rows (vae.sweeps.sweep.result_rows); the statistics are vae.measures.stats.
"""

from __future__ import annotations

import numpy as np

from vae.measures import stats

# Shown first when present, in this order; any other numeric evaluation column follows.
PREFERRED = ("eval_factor_alignment", "eval_alignment_score", "eval_pca_alignment", "eval_mig", "eval_dci_disentanglement", "eval_sap", "eval_modularity",
             "eval_factor_vae", "eval_beta_vae", "eval_total_correlation", "eval_hole_error", "eval_hole_recon_ratio",
             "eval_recon_loss_per_split_validation", "val_recon", "val_kl", "val_loss", "alignment_score",
             "eval_active_units", "eval_collapsed_latents", "eval_kl_total")
UNSUPERVISED = ("val_recon", "val_kl", "eval_total_correlation", "total_correlation", "val_loss", "eval_pca_alignment")
SUPERVISED = ("eval_factor_alignment", "eval_mig", "eval_dci_disentanglement", "eval_sap", "eval_modularity", "eval_factor_vae",
              "eval_beta_vae", "eval_alignment_score")
LABELS = {"eval_factor_alignment": "factor alignment", "eval_pca_alignment": "principal axes on latent axes",
          "eval_active_units": "active units", "eval_collapsed": "collapsed (fewer active latents than factors)",
          "eval_collapsed_latents": "collapsed latents (d - active units)",
          "eval_kl_total": "KL (nats, summed over latents)",
          "eval_factor_alignment_local": "factor alignment (local)", "eval_hole_error": "hole error",
          "eval_alignment_score": "alignment score", "eval_mig": "MIG", "eval_dci_disentanglement": "DCI disentanglement",
          "eval_sap": "SAP", "eval_modularity": "modularity", "eval_factor_vae": "FactorVAE score",
          "eval_beta_vae": "BetaVAE score", "eval_total_correlation": "total correlation",
          "eval_hole_recon_ratio": "hole ratio", "eval_recon_loss_per_split_validation": "reconstruction (validation)",
          "val_recon": "reconstruction loss", "val_kl": "KL", "val_loss": "validation loss",
          "alignment_score": "alignment (last epoch)"}


def fmt(v) -> str:
    """A setting's value for a person: floats short (1e-04 -> 0.0001), anything else as text."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def label(metric: str) -> str:
    return LABELS.get(metric, metric.removeprefix("eval_").replace("_", " "))


def _num(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and np.isfinite(v)


def finished(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("state") == "finished"]


def metric_columns(rows: list[dict]) -> list[str]:
    """Numeric result columns that vary as answers (evaluation summary and final losses)."""
    seen = []
    for r in rows:
        for k, v in r.items():
            if k not in seen and _num(v) and (k.startswith("eval_") or k in PREFERRED):
                seen.append(k)
    return [k for k in PREFERRED if k in seen] + [k for k in seen if k not in PREFERRED]


def setting_key(row: dict, keys) -> tuple:
    return tuple(row.get(k) for k in keys)


def per_setting(rows: list[dict], keys, metric: str, seed: int = 0) -> list[dict]:
    """[{settings..., 'mean', 'lo', 'hi', 'n'}] per combination of `keys`, over its seeds."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(setting_key(r, keys), []).append(r.get(metric))
    out = []
    for key in sorted(groups, key=lambda t: tuple(str(x) if not _num(x) else f"{float(x):020.10f}" for x in t)):
        out.append({**dict(zip(keys, key)), **stats.bootstrap_mean_ci(groups[key], seed=seed)})
    return out


def effects(rows: list[dict], key: str, metric: str, baseline=0.0, others=()) -> list[dict]:
    """For each value of `key` other than `baseline`: the difference of its mean from the baseline's,
    within each combination of the `others` settings, with the interval and the words."""
    out = []
    groups: dict = {}
    for r in rows:
        groups.setdefault(setting_key(r, others), []).append(r)
    for other, rs in groups.items():
        base = [r.get(metric) for r in rs if r.get(key) == baseline]
        if not base:
            continue
        for value in sorted({r.get(key) for r in rs if r.get(key) != baseline}, key=str):
            d = stats.difference_ci([r.get(metric) for r in rs if r.get(key) == value], base)
            out.append({**dict(zip(others, other)), key: value, "metric": metric, **d,
                        "words": stats.effect_words(d, label(metric))})
    return out


def variance_and_ranking(rows: list[dict], keys, metric: str) -> dict:
    """Seed vs setting share of the variance, and how stable the settings' ranking is over seeds."""
    shares = stats.variance_shares([r.get(metric) for r in rows], [setting_key(r, keys) for r in rows])
    settings = sorted({setting_key(r, keys) for r in rows}, key=str)
    seeds = sorted({r.get("seed") for r in rows}, key=str)
    m = np.full((len(settings), len(seeds)), np.nan)
    for r in rows:
        if _num(r.get(metric)):
            m[settings.index(setting_key(r, keys)), seeds.index(r.get("seed"))] = float(r[metric])
    return {**{f"share_{k}": v for k, v in shares.items() if k != "n"}, "n": shares["n"],
            **stats.ranking_stability(m)}


def unsupervised_vs_supervised(rows: list[dict]) -> list[dict]:
    cols = set(metric_columns(rows))
    corr = stats.rank_correlations(rows, [u for u in UNSUPERVISED if u in cols], [s for s in SUPERVISED if s in cols])
    return [{"unsupervised": label(u), "supervised": label(s), "spearman": v} for (u, s), v in corr.items()]


def baseline_of(values) -> object | None:
    """The baseline value of a swept setting: 0 (or False) when the grid holds it, else the first value."""
    values = list(values)
    for v in values:
        if _num(v) and float(v) == 0:
            return v
    return values[0] if values else None

HEADLINE = ("eval_factor_alignment", "eval_alignment_score", "eval_mig", "eval_dci_disentanglement", "eval_recon_loss_per_split_validation",
            "eval_hole_recon_ratio")


def effect_sentences(effects_rows: list[dict], key: str, limit: int = 4) -> list[str]:
    """One line per swept value (and combination of the other settings): its effect on the headline metrics."""
    lines: dict = {}
    for e in effects_rows:
        if e["metric"] not in HEADLINE:
            continue
        head = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                         for k, v in e.items() if k not in ("metric", "diff", "lo", "hi", "n", "n_baseline", "words"))
        lines.setdefault(head, []).append((HEADLINE.index(e["metric"]), f"{label(e['metric'])}: {e['words']}"))
    return [f"**{head}**: " + "; ".join(t for _, t in sorted(parts)[:limit]) for head, parts in lines.items()]


def text_report(rows: list[dict], grid: dict) -> str:
    """The page's answer as plain text (`python -m vae sweep --report SWEEP`)."""
    rows = finished(rows)
    keys = list(grid) or ["seed"]
    lines = [f"{len(rows)} finished runs"]
    metrics = metric_columns(rows)
    for m in [m for m in HEADLINE if m in metrics] + ["eval_total_correlation"] * ("eval_total_correlation" in metrics):
        lines.append(f"\n{label(m)}: mean [bootstrap 95% interval] over seeds")
        for s in per_setting(rows, keys, m):
            if s["mean"] is not None:
                head = ", ".join(f"{k}={fmt(s[k])}" for k in keys)
                lines.append(f"  {head:<28} {s['mean']:.4g} [{s['lo']:.4g}, {s['hi']:.4g}]  n={s['n']}")
        vr = variance_and_ranking(rows, keys, m)
        if vr.get("share_seed") is not None:
            w = "-" if vr["kendall_w"] is None else f"{vr['kendall_w']:.2f}"
            lines.append(f"  share of variance: setting {vr['share_setting']:.0%}, seed {vr['share_seed']:.0%}; "
                         f"Kendall's W over seeds {w}")
    if grid:
        base_key = "gamma" if "gamma" in grid else keys[0]
        base = baseline_of(grid[base_key])
        eff = [e for m in metrics for e in effects(rows, base_key, m, base, [k for k in keys if k != base_key])]
        lines.append(f"\nDoes {base_key} help? (against {base_key}={fmt(base)})")
        lines += ["  " + line.replace("**", "") for line in effect_sentences(eff, base_key, limit=6)]
    corr = unsupervised_vs_supervised(rows)
    if corr:
        lines.append("\nUnsupervised vs supervised (Spearman across runs)")
        lines += [f"  {c['unsupervised']:<28} ~ {c['supervised']:<22} {c['spearman']:+.2f}" for c in corr
                  if c["spearman"] is not None]
    return "\n".join(lines)
