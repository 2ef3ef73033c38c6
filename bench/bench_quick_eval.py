"""CPU seconds of a sweep's quick evaluation, before and after (issue 25), on the same run, arms alternated.

Each arm is a process like a sweep's worker (one intra-op thread, vae.sweeps.engine's environment) that imports
Keras once and then evaluates copies of RUN: "after" two, one after the other, as a worker evaluates run after
run (the first pays for what a process computes once, the dataset's pixel PCA; the second is every later
run's); "before" one (it computes everything for every run). CPU seconds are time.process_time() around evaluate_run (every thread of the process), so the machine's
load inflates them less than wall time. "before" runs the quick evaluation of the code in --baseline (a copy
of the tree before the change, e.g. `git archive c864a9b | tar -x -C /tmp/base`): evaluate_run(run,
generator_metrics=False), reference DCI; "after" runs this tree's sweep_evaluation("quick"). Median of
--repeats per arm and position; the ratio is before / after.

    nice -n 10 python bench/bench_quick_eval.py RUN --baseline /tmp/base [--repeats 3]

RUN is only read (copied to a temporary folder); its dataset must be where its config.json says.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vae.sweeps.engine import _thread_env  # noqa: E402

CHILD = r"""
import json, shutil, sys, time
from pathlib import Path
from vae.base.runtime import load_keras
load_keras()
from vae.training import evaluate as ev
run, tmp, arm = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
kwargs = ev.sweep_evaluation("quick") if arm == "after" else {"generator_metrics": False}
out = []
for i in range(2 if arm == "after" else 1):
    rd = tmp / f"{arm}-{i}"
    shutil.rmtree(rd, ignore_errors=True)
    rd.mkdir(parents=True)
    for f in ("config.json", "status.json", "metrics.jsonl", "model.keras"):
        if (run / f).exists():
            shutil.copy2(run / f, rd / f)
    t, w = time.process_time(), time.perf_counter()
    res = ev.evaluate_run(rd, **kwargs)
    out.append({"cpu": time.process_time() - t, "wall": time.perf_counter() - w,
                "dci_setting": res["summary"].get("dci_setting"), "dci": res["summary"].get("dci_disentanglement")})
    shutil.rmtree(rd, ignore_errors=True)
print("RESULT " + json.dumps(out))
"""


def one(arm: str, tree: Path, run: Path, tmp: Path) -> list[dict]:
    env = {**os.environ, **_thread_env(1), "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(run), str(tmp), arm], cwd=tree, env=env, capture_output=True, text=True
    )
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode or not line:
        raise SystemExit(f"{arm} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--baseline", type=Path, required=True, help="a copy of the code before the change")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--side-by-side",
        action="store_true",
        help="run every arm's processes at once instead of one after the other (on a crowded machine)",
    )
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_quick_eval_"))
    res: dict = {"before": [], "after": []}
    jobs = [(arm, tree) for _ in range(a.repeats) for arm, tree in (("before", a.baseline.resolve()), ("after", ROOT))]
    try:
        if a.side_by_side:  # every process at once: each arm meets the same load
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(jobs)) as pool:
                done = list(pool.map(lambda ij: one(*ij[1], a.run.resolve(), tmp / str(ij[0])), enumerate(jobs)))
        else:
            done = [one(arm, tree, a.run.resolve(), tmp) for arm, tree in jobs]
        for i, ((arm, _), evs) in enumerate(zip(jobs, done)):
            res[arm].append(evs)
            print(
                f"repeat {i // 2 + 1} {arm}: "
                + ", ".join(f"{e['cpu']:.1f} s CPU ({e['wall']:.1f} s wall)" for e in evs)
                + f"; DCI setting {evs[0]['dci_setting']}, DCI disentanglement {evs[0]['dci']:.4f}",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    before = statistics.median(x[0]["cpu"] for x in res["before"])
    after = [statistics.median(x[i]["cpu"] for x in res["after"]) for i in (0, 1)]
    print("\n| quick evaluation of one run | before: CPU s | after: CPU s | before / after |")
    print("|---|---:|---:|---:|")
    for i, name in enumerate(("first in its process (computes the pixel PCA)", "every later run of the process")):
        print(f"| {name} | {before:.1f} | {after[i]:.1f} | {before / after[i]:.2f}x |")
    how = "all processes side by side" if a.side_by_side else "arms alternated"
    print(f"\nmedians of {a.repeats}, {how}; load at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
