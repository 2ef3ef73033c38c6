"""Each test's pass rate over N repeats of the e2e lane (or of any test files): a flake finder, not a CI step.

    nice -n 10 python bench/e2e_pass_rate.py -n 10                      # tests/e2e, 10 times in a row
    nice -n 10 python bench/e2e_pass_rate.py -n 3 --beside-training     # with a training running beside it
    nice -n 10 python bench/e2e_pass_rate.py -n 5 tests/test_standby.py tests/test_reliability.py -- -m slow

Each repeat is a fresh `python -m pytest` process (fresh servers, fresh data folders). A pass that needed a
known-bug workaround (a JUnit property `known_bug_*`, e.g. the reload+stop test's reload) is listed with what the
page showed; the screenshots go to --evidence. --beside-training keeps a
`python -m vae train` of a 64x64 dataset running the whole time (restarted whenever it ends), as a second user
would. Prints a table (test, passed/runs, the first failure's last line) and the load average; --json writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BesideTraining:
    """A CLI training kept running in a temporary folder (restarted when it ends); stopped on exit."""

    def __init__(self, epochs: int = 50):
        self.tmp = Path(tempfile.mkdtemp(prefix="beside-"))
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "vae",
                "generate",
                "--preset",
                "seed-full",
                "--n",
                "2000",
                "--size",
                "64",
                "--out",
                str(self.tmp / "data"),
                "--quiet",
            ],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        self.epochs, self.proc, self.count = epochs, None, 0

    def keep_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.count += 1
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vae",
                    "train",
                    "--data",
                    str(self.tmp / "data"),
                    "--out",
                    str(self.tmp / f"run{self.count}"),
                    "--epochs",
                    str(self.epochs),
                    "--quiet",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def read_report(xml_path: Path) -> tuple[dict[str, tuple[bool, str]], dict[str, list[str]]]:
    """From pytest's JUnit XML: test id -> (passed, first line of the failure), and test id -> the known-bug
    workarounds it used (JUnit properties named known_bug_*, with what the page showed)."""
    outcomes, workarounds = {}, {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        used = [
            f"{p.get('name')}: {p.get('value')}"
            for p in case.iter("property")
            if p.get("name", "").startswith("known_bug")
        ]
        if used:
            workarounds[name] = used
        if any(c.tag == "skipped" for c in case):
            continue
        bad = next((c for c in case if c.tag in ("failure", "error")), None)
        msg = ""
        if bad is not None:
            msg = (bad.get("message") or bad.text or "").strip().splitlines()
            msg = msg[0][:160] if msg else bad.tag
        outcomes[name] = (bad is None, msg)
    return outcomes, workarounds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", default=["tests/e2e"], help="test files or folders (default tests/e2e)")
    ap.add_argument("-n", type=int, default=10, help="repeats")
    ap.add_argument("--beside-training", action="store_true", help="keep a training running beside the tests")
    ap.add_argument("--json", help="write the table here too")
    ap.add_argument("--evidence", help="folder for the tests' screenshots of known bugs (default: a new temp folder)")
    ap.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: more pytest arguments")
    a = ap.parse_args(argv)
    extra = [x for x in a.pytest_args if x != "--"]
    beside = BesideTraining() if a.beside_training else None
    results: dict[str, list[tuple[bool, str]]] = {}
    known: dict[str, list[str]] = {}  # test -> the known-bug workarounds it used (a pass that needed one)
    evidence = Path(a.evidence or tempfile.mkdtemp(prefix="e2e-evidence-")).resolve()
    os.environ["VAE_LAB_E2E_EVIDENCE"] = str(evidence)  # the tests save what the page showed there
    repeats = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(a.n):
                if beside:
                    beside.keep_running()
                xml = Path(tmp) / f"r{k}.xml"
                load0, t0 = os.getloadavg()[0], time.time()
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "pytest",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        f"--junitxml={xml}",
                        *a.paths,
                        *extra,
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                while proc.poll() is None:
                    if beside:
                        beside.keep_running()
                    time.sleep(1)
                wall = time.time() - t0
                got, used_by = read_report(xml) if xml.exists() else ({}, {})
                for name, res in got.items():
                    results.setdefault(name, []).append(res)
                for name, used in used_by.items():
                    known.setdefault(name, []).extend(f"repeat {k + 1}: {u}" for u in used)
                failed = [n for n, (ok, _) in got.items() if not ok]
                repeats.append(
                    {
                        "repeat": k + 1,
                        "rc": proc.returncode,
                        "wall_s": round(wall, 1),
                        "load_start": round(load0, 1),
                        "load_end": round(os.getloadavg()[0], 1),
                        "failed": failed,
                    }
                )
                print(
                    f"repeat {k + 1}/{a.n}: rc {proc.returncode}, {wall:.0f} s, load {load0:.1f} -> "
                    f"{os.getloadavg()[0]:.1f}, failed: {failed or 'none'}",
                    flush=True,
                )
    finally:
        if beside:
            beside.close()
    print(f"\n{'test':100s} passed/runs")
    for name, runs in sorted(results.items()):
        passed = sum(ok for ok, _ in runs)
        first = next((m for ok, m in runs if not ok), "")
        print(f"{name:100s} {passed}/{len(runs)}  {first}")
    for name, used in sorted(known.items()):
        print(f"\nknown-bug workaround used by {name} ({len(used)}x; screenshots in {evidence}):")
        for u in used:
            print(f"  {u}")
    if not known:
        print("\nno test used a known-bug workaround")
    all_passed = sum(r["rc"] == 0 for r in repeats)
    print(
        f"\nwhole lane passed {all_passed}/{len(repeats)} repeats; beside training: {bool(beside)}; "
        f"{os.cpu_count()} CPUs"
    )
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "paths": a.paths,
                    "extra": extra,
                    "beside_training": bool(beside),
                    "repeats": repeats,
                    "tests": {
                        n: {
                            "passed": sum(ok for ok, _ in r),
                            "runs": len(r),
                            "first_failure": next((m for ok, m in r if not ok), ""),
                            "known_bug_workarounds": known.get(n, []),
                        }
                        for n, r in results.items()
                    },
                },
                indent=1,
            )
        )
    return 0 if all_passed == len(repeats) else 1


if __name__ == "__main__":
    sys.exit(main())
