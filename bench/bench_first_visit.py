"""A fresh server's first visit of each page, with 500 evaluated runs on disk (#24).

    nice -n 10 python bench/bench_first_visit.py [--runs 500] [--repeats 3] [--old DIR]   # prints JSON

Each visit is a new Python process that does what `streamlit run app.py` does at start (imports streamlit,
scans its components, imports app.py as the server module, which in this version starts the warm-up
thread of pages/_warmup.py), then times AppTest's first run of one page script. Arms, alternated within
each repeat (medians over repeats):

  old       (--old DIR: the code of an earlier commit, e.g. `git archive c864a9b | tar -x -C DIR`) the same
  at_once   this code, the visitor arriving the moment the server started (the warm-up thread still running)
  warmed    this code, the visitor arriving after the warm-up finished (its time is reported: how long after
            the start a visitor must arrive to find everything warm)

Pages: the seven, with their default run, and Embedding and Reconstructions with a run that has epoch
snapshots (what they draw: "embedding+snap", "reconstructions+snap"). The run folders are
bench_run_index.py's (470 runs and a finished 30-run sweep, evaluation.json of ~70 KB each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("home", "dataset", "train", "reconstructions", "embedding", "compare", "sweep")
SNAP = ("reconstructions+snap", "embedding+snap")


def child(page: str, code: Path, mode: str, select: str | None) -> None:
    """One visit in this (new) process; prints {'s': seconds, 'warmup_s': ..., 'error': ...}."""
    os.chdir(code)
    sys.path.insert(0, str(code))
    import streamlit  # noqa: F401
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.testing.v1 import AppTest

    bidi = BidiComponentManager()  # the server scans components once at start (AppTest would per test)
    bidi.discover_and_register_components(start_file_watching=False)
    t_start = time.perf_counter()
    import app  # noqa: F401 - the server module: starts the warm-up thread where there is one

    warm = [t for t in __import__("threading").enumerate() if t.name == "vae-lab-warmup"]
    if mode == "warmed":
        for t in warm:
            t.join()
    warmup_s = time.perf_counter() - t_start
    at = AppTest.from_file(str(code / "pages" / f"{page}.py"), default_timeout=180)
    at._bidi_component_manager = bidi
    if select:
        at.session_state["selected_run"] = select
    t0 = time.perf_counter()
    at.run()
    s = time.perf_counter() - t0
    shown = [e.value[:120] for e in [*at.info, *at.error, *at.warning]][:3]
    out = {
        "s": s,
        "shown": shown,
        "warmup_s": warmup_s if warm and mode == "warmed" else None,
        "charts": len(at.get("plotly_chart")),
    }
    if at.exception:
        out["error"] = str(at.exception[0].message)[:200]
    print("RESULT " + json.dumps(out))


def visit(page: str, code: Path, mode: str, home: Path, select: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", page.split("+")[0], "--code", str(code), "--mode", mode]
    if select:
        cmd += ["--select", select]
    env = {**os.environ, "VAE_LAB_HOME": str(home), "VAE_LAB_STANDBY": "0"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        return {"s": float("nan"), "error": (p.stderr or p.stdout)[-300:]}
    return json.loads(line[-1][len("RESULT ") :])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old", type=Path, help="an earlier version's source tree (the 'old' arm)")
    ap.add_argument("--pages", default=",".join(PAGES + SNAP))
    ap.add_argument("--child")
    ap.add_argument("--code", type=Path)
    ap.add_argument("--mode", default="at_once")
    ap.add_argument("--select")
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.code, args.mode, args.select)

    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    home = Path(tempfile.mkdtemp(prefix="bfv"))
    os.environ["VAE_LAB_HOME"] = str(home)
    from bench_run_index import write_runs
    from vae.data import datasets, presets

    tiny = home / "datasets" / "tiny"
    datasets.write_dataset(presets.preset_spec("seed-full", n=2000, image_size=32), tiny)
    write_runs(home, args.runs, dataset=tiny, with_snapshots=2, sweep_runs=min(30, args.runs // 10))
    from vae.runs import run_index

    run_index.list_runs()  # the index file, as a server that ran before left it
    snap = next(r["name"] for r in run_index.list_runs() if (Path(r["path"]) / "snapshots").is_dir())
    arms = ([("old", args.old, "at_once")] if args.old else []) + [
        ("at_once", ROOT, "at_once"),
        ("warmed", ROOT, "warmed"),
    ]
    times: dict = {}
    out = {"runs": args.runs, "repeats": args.repeats, "load_before": os.getloadavg(), "cpu": os.cpu_count()}
    for _ in range(args.repeats):
        for page in args.pages.split(","):
            for arm, code, mode in arms:
                r = visit(page, code, mode, home, snap if page.endswith("+snap") else None)
                times.setdefault(page, {}).setdefault(arm, []).append(r["s"])
                if r.get("warmup_s") is not None:
                    times[page].setdefault("warmup_s", []).append(r["warmup_s"])
                if r.get("error"):
                    out.setdefault("errors", {})[f"{page}/{arm}"] = r["error"]
    out["median_s"] = {p: {a: round(statistics.median(v), 2) for a, v in d.items()} for p, d in times.items()}
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    import shutil

    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
