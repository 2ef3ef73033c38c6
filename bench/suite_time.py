"""Where the test suite's time goes, per file: wall seconds and CPU seconds (user + system of pytest and every
child process it waited for: trainers, servers, Chromium, Ray), one pytest process per file.

On a shared machine wall time follows the load; CPU seconds hardly do, and on CI's quiet 2-core machine a
file's wall time is between its CPU seconds / 2 and its CPU seconds (most of it is one busy process at a time).
Each file pays its own pytest start-up here (measured once as `(start-up)`: collecting tests/test_cli.py with
nothing run), which a whole-suite run pays once.

    nice -n 10 python bench/suite_time.py -m slow tests/test_train.py tests/e2e/test_dashboard.py ...
    nice -n 10 python bench/suite_time.py -m slow --all          # every file that has a slow test
    python bench/suite_time.py --json out.json ...               # also write the figures as JSON
    python bench/suite_time.py "tests/a.py::t1 tests/b.py::t2"   # one argument: one pytest process for both
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def durations(stdout: str) -> list[str]:
    """The lines of pytest's --durations table."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if "slowest" in line and "durations" in line), None)
    if start is None:
        return []
    return [line for line in lines[start + 1 :] if re.match(r"^\d+\.\d+s ", line)]


def run(args: list[str]) -> dict:
    t0, c0 = time.time(), children_cpu()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall, cpu = time.time() - t0, children_cpu() - c0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|error|errors|skipped|deselected)", tail)}
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "rc": proc.returncode,
        "counts": counts,
        "summary": tail,
        "durations": durations(proc.stdout),
        "output_tail": proc.stdout[-3000:] if proc.returncode not in (0, 5) else "",
    }


def files_with_marker(marker: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", marker],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    return sorted({line.split("::")[0] for line in out.splitlines() if "::" in line})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("-m", "--marker", default=None, help="pytest -m expression (e.g. slow)")
    ap.add_argument("--all", action="store_true", help="every file with a test that the marker selects")
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--durations", type=int, default=0, help="keep pytest's N slowest phases of each file")
    a = ap.parse_args(argv)
    files = a.files or (files_with_marker(a.marker or "slow") if a.all else [])
    if not files:
        ap.error("name test files or pass --all")
    sel = (["-m", a.marker] if a.marker else []) + ([f"--durations={a.durations}"] if a.durations else [])
    rows = {"(start-up)": run(["--collect-only", "tests/test_cli.py"])}
    load0 = os.getloadavg()
    for f in files:
        rows[f] = run([*sel, *f.split()])  # "a.py b.py" (one argument): both in one pytest process
        r = rows[f]
        print(f"{f:55s} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  {r['summary']}", flush=True)
        for line in r["durations"]:
            print("    " + line, flush=True)
        if r["output_tail"]:
            print(r["output_tail"], flush=True)
    load1 = os.getloadavg()
    total_wall = sum(r["wall_s"] for k, r in rows.items() if k != "(start-up)")
    total_cpu = sum(r["cpu_s"] for k, r in rows.items() if k != "(start-up)")
    print(f"start-up (collect one file): wall {rows['(start-up)']['wall_s']} s, cpu {rows['(start-up)']['cpu_s']} s")
    print(
        f"total: wall {total_wall:.0f} s, cpu {total_cpu:.0f} s over {len(files)} files; "
        f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end; {os.cpu_count()} CPUs"
    )
    if a.json:
        Path(a.json).write_text(json.dumps({"files": rows, "load": [load0, load1], "marker": a.marker}, indent=1))
    return 0 if all(r["rc"] in (0, 5) for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
