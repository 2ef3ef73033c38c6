"""What a sweep's answer must say beside its statistics: which runs to distrust, what the settings cost,
and, before Start, how long it will take and what is held fixed (never imports TensorFlow, Ray or streamlit).

- `run_flags(sweep_dir, rows, status)`: one entry per run that has not converged (the Compare page's
  rule, vae.views.compare.convergence), was resumed (more than one attempt) or failed, with the reason
  (the sweep's record of the Ray error, else the run's own status message).
- `flag_lines(flags)`: those entries as short sentences for the page and `sweep --report`.
- `costs(rows, key, baseline)`: per value of the swept setting, the mean number of active latents
  (evaluation.json's `active_units` when present, else the last epoch's) and collapsed latents, and the
  validation reconstruction loss against the baseline value: what a setting paid for its effect.
- `fixed_settings(fixed, grid, evaluate)`: every setting the grid does not vary (β, method,
  architecture, ...), with the defaults filled in, and the evaluation mode.
- `sweep_estimate(cfg, n_runs, workers, n_train, n_val, earlier_runs)`: the wall time of the whole sweep
  from vae.views.estimate's per-run estimate (earlier runs with the same method, network, batch and
  image size measure it), the runs trained `workers` at a time.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import mean
from typing import Mapping, Sequence

from vae.runs import run_index
from vae.runs.config import TrainConfig
from vae.runs.folder import ERRORS, run_state
from vae.views.compare import CONVERGED, FALLING, SHORT, convergence
from vae.views.estimate import estimate_duration

NOT_CONVERGED, RESUMED, FAILED = "not converged", "resumed", "failed"


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def run_flags(sweep_dir, rows: Sequence[Mapping], status: Mapping | None = None) -> list[dict]:
    """[{'run', 'flags': [...], 'reason'}] for each run not converged, resumed or failed (see the module doc)."""
    records = (status or {}).get("runs") or {}
    out = []
    for row in rows:
        name = row.get("run")
        rd = Path(sweep_dir) / "runs" / str(name)
        rec = records.get(name) or {}
        flags, reason = [], ""
        state = row.get("state")
        if state == "finished":
            verdict = convergence(run_index.summary(rd).get("val_losses") or [])
            if verdict == FALLING:
                flags.append(NOT_CONVERGED)
        if int(rec.get("attempts") or row.get("attempts") or 0) > 1:
            flags.append(RESUMED)
        if state in ERRORS or state == "damaged" or (rec.get("error") and state != "finished"):
            flags.append(FAILED)
            reason = str(rec.get("error") or run_state(rd).get("message") or state)
        if flags:
            out.append({"run": name, "flags": flags, "reason": reason})
    return out


def flag_lines(flags: Sequence[Mapping]) -> list[str]:
    """The flags as sentences: counts with the runs named, then one line per failed run with its reason."""
    lines = []
    for flag, words in (
        (
            NOT_CONVERGED,
            "have **not converged** (validation loss still falling at the end: more epochs would change them)",
        ),
        (RESUMED, "were **resumed** after an interrupted attempt (wall time summed over attempts)"),
    ):
        names = [f["run"] for f in flags if flag in f["flags"]]
        if names:
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            lines.append(f"{len(names)} run(s) {words}: {shown}")
    for f in flags:
        if FAILED in f["flags"]:
            lines.append(f"**failed**: {f['run']}: {f['reason']}")
    return lines


def _active(row: Mapping):
    for k in ("eval_active_units", "active_units"):
        if _num(row.get(k)):
            return float(row[k])
    return None


def costs(rows: Sequence[Mapping], key: str, baseline=None, latent_dim: int | None = None) -> list[dict]:
    """Per value of `key` among finished rows: n, mean active latents (of `latent_dim`), runs with a collapsed
    latent, mean validation reconstruction loss and its change against `baseline`'s (relative)."""
    groups: dict = {}
    for r in rows:
        if r.get("state") == "finished":
            groups.setdefault(str(r.get(key)), []).append(r)

    def recon(rs):
        v = [float(r["val_recon"]) for r in rs if _num(r.get("val_recon"))]
        return mean(v) if v else None

    base = recon(groups.get(str(baseline), [])) if baseline is not None else None
    out = []
    for value, rs in groups.items():
        act = [a for a in map(_active, rs) if a is not None]
        collapsed = [float(r["eval_collapsed"]) for r in rs if _num(r.get("eval_collapsed"))]
        rec = recon(rs)
        out.append(
            {
                key: value,
                "n": len(rs),
                "active_units": round(mean(act), 2) if act else None,
                "of_latents": latent_dim,
                "runs_with_collapse": (
                    sum(c > 0 for c in collapsed)
                    if collapsed
                    else (sum(a < latent_dim for a in act) if latent_dim and act else None)
                ),
                "val_recon": rec,
                "recon_change": (rec - base) / abs(base) if rec is not None and base not in (None, 0) else None,
            }
        )
    return out


