"""Does a sweep's quick evaluation give the same answer as the reference one? (issue 25)

Takes an evaluated sweep (its runs' evaluation.json are the reference: evaluated by `bench/reevaluate_sweep.py`
or by an earlier engine), copies it to WORK (the sweep is only read), evaluates every copied run again with
today's quick evaluation (`vae.training.evaluate.sweep_evaluation("quick")`), and compares, for every metric
the Sweeps answer shows (vae.sweeps.report.metric_columns), each setting's mean over seeds with its 95% t
interval. A metric passes when each arm's per-setting mean lies inside the other arm's interval. Also prints the
largest per-run difference and each arm's CPU seconds per evaluation (the reference's from its evaluation.json
is wall time, so only the new arm's CPU is measured here).

    VAE_LAB_HOME=HOME nice -n 10 python bench/quick_eval_equivalence.py \
        HOME/sweeps/gamma10 --work /tmp/quick_eval_equivalence --out bench/quick_eval_equivalence.md

A second call with the same WORK reuses the runs it has evaluated already.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vae.base.runtime import load_keras  # noqa: E402
from vae.sweeps import report, sweep  # noqa: E402

NOT_COMPARED = ("eval_seconds",)  # the evaluation's own time: what is meant to change
RUN_FILES = ("config.json", "status.json", "metrics.jsonl", "model.keras")


def copy_sweep(src: Path, dst: Path, with_model: bool, with_evaluation: bool) -> None:
    (dst / "runs").mkdir(parents=True, exist_ok=True)
    for f in ("sweep.json", "status.json"):
        if (src / f).exists():
            shutil.copy2(src / f, dst / f)
    for rd in sorted((src / "runs").iterdir()):
        out = dst / "runs" / rd.name
        out.mkdir(exist_ok=True)
        names = [f for f in RUN_FILES if with_model or f != "model.keras"]
        names += ["evaluation.json", "latents.csv"] if with_evaluation else []
        for f in names:
            if (rd / f).exists() and not (out / f).exists():
                shutil.copy2(rd / f, out / f)


def compare(ref_rows, new_rows, keys) -> list[dict]:
    out = []
    for m in [c for c in report.metric_columns(ref_rows) if c not in NOT_COMPARED]:
        ref = report.per_setting(ref_rows, keys, m)
        new = report.per_setting(new_rows, keys, m)
        by_run = {r["run"]: r.get(m) for r in ref_rows}
        diffs = [
            abs(r[m] - by_run[r["run"]])
            for r in new_rows
            if isinstance(r.get(m), (int, float)) and isinstance(by_run.get(r["run"]), (int, float))
        ]
        settings = []
        ok = True
        for a, b in zip(ref, new):
            inside = None
            if None not in (a["mean"], b["mean"], a["lo"], b["lo"]):
                inside = bool(a["lo"] <= b["mean"] <= a["hi"] and b["lo"] <= a["mean"] <= b["hi"])
            elif a["mean"] is not None or b["mean"] is not None:
                inside = a["mean"] == b["mean"] or (
                    a["mean"] is not None and b["mean"] is not None and math.isclose(a["mean"], b["mean"], abs_tol=1e-9)
                )
            ok = ok and inside is not False
            settings.append({"setting": {k: a[k] for k in keys}, "ref": a, "new": b, "inside": inside})
        out.append(
            {
                "metric": m,
                "label": report.label(m),
                "settings": settings,
                "max_run_diff": max(diffs, default=None),
                "pass": ok,
            }
        )
    return out


def fmt_ci(s):
    if s["mean"] is None:
        return "—"
    return f"{s['mean']:.4g}" + ("" if s["lo"] is None else f" [{s['lo']:.4g}, {s['hi']:.4g}]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path, help="an evaluated sweep folder (read only)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/quick_eval_equivalence"))
    ap.add_argument("--out", type=Path, help="write the table (markdown) here too")
    ap.add_argument("--reverse", action="store_true", help="take the runs from the last (a helper for a shard)")
    ap.add_argument(
        "--shard", default="0/1", help="I/N: evaluate only every N-th run from the I-th (run N calls side by side)"
    )
    a = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ref_dir, new_dir = a.work / "reference", a.work / "quick"
    copy_sweep(a.sweep, ref_dir, with_model=False, with_evaluation=True)
    copy_sweep(a.sweep, new_dir, with_model=True, with_evaluation=False)
    load_keras()
    from vae.training.evaluate import evaluate_run, sweep_evaluation

    doc = sweep.read_sweep(new_dir)
    cpu = []
    shard, shards = (int(x) for x in a.shard.split("/"))
    order = list(enumerate(doc["runs"]))
    for i, run in order[::-1] if a.reverse else order:
        rd = sweep.run_dir_of(new_dir, run)
        if (rd / "evaluation.json").exists() or i % shards != shard:
            continue
        t, w = time.process_time(), time.perf_counter()
        evaluate_run(rd, **sweep_evaluation("quick"))
        cpu.append(time.process_time() - t)
        print(f"{run['name']}: {cpu[-1]:.1f} s CPU, {time.perf_counter() - w:.1f} s wall", flush=True)
    keys = list(doc["grid"]) or ["seed"]
    if shards > 1:
        return 0  # the comparison: one more call without --shard once every shard is done
    new_rows = [r for r in report.finished(sweep.result_rows(new_dir)) if r.get("eval_dci_setting")]
    done = {r["run"] for r in new_rows}  # runs not evaluated yet (another shard still at work) are left out
    ref_rows = [r for r in report.finished(sweep.result_rows(ref_dir)) if r["run"] in done]
    if not ref_rows or len(ref_rows) != len(new_rows):
        print(f"runs: {len(ref_rows)} reference, {len(new_rows)} quick; nothing to compare", file=sys.stderr)
        return 1
    if len(done) < len(doc["runs"]):
        print(f"only {len(done)} of {len(doc['runs'])} runs evaluated so far: comparing those", file=sys.stderr)
    table = compare(ref_rows, new_rows, keys)
    settings_used = sorted({str(r.get("eval_dci_setting")) for r in new_rows})
    lines = [
        f"Sweep {a.sweep} ({len(new_rows)} of {len(doc['runs'])} runs; grid {doc['grid']}; {len(doc['seeds'])} seeds). Reference: its "
        f"evaluation.json (DCI {sorted({str(r.get('eval_dci_setting')) for r in ref_rows})}); quick: "
        f"sweep_evaluation('quick') (DCI {settings_used}). Per setting: mean [95% t interval] over seeds.",
        "",
        "| metric | setting | reference | quick | each mean in the other's interval | largest per-run difference |",
        "|---|---|---|---|---|---|",
    ]
    for row in table:
        for i, s in enumerate(row["settings"]):
            name = ", ".join(f"{k} = {report.fmt(v)}" for k, v in s["setting"].items())
            diff = "" if i or row["max_run_diff"] is None else f"{row['max_run_diff']:.3g}"
            lines.append(
                f"| {row['label'] if i == 0 else ''} | {name} | {fmt_ci(s['ref'])} | {fmt_ci(s['new'])} | "
                f"{'yes' if s['inside'] else 'no' if s['inside'] is False else 'n/a'} | {diff} |"
            )
    failed = [r["label"] for r in table if not r["pass"]]
    lines += ["", f"metrics compared: {len(table)}; outside an interval: {', '.join(failed) if failed else 'none'}"]
    if cpu:
        cpu.sort()
        lines.append(
            f"quick evaluation CPU seconds per run (this call, {len(cpu)} runs): median {cpu[len(cpu) // 2]:.1f}"
        )
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    (a.work / "comparison.json").write_text(json.dumps(table, indent=1, default=str))
    return 0 if not failed else 2


if __name__ == "__main__":
    raise SystemExit(main())
