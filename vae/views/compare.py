"""Which runs can stand side by side: settings, filters, the default comparable group, convergence.

The Compare page lays out what this module decides (never imports streamlit or TensorFlow):

- `run_row(run)` flattens one run (as `launcher.list_runs` returns it) into its settings, state, final
  losses, evaluation summary and flags (`converged`, `stopped`).
- `default_group(rows)` picks the largest group of finished runs whose settings are equal except one
  (the compared setting, "Against"); replicates that differ only in seed belong to the same group.
- `convergence(val_losses)` says whether the validation loss is still falling clearly at the end:
  the least-squares line through the last WINDOW + 1 epochs would lower it by more than TOLERANCE
  (relative) over WINDOW more epochs. Fewer epochs than that: "too short to tell".
- `filter_rows(rows, **choices)` keeps the runs whose settings are among the chosen values.
- `differences(rows, x, y)` each value of setting x against its smallest, on column y, by
  vae.measures.stats.compare_settings (the Sweeps page's test); `chance_band(runs, y)` chance for an
  alignment column (evaluation.json's random-rotation levels).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from vae.base.errors import UserError
from vae.measures import stats
from vae.runs import folder

DEFAULT_METHOD = "beta-vae"  # a run config without a `method` field trained the β-VAE family's loss
FILTERS = ("dataset", "state", "arch", "method", "epochs")
# Settings that define a run (seed is a replicate, not a setting to compare across).
SETTINGS = (
    "dataset",
    "arch",
    "method",
    "epochs",
    "latent_dim",
    "entanglement",
    "variance",
    "batch_size",
    "lr",
    "beta",
    "gamma",
    "image_size",
    "sample_weights",
    "precision",
)
COMPARABLE = (
    "gamma",
    "beta",
    "entanglement",
    "latent_dim",
    "arch",
    "method",
    "variance",
    "batch_size",
    "lr",
    "epochs",
)  # settings a study varies, in the order a tie is broken
FINAL_LOSSES = ("loss", "val_loss", "val_recon", "val_kl", "val_entanglement")
WINDOW = 3
TOLERANCE = 0.01

CONVERGED, FALLING, SHORT = "converged", "still falling", "too short to tell"


def convergence(val_losses: Sequence[float], window: int = WINDOW, tolerance: float = TOLERANCE) -> str:
    """'converged', 'still falling' or 'too short to tell' for a run's per-epoch validation losses.

    Still falling: a straight line fitted to the last `window` + 1 finite values falls by more than
    `tolerance` of the last value over `window` epochs (e.g. more than 1% over the next 3 epochs).
    """
    v = np.asarray([x for x in val_losses if isinstance(x, (int, float)) and math.isfinite(x)], dtype=float)
    if len(v) < window + 1:
        return SHORT
    tail = v[-(window + 1) :]
    slope = np.polyfit(np.arange(len(tail), dtype=float), tail, 1)[0]
    scale = max(abs(tail[-1]), 1e-12)
    return FALLING if -slope * window / scale > tolerance else CONVERGED


@lru_cache(maxsize=2048)
def _validation_curve(path: str, stamp: tuple) -> tuple:
    return tuple(m.get("val_loss") for m in folder.read_metrics(path, "epoch"))


def validation_curve(run_dir) -> list:
    """Per-epoch validation losses of a run (cached until its metrics.jsonl changes)."""
    try:
        st = (Path(run_dir) / "metrics.jsonl").stat()
    except FileNotFoundError:
        return []
    return list(_validation_curve(str(run_dir), (st.st_mtime_ns, st.st_size)))


def run_row(run: Mapping, val_losses: Sequence[float] | None = None) -> dict:
    """One run as a flat row: name, state, flags, settings, final losses, evaluation numbers.

    `val_losses` are the per-epoch validation losses (read from metrics.jsonl when not given).
    """
    cfg, final = run.get("config") or {}, run.get("final") or {}
    if val_losses is None and "val_losses" in run:  # a vae.runs.run_index row carries the curve
        val_losses = run["val_losses"]
    if val_losses is None:
        val_losses = validation_curve(run["path"]) if run.get("path") else []
    if "evaluation" in run:  # a vae.runs.run_index row carries the summary: no file read per run and rerun
        summary = run["evaluation"] or {}
    else:
        summary = (folder.evaluation_summary(run["path"]) if run.get("path") else None) or {}
    state = run.get("state")
    row = {
        "name": run.get("name"),
        "state": state,
        "converged": convergence(val_losses) if state == "finished" else "-",
        "stopped": state in ("stopped", "failed", "diverged"),
        "beta": cfg.get("beta"),
        "gamma": cfg.get("gamma"),
        "dataset": Path(str(cfg.get("dataset") or "?")).name,
        "method": cfg.get("method") or DEFAULT_METHOD,
        **{k: cfg.get(k) for k in SETTINGS if k not in ("dataset", "method", "beta", "gamma")},
        "seed": cfg.get("seed"),
        "epochs_done": final.get("epoch"),
    }
    row.update({k: final.get(k) for k in FINAL_LOSSES})
    row.update({k: final.get(k) for k in ("total_correlation", "active_units")})
    row.update(alignment_columns(summary, final))
    row.update(
        {k: v for k, v in summary.items() if k not in row and isinstance(v, (int, float)) and not isinstance(v, bool)}
    )
    if summary.get("dci_setting"):
        row["dci setting"] = summary["dci_setting"]
    row["flag"] = marker_of(row)
    return row


def _key(row: Mapping, keys: Iterable[str]) -> tuple:
    return tuple(str(row.get(k)) for k in keys)


def default_group(rows: Sequence[Mapping], candidates: Sequence[str] = COMPARABLE) -> tuple[str | None, list[dict]]:
    """(compared setting, runs) of the largest group of finished runs equal in every setting but one.

    Among groups of equal size, one where the compared setting takes more values wins, then the
    order of `candidates`. With no finished run: (None, []). With finished runs that vary in
    nothing: the largest group of identical settings and the first candidate.
    """
    finished = [dict(r) for r in rows if r.get("state") == "finished"]
    best: tuple | None = None
    for rank, setting in enumerate(candidates):
        others = [k for k in SETTINGS if k != setting]
        groups: dict[tuple, list[dict]] = {}
        for r in finished:
            groups.setdefault(_key(r, others), []).append(r)
        for group in groups.values():
            values = len({str(r.get(setting)) for r in group})
            score = (len(group), values, -rank)
            if best is None or score > best[0]:
                best = (score, setting, group)
    if best is None:
        return None, []
    return best[1], best[2]


def varying_settings(rows: Sequence[Mapping], settings: Sequence[str] = SETTINGS) -> list[str]:
    """The settings that take more than one value among `rows` (seed not counted)."""
    return [k for k in settings if len({str(r.get(k)) for r in rows}) > 1]


def filter_rows(rows: Sequence[Mapping], **choices: Iterable) -> list[dict]:
    """Rows whose value of each given setting is among the chosen values (compared as text)."""
    allowed = {k: {str(v) for v in vs} for k, vs in choices.items() if vs is not None}
    return [dict(r) for r in rows if all(str(r.get(k)) in vs for k, vs in allowed.items())]


def options(rows: Sequence[Mapping], setting: str) -> list:
    """The distinct values of a setting among rows, sorted (numbers numerically)."""
    values = {r.get(setting) for r in rows}
    return sorted(values, key=lambda v: (not isinstance(v, (int, float)), v if isinstance(v, (int, float)) else str(v)))


def flag_counts(rows: Sequence[Mapping]) -> dict:
    """How many of the rows have not converged, are too short to tell, or were stopped before the end."""
    c = Counter(r.get("converged") for r in rows)
    return {
        "still falling": c[FALLING],
        "too short to tell": c[SHORT],
        "stopped": sum(bool(r.get("stopped")) for r in rows),
    }


def marker_of(row: Mapping) -> str:
    """The scatter marker's meaning: 'finished, converged', 'not converged' or 'stopped'."""
    if row.get("stopped") or row.get("state") not in ("finished",):
        return "stopped / not finished"
    return "finished, converged" if row.get("converged") == CONVERGED else "finished, not converged"