def cost_lines(cost_rows: Sequence[Mapping], key: str, baseline=None) -> list[str]:
    """Sentences for the settings that lost latents or reconstruction against the baseline."""
    lines = []
    base = next((c for c in cost_rows if str(c[key]) == str(baseline)), None)
    for c in cost_rows:
        parts = []
        if c["active_units"] is not None and c.get("of_latents"):
            if c["active_units"] < c["of_latents"]:
                parts.append(
                    f"**{c['active_units']:g} of {c['of_latents']} latents active** on average"
                    + (
                        f" ({c['runs_with_collapse']} of {c['n']} runs with a collapsed latent)"
                        if c.get("runs_with_collapse")
                        else ""
                    )
                )
        if c["recon_change"] is not None and base is not None and c is not base and c["recon_change"] > 0.02:
            parts.append(f"reconstruction loss **{c['recon_change']:+.0%}** against {key} = {baseline}")
        if parts:
            lines.append(f"{key} = {c[key]} (n = {c['n']}): " + "; ".join(parts))
    return lines


FIXED_SHOWN = (
    "method",
    "beta",
    "arch",
    "latent_dim",
    "epochs",
    "batch_size",
    "lr",
    "entanglement",
    "variance",
    "precision",
    "reduction",
    "method_params",
)


def fixed_settings(fixed: Mapping, grid: Mapping, evaluate: str = "quick") -> dict:
    """The settings every run of the sweep shares: `fixed` over TrainConfig's defaults, less the swept ones."""
    base = TrainConfig().to_dict()
    out = {k: fixed.get(k, base.get(k)) for k in FIXED_SHOWN if k not in grid}
    out.update({k: v for k, v in fixed.items() if k not in grid and k not in out and k not in ("dataset",)})
    out["evaluate"] = evaluate
    return out


def default_workers(cpus_per_run: int = 1) -> int:
    """Runs at a time on this machine when the sweep names no Ray cluster: its CPUs / CPUs per run."""
    import os

    return max(1, (os.cpu_count() or 1) // max(1, int(cpus_per_run or 1)))


def fmt_setting(v) -> str:
    """A setting for one line of text: 1e-05 as 1e-05, 0.001 as 0.001, {} as none."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {fmt_setting(x)}" for k, x in v.items()) or "none"
    return str(v)


def sweep_estimate(
    cfg: Mapping, n_runs: int, workers: int, n_train: int, n_val: int, earlier_runs: Sequence[Mapping] = ()
) -> dict:
    """{'seconds', 'per_run', 'source', 'runs', 'workers'}: n_runs of `cfg`'s estimated duration, `workers` at a time."""
    one = estimate_duration(cfg, n_train, n_val, earlier_runs)
    workers = max(1, int(workers or 1))
    waves = math.ceil(max(int(n_runs), 0) / workers)
    return {
        "seconds": one["seconds"] * waves,
        "per_run": one["seconds"],
        "source": one["source"],
        "runs": one["runs"],
        "workers": workers,
    }


__all__ = [
    "CONVERGED",
    "SHORT",
    "run_flags",
    "flag_lines",
    "costs",
    "cost_lines",
    "fixed_settings",
    "sweep_estimate",
    "default_workers",
    "fmt_setting",
]
