"""A sweep's answer: per setting the mean over seeds with its t interval, then each swept value against
its baseline (vae.measures.stats.compare_settings: paired t on per-seed differences, Holm over the
comparisons of one metric, effect size, the smallest detectable difference), seed versus setting variance,
ranking stability, and unsupervised-versus-supervised rank correlations within settings. Reads result rows
(vae.sweeps.sweep.result_rows); the statistics are vae.measures.stats. The page and `sweep --report` both
say it through `answer` and `answer_lines`.
"""

from __future__ import annotations

import numpy as np

from vae.measures import stats

# Shown first when present, in this order; any other numeric evaluation column follows.
PREFERRED = (
    "eval_factor_alignment",
    "eval_alignment_score",
    "eval_pca_alignment",
    "eval_mig",
    "eval_dci_disentanglement",
    "eval_sap",
    "eval_modularity",
    "eval_factor_vae",
    "eval_beta_vae",
    "eval_total_correlation",
    "eval_hole_error",
    "eval_hole_recon_ratio",
    "eval_recon_loss_per_split_validation",
    "val_recon",
    "val_kl",
    "val_loss",
    "alignment_score",
    "eval_active_units",
    "eval_collapsed_latents",
    "eval_kl_total",
)
UNSUPERVISED = ("val_recon", "val_kl", "eval_total_correlation", "total_correlation", "val_loss", "eval_pca_alignment")
SUPERVISED = (
    "eval_factor_alignment",
    "eval_mig",
    "eval_dci_disentanglement",
    "eval_sap",
    "eval_modularity",
    "eval_factor_vae",
    "eval_beta_vae",
    "eval_alignment_score",
)
LABELS = {
    "eval_factor_alignment": "factor alignment",
    "eval_pca_alignment": "principal axes on latent axes",
    "eval_active_units": "active units",
    "eval_collapsed": "collapsed (fewer active latents than factors)",
    "eval_collapsed_latents": "collapsed latents (d - active units)",
    "eval_kl_total": "KL (nats, summed over latents)",
    "eval_factor_alignment_local": "factor alignment (local)",
    "eval_hole_error": "hole error",
    "eval_alignment_score": "alignment score",
    "eval_mig": "MIG",
    "eval_dci_disentanglement": "DCI disentanglement",
    "eval_sap": "SAP",
    "eval_modularity": "modularity",
    "eval_factor_vae": "FactorVAE score",
    "eval_beta_vae": "BetaVAE score",
    "eval_total_correlation": "total correlation",
    "eval_hole_recon_ratio": "hole ratio",
    "eval_recon_loss_per_split_validation": "reconstruction (validation)",
    "val_recon": "reconstruction loss",
    "val_kl": "KL",
    "val_loss": "validation loss",
    "alignment_score": "alignment (last epoch)",
}