def alignment_columns(summary: dict, final: dict) -> dict:
    """The headline alignment of a run for tables: from evaluation.json's summary if there is one,
    else from the last epoch's metrics; both of the training codes. Runs logged before the factor
    alignment carry `alignment_score` (PCA of the validation codes): it stays under that name."""
    if summary.get("factor_alignment") is not None or "pca_alignment" in summary:
        src, source = summary, "evaluation.json (best model)"
    elif "factor_alignment" in final or "pca_alignment" in final:
        src, source = final, "last epoch"
    else:
        return {
            "factor_alignment": None,
            "pca_alignment": None,
            "alignment from": "",
            "alignment_score (old: PCA, validation codes)": summary.get(
                "alignment_score", final.get("alignment_score")
            ),
        }
    return {
        "factor_alignment": src.get("factor_alignment"),
        "pca_alignment": src.get("pca_alignment"),
        "pca_reason": src.get("pca_alignment_reason") or "",
        "alignment from": source,
        # which epoch the numbers are of, and whether latents collapsed
        "evaluated epoch": summary.get("evaluated_epoch") if src is summary else final.get("epoch"),
        "active_units": src.get("active_units"),
        "collapsed": src.get("collapsed"),
    }


def evaluation_notes(run_list: Sequence[Mapping]) -> dict:
    """evaluation.json's notes (why a number carries little information here), one per metric, of runs
    as launcher.list_runs gives them."""
    notes = {}
    for run in run_list:
        path = run.get("path")
        if "evaluation_notes" in run:  # a vae.runs.run_index row: no file read per run and rerun
            found = run["evaluation_notes"]
        elif path:
            try:
                found = (folder.read_evaluation(path) or {}).get("notes")
            except UserError:  # a damaged evaluation.json: the page that opens the run says why
                continue
        else:
            found = None
        notes.update({k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {})
    return notes


def differences(rows: Sequence[Mapping], x: str, y: str, level: float = 0.95) -> list[dict]:
    """Each value of setting `x` against its smallest value, on column `y`, over the finished runs shown:
    stats.compare_settings (paired t on per-seed differences when the seeds match, else Welch; Holm over
    these comparisons of `y`), as table rows with the verdict in words. [] when `x` has fewer than two
    values with a number in `y`, or the runs differ in another setting too (the difference would not
    be `x`'s alone)."""
    done = [
        dict(r)
        for r in rows
        if r.get("state") == "finished"
        and isinstance(r.get(y), (int, float))
        and not isinstance(r.get(y), bool)
        and math.isfinite(r[y])
    ]
    values = options(done, x)
    if len(values) < 2 or [k for k in varying_settings(done) if k != x]:
        return []
    out = []
    for c in stats.compare_settings(done, y, x, values[0], level=level):
        out.append(
            {
                x: c["value"],
                "against": f"{x} = {values[0]}",
                "n": c["n"],
                "n against": c["n_baseline"],
                "paired": c["paired"],
                "difference": c["diff"],
                "low": c["lo"],
                "high": c["hi"],
                "effect size": c["effect_size"],
                "p (Holm)": c["p_adjusted"],
                "verdict": c["verdict"],
                "answer": stats.verdict_words(c, y),
                "what these seeds can detect": stats.power_words(c),
            }
        )
    return out


def chance_band(run_list: Sequence[Mapping], column: str) -> dict | None:
    """Chance for an alignment column: the mean over the runs of their chance levels' mean, lo and hi
    (evaluation.json summary 'chance', vae.measures.analysis.rotation_baseline); None when no run has one."""
    got = [((r.get("evaluation") or {}).get("chance") or {}).get(column) for r in run_list]
    got = [
        g for g in got if isinstance(g, dict) and all(isinstance(g.get(k), (int, float)) for k in ("mean", "lo", "hi"))
    ]
    if not got:
        return None
    return {k: float(np.mean([g[k] for g in got])) for k in ("mean", "lo", "hi")} | {"runs": len(got)}
