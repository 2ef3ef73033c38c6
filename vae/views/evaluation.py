"""The tables the pages draw from a run's evaluation.json (never imports streamlit or TensorFlow).

- `evaluation_views(evaluation)`: the summary, MIG per factor, the DCI importance matrix, the factor
  alignment (which latent tracks which factor) and every other table-shaped entry, as rows.
- `factor_alignment_view(fa, evaluation)`: rows per factor and the |cos| matrix from `factor_alignment`.
- `settings_text(result)`: the scalar settings a metric recorded beside its numbers, as one line.
"""

from __future__ import annotations

import numpy as np


def _factor_names(evaluation: dict, k: int) -> list[str]:
    names = evaluation.get("factor_names") or (evaluation.get("pixel_pca") or {}).get("factor_names")
    return list(names) if names and len(names) == k else [f"factor {j + 1}" for j in range(k)]


def settings_text(result: dict, skip: tuple = ()) -> str:
    """'num_bins 20 · n_train 2000 · …': the scalar settings a metric recorded beside its numbers."""
    if not isinstance(result, dict):
        return ""
    keys = (
        "num_bins",
        "n_train",
        "n_train_given",
        "n_test",
        "n_estimators",
        "seed",
        "batch_size",
        "num_train",
        "num_eval",
        "threshold",
        "note",
        "sklearn_version",
    )
    parts = [f"{k} {result[k]}" for k in keys if k in result and k not in skip and result[k] not in (None, "")]
    return " · ".join(parts)


def factor_alignment_view(fa: dict, evaluation: dict) -> dict:
    """Rows per factor (its own latent, |cos| to it, angle, R², score) and the |cos| matrix, from
    evaluation.json's `factor_alignment` (vae.measures.analysis.factor_alignment)."""
    cos = np.asarray(fa["abs_cos"], dtype=float)  # (K factors, d latents)
    k, d = cos.shape
    names = _factor_names(evaluation, k)

    def col(key, default=None):
        v = fa.get(key)
        return list(v) if isinstance(v, list) and len(v) == k else [default] * k

    nearest = [int(np.argmax(cos[j])) for j in range(k)]
    assigned = [a if isinstance(a, int) and 0 <= a < d else nearest[j] for j, a in enumerate(col("assigned_axis"))]
    rows = [
        {
            "factor": names[j],
            "its latent": f"μ{assigned[j] + 1}",
            "|cos| to it": float(cos[j, assigned[j]]),
            "angle to the nearest axis (°)": col("angles_deg")[j],
            "R² (codes hold the factor)": col("r2")[j],
            "alignment (1 = on its own axis)": col("per_factor")[j],
        }
        for j in range(k)
    ]
    settings = " · ".join(
        f"{key} {fa[key]}" for key in ("score_uses", "n", "min_r2", "note") if fa.get(key) not in (None, "")
    )
    return {
        "rows": rows,
        "abs_cos": cos,
        "factors": names,
        "latents": [f"μ{i + 1}" for i in range(d)],
        "score": fa.get("score"),
        "settings": settings,
    }


def _table(value) -> list[dict] | None:
    """A list of row dicts from a JSON value shaped like a table (list of dicts, or dict of equal lists)."""
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return [dict(r) for r in value]
    if isinstance(value, dict):
        lists = {k: v for k, v in value.items() if isinstance(v, list)}
        lengths = {len(v) for v in lists.values()}
        if (
            lists
            and len(lengths) == 1
            and next(iter(lengths)) > 0
            and all(not isinstance(x, (list, dict)) for v in lists.values() for x in v)
        ):
            n = next(iter(lengths))
            return [{k: v[i] for k, v in lists.items()} for i in range(n)]
    return None


def evaluation_views(evaluation: dict | None) -> dict:
    """The parts of an evaluation.json the pages draw, or {} when there is none.

    Keys (each present only when the evaluation holds it):
    - `summary`: {name: number}
    - `mig_per_factor`: rows {factor, MIG gap, best latent}; `mig_settings`
    - `dci_importance`: {matrix (d x K), latents, factors}; `dci_settings`, `dci_scores`
    - `tables`: {title: rows} for every other table-shaped entry (e.g. `factor_alignment`), as is
    """
    if not evaluation:
        return {}
    out: dict = {
        "summary": {
            k: v
            for k, v in (evaluation.get("summary") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    }
    m = evaluation.get("metrics") or {}
    mig = m.get("mig") or {}
    if isinstance(mig.get("per_factor"), list) and mig["per_factor"]:
        gaps = mig["per_factor"]
        names = _factor_names(evaluation, len(gaps))
        mi = np.asarray(mig.get("mutual_info") or [], dtype=float)  # (d, K)
        best = [
            f"μ{int(np.argmax(mi[:, j])) + 1}" if mi.ndim == 2 and mi.shape[1] == len(gaps) else "-"
            for j in range(len(gaps))
        ]
        out["mig_per_factor"] = [
            {"factor": n, "MIG (normalised gap)": g, "most informative latent": b} for n, g, b in zip(names, gaps, best)
        ]
        out["mig_settings"] = settings_text(mig)
    dci = m.get("dci") or {}
    imp = np.asarray(dci.get("importance_matrix") or [], dtype=float)
    if imp.ndim == 2 and imp.size:
        out["dci_importance"] = {
            "matrix": imp,
            "latents": [f"μ{i + 1}" for i in range(imp.shape[0])],
            "factors": _factor_names(evaluation, imp.shape[1]),
        }
        out["dci_settings"] = settings_text(dci)
        out["dci_scores"] = {
            k: dci.get(k)
            for k in ("disentanglement", "completeness", "informativeness_test")
            if isinstance(dci.get(k), (int, float))
        }
    fa = evaluation.get("factor_alignment")
    if isinstance(fa, dict) and np.asarray(fa.get("abs_cos") or [], dtype=float).ndim == 2:
        out["factor_alignment"] = factor_alignment_view(fa, evaluation)
    tables = {}
    for source in (evaluation, m):
        for key, value in source.items():
            if key in ("metrics", "summary", "pca_alignment", "mig", "dci") or key in tables or key in out:
                continue
            rows = _table(value) if key != "recon_loss_per_split" else None
            if rows is None and isinstance(value, dict) and key == "factor_alignment":
                rows = _table(value.get("table") or value.get("rows"))
            if rows:
                tables[key] = rows
    out["tables"] = tables
    out["settings"] = {
        k: settings_text(v)
        for k, v in {**{k: v for k, v in evaluation.items() if isinstance(v, dict)}, **m}.items()
        if isinstance(v, dict) and settings_text(v)
    }
    return out