def fmt(v) -> str:
    """A setting's value for a person: floats short (1e-04 -> 0.0001), anything else as text."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def label(metric: str) -> str:
    return LABELS.get(metric, metric.removeprefix("eval_").replace("_", " "))


def label_in(rows: list[dict], metric: str) -> str:
    """label(metric), and for DCI's numbers the setting they were computed at when it is not the reference
    (a sweep's quick evaluation fits DCI at the "sweep" setting: vae.measures.metrics.DCI_SETTINGS)."""
    text = label(metric)
    if metric.startswith("eval_dci_") and metric != "eval_dci_setting":
        used = sorted({str(r["eval_dci_setting"]) for r in rows if r.get("eval_dci_setting")})
        if used and used != ["reference"]:
            text += f" (DCI setting: {', '.join(used)})"
    return text


def _num(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and np.isfinite(v)


def finished(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("state") == "finished"]


def metric_columns(rows: list[dict]) -> list[str]:
    """Numeric result columns that vary as answers (evaluation summary and final losses; not the chance
    levels, eval_chance_*, which are drawn as bands)."""
    seen = []
    for r in rows:
        for k, v in r.items():
            if k not in seen and _num(v) and (k.startswith("eval_") or k in PREFERRED) and not k.startswith(CHANCE):
                seen.append(k)
    return [k for k in PREFERRED if k in seen] + [k for k in seen if k not in PREFERRED]


def setting_key(row: dict, keys) -> tuple:
    return tuple(row.get(k) for k in keys)


def per_setting(rows: list[dict], keys, metric: str, level: float = 0.95) -> list[dict]:
    """[{settings..., 'mean', 'lo', 'hi', 'n', 'sd'}] per combination of `keys`, over its seeds: the mean with
    its t interval (stats.mean_ci; lo and hi None under 2 seeds)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(setting_key(r, keys), []).append(r.get(metric))
    out = []
    for key in sorted(groups, key=lambda t: tuple(str(x) if not _num(x) else f"{float(x):020.10f}" for x in t)):
        out.append({**dict(zip(keys, key)), **stats.mean_ci(groups[key], level)})
    return out


def effects(
    rows: list[dict], key: str, metric: str, baseline=0.0, others=(), smallest_effect=None, level: float = 0.95
) -> list[dict]:
    """For each value of `key` other than `baseline`, within each combination of the `others` settings:
    stats.compare_settings' answer (paired t on per-seed differences when the seeds match, Holm over the
    values of `key` on this metric, effect size, smallest detectable difference) plus the settings,
    'metric', 'words' (the verdict in words) and 'power' (what this many seeds can detect)."""
    out = []
    groups: dict = {}
    for r in rows:
        groups.setdefault(setting_key(r, others), []).append(r)
    for other, rs in groups.items():
        if not any(stats._same(r.get(key), baseline) for r in rs):
            continue
        for c in stats.compare_settings(rs, metric, key, baseline, smallest_effect=smallest_effect, level=level):
            out.append(
                {
                    **dict(zip(others, other)),
                    key: c["value"],
                    **c,
                    "metric": metric,
                    "words": stats.verdict_words(c, label_in(rs, metric)),
                    "power": stats.power_words(c),
                }
            )
    return out


def few_seeds_warning(rows: list[dict], keys) -> str | None:
    """A plain warning when a setting has fewer than 5 finished seeds, else None."""
    counts: dict = {}
    for r in rows:
        counts[setting_key(r, keys)] = counts.get(setting_key(r, keys), 0) + 1
    if not counts or min(counts.values()) >= MIN_SEEDS:
        return None
    n = min(counts.values())
    return (
        f"Only {n} seed{'s' if n != 1 else ''} in the smallest setting: with fewer than {MIN_SEEDS} seeds the "
        "intervals are wide and only large differences can be detected, so read every verdict below as "
        "preliminary; more seeds give an answer to rely on."
    )


def variance_and_ranking(rows: list[dict], keys, metric: str) -> dict:
    """Seed vs setting share of the variance, and how stable the settings' ranking is over seeds."""
    shares = stats.variance_shares([r.get(metric) for r in rows], [setting_key(r, keys) for r in rows])
    settings = sorted({setting_key(r, keys) for r in rows}, key=str)
    seeds = sorted({r.get("seed") for r in rows}, key=str)
    m = np.full((len(settings), len(seeds)), np.nan)
    for r in rows:
        if _num(r.get(metric)):
            m[settings.index(setting_key(r, keys)), seeds.index(r.get("seed"))] = float(r[metric])
    return {**{f"share_{k}": v for k, v in shares.items() if k != "n"}, "n": shares["n"], **stats.ranking_stability(m)}


def unsupervised_vs_supervised(rows: list[dict], keys=()) -> list[dict]:
    """Spearman correlation of each unsupervised number with each supervised one across runs, computed
    within settings (ranks taken within each combination of `keys`, then pooled: the swept setting, which
    moves both, cannot make the correlation); 'pooled' is the plain correlation across all runs, for
    comparison."""
    cols = set(metric_columns(rows))
    pooled = stats.rank_correlations(rows, [u for u in UNSUPERVISED if u in cols], [s for s in SUPERVISED if s in cols])
    out = []
    for (u, s), v in pooled.items():
        ok = [r for r in rows if _num(r.get(u)) and _num(r.get(s))]
        w = stats.within_setting_spearman([r[u] for r in ok], [r[s] for r in ok], [setting_key(r, keys) for r in ok])
        out.append(
            {
                "unsupervised": label(u),
                "supervised": label(s),
                "spearman within settings": w["rho"],
                "runs": w["n"],
                "settings": w["settings"],
                "spearman pooled (confounded)": v,
            }
        )
    return out


def baseline_of(values) -> object | None:
    """The baseline value of a swept setting: 0 (or False) when the grid holds it, else the first value."""
    values = list(values)
    for v in values:
        if _num(v) and float(v) == 0:
            return v
    return values[0] if values else None


CHANCE = "eval_chance_"  # evaluation.json's chance levels (rotation_baseline), flattened: eval_chance_<measure>_mean
MIN_SEEDS = 5  # under this many seeds per setting the answer carries a plain warning

HEADLINE = (
    "eval_factor_alignment",
    "eval_alignment_score",
    "eval_mig",
    "eval_dci_disentanglement",
    "eval_recon_loss_per_split_validation",
    "eval_hole_recon_ratio",
)


def answer(rows: list[dict], grid: dict, metrics=None, smallest_effect=None, level: float = 0.95) -> list[dict]:
    """The sweep's answer per metric: [{'metric', 'label', 'settings' (per_setting), 'comparisons' (effects),
    'base_key', 'baseline'}]. With no grid (seeds only) there is nothing to compare: 'comparisons' is []."""
    rows = finished(rows)
    keys = list(grid) or ["seed"]
    metrics = metric_columns(rows) if metrics is None else metrics
    base_key = ("gamma" if "gamma" in grid else keys[0]) if grid else None
    base = baseline_of(grid[base_key]) if grid else None
    others = [k for k in keys if k != base_key]
    out = []
    for m in metrics:
        comps = effects(rows, base_key, m, base, others, smallest_effect, level) if grid else []
        out.append(
            {
                "metric": m,
                "label": label_in(rows, m),
                "settings": per_setting(rows, keys, m, level),
                "comparisons": comps,
                "base_key": base_key,
                "baseline": base,
                "keys": keys,
                "chance": chance_band(rows, m),
            }
        )
    return out


def family_words(a: dict) -> str:
    """What the comparisons of one metric test, and what Holm's family is."""
    if not a["comparisons"]:
        return ""
    paired = all(c["paired"] for c in a["comparisons"] if c["p"] is not None)
    test = (
        "paired t test on per-seed differences (the same seed: the same initialisation and data order)"
        if paired
        else "Welch's t test (the seeds do not match)"
        if not any(c["paired"] for c in a["comparisons"])
        else "paired t test where the seeds match, Welch's t test where they do not"
    )
    left = sum(c.get("unpaired_left_out", 0) for c in a["comparisons"])
    test += (
        f"; {left} run(s) whose seed the other setting does not have yet are left out of the paired comparisons"
        if left
        else ""
    )
    return (
        f"Each {a['base_key']} against {a['base_key']} = {fmt(a['baseline'])}: {test}; p adjusted by Holm over "
        f"the comparisons of {a['label']} (each metric is its own family)."
    )


def answer_lines(a: dict, bold: str = "") -> dict:
    """One metric's answer as lines, numbers first: {'numbers': per setting mean [interval], n; 'verdicts':
    each comparison in words; 'power': what this many seeds can detect}. `bold` ('**' for markdown) marks
    the settings' names."""
    keys = a["keys"]

    def head(d):
        return bold + ", ".join(f"{k} = {fmt(d[k])}" for k in keys if k in d) + bold

    numbers = [
        f"{head(s)}: {s['mean']:.3g}"
        + ("" if s["lo"] is None else f" [{s['lo']:.3g}, {s['hi']:.3g}]")
        + f", n = {s['n']}"
        for s in a["settings"]
        if s["mean"] is not None
    ]
    ch = a.get("chance")
    if ch:
        numbers.append(
            f"chance (the same measure on randomly rotated codes, {ch['runs']} runs): {ch['mean']:.3g} "
            f"[{ch['lo']:.3g}, {ch['hi']:.3g}]"
        )
    return {
        "numbers": numbers,
        "verdicts": [f"{head(c)}: {c['words']}" for c in a["comparisons"]],
        "power": [f"{head(c)}: {c['power']}" for c in a["comparisons"] if c["power"]],
    }


def answer_table(answers: list[dict], keys) -> list[dict]:
    """Every metric's comparisons as table rows (the page's 'Every metric' table)."""
    out = []
    for a in answers:
        for c in a["comparisons"]:
            out.append(
                {
                    **{k: c[k] for k in keys if k in c},
                    "metric": a["label"],
                    "n": c["n"],
                    "n baseline": c["n_baseline"],
                    "paired": c["paired"],
                    "difference": c["diff"],
                    "low": c["lo"],
                    "high": c["hi"],
                    "effect size": c["effect_size"],
                    "p (Holm)": c["p_adjusted"],
                    "verdict": c["verdict"],
                    "smallest detectable": c["mde"],
                    "answer": c["words"],
                }
            )
    return out


def chance_band(rows: list[dict], metric: str) -> dict | None:
    """Chance for `metric` (eval_<measure>): the mean over runs of their rotation baselines'
    (evaluation.json summary 'chance') mean, lo and hi; None when no run has one."""
    name = metric.removeprefix("eval_")
    cols = {k: f"{CHANCE}{name}_{k}" for k in ("mean", "lo", "hi")}
    got = [r for r in rows if all(_num(r.get(c)) for c in cols.values())]
    if not got:
        return None
    return {k: float(np.mean([r[c] for r in got])) for k, c in cols.items()} | {"runs": len(got)}


def effect_sentences(effects_rows: list[dict], key: str, limit: int = 4) -> list[str]:
    """One line per swept value (and combination of the other settings): its verdict on the headline metrics."""
    lines: dict = {}
    skip = {"metric", "words", "power"} | _COMPARE_FIELDS
    for e in effects_rows:
        if e["metric"] not in HEADLINE:
            continue
        head = ", ".join(
            f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in e.items() if k not in skip
        )
        lines.setdefault(head, []).append((HEADLINE.index(e["metric"]), e["words"]))
    return [f"**{head}**: " + "; ".join(t for _, t in sorted(parts)[:limit]) for head, parts in lines.items()]


_COMPARE_FIELDS = {
    "value",
    "n",
    "n_baseline",
    "paired",
    "mean",
    "baseline_mean",
    "diff",
    "lo",
    "hi",
    "p",
    "p_adjusted",
    "effect_size",
    "effect_size_name",
    "mde",
    "sd",
    "detect",
    "seeds_needed",
    "key",
    "baseline",
    "level",
    "smallest_effect",
    "family_size",
    "verdict",
    "p_equivalence",
    "p_equivalence_adjusted",
}


def text_report(rows: list[dict], grid: dict) -> str:
    """The page's answer as plain text (`python -m vae sweep --report SWEEP`)."""
    rows = finished(rows)
    keys = list(grid) or ["seed"]
    lines = [f"{len(rows)} finished runs"]
    warning = few_seeds_warning(rows, keys)
    if warning:
        lines.append(f"WARNING: {warning}")
    metrics = metric_columns(rows)
    shown = [m for m in HEADLINE if m in metrics] + ["eval_total_correlation"] * ("eval_total_correlation" in metrics)
    for a in answer(rows, grid, shown):
        parts = answer_lines(a)
        lines.append(f"\n{a['label']}: mean [95% t interval] over seeds, n seeds")
        lines += ["  " + line for line in parts["numbers"]]
        if a["comparisons"]:
            lines.append(f"  Against {a['base_key']} = {fmt(a['baseline'])}:")
            lines += ["    " + line for line in parts["verdicts"]]
            lines += ["    " + line for line in parts["power"]]
            lines.append("    (" + family_words(a) + ")")
        vr = variance_and_ranking(rows, keys, a["metric"])
        if vr.get("share_seed") is not None:
            w = "-" if vr["kendall_w"] is None else f"{vr['kendall_w']:.2f}"
            lines.append(
                f"  share of variance: setting {vr['share_setting']:.0%}, seed {vr['share_seed']:.0%}; "
                f"Kendall's W over seeds {w}"
            )
    corr = unsupervised_vs_supervised(rows, keys)
    if corr:
        lines.append(
            "\nUnsupervised vs supervised: Spearman within settings (ranks within each setting, pooled; "
            "the plain correlation across all runs, confounded by the setting, in brackets)"
        )
        lines += [
            f"  {c['unsupervised']:<28} ~ {c['supervised']:<22} "
            f"{_signed(c['spearman within settings'])}  [{_signed(c['spearman pooled (confounded)'])}]"
            for c in corr
        ]
    return "\n".join(lines)


def _signed(v) -> str:
    return "  -  " if v is None else f"{v:+.2f}"
