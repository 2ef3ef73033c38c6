"""Scripts run on another Keras backend (JAX, or TensorFlow in a fresh process), one Python process per backend for
the whole session.

A JAX or TensorFlow process costs about 10 CPU seconds to start and each of them compiles its own steps, so the
test files that check "this works on JAX" (test_backends, test_methods_training, test_seed_group) register their
scripts here as sections and share one process per backend: the first test that needs a backend runs every section
that the session's selected tests use on it, in one process, and each test asserts on its own section's result
(a section that fails fails only its own test). Selecting one test runs only its own section.

    SECTIONS["jax", "name"] = script          # at import of the test module
    @uses_section("name")                     # the test; backend from its `backend` parameter, else "jax"
    def test_x(request): out = run_section(request, "jax", "name")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each section runs in its own working directory (a subfolder of the process's), with its own stdout captured;
# a section that raises is reported with its traceback, and the next section still runs.
RUNNER = """
import contextlib, io, json, os, sys, time, traceback
for name, code in json.loads(sys.stdin.read()).items():
    buf, t0 = io.StringIO(), time.time()
    os.makedirs(name, exist_ok=True)
    os.chdir(name)
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(code, name, "exec"), {"__name__": "__main__"})
        ok = True
    except BaseException:
        ok = False
        buf.write(traceback.format_exc())
    os.chdir("..")
    doc = {"name": name, "ok": ok, "out": buf.getvalue()[-6000:], "wall_s": round(time.time() - t0, 1)}
    print("SECTION " + json.dumps(doc), flush=True)
"""

SECTIONS: dict[tuple[str, str], str] = {}  # (backend, name) -> script
_DONE: dict[str, dict] = {}  # backend -> {name: {"ok", "out", "wall_s"}}


def uses_section(name: str):
    """Mark a test as asserting on section `name` (so that the first test of a backend runs it too)."""

    def mark(fn):
        fn.backend_sections = (*getattr(fn, "backend_sections", ()), name)
        # the first test of a backend waits for every section of that backend's process
        return pytest.mark.timeout(1800)(fn)

    return mark


def _item_backend(item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend", "jax") if callspec else "jax"


def _selected(session, backend: str) -> list[str]:
    """The sections of `backend` that the session's selected tests use, in the order of those tests."""
    names: list[str] = []
    for item in session.items:
        if _item_backend(item) != backend:
            continue
        for name in getattr(getattr(item, "function", None), "backend_sections", ()):
            if (backend, name) in SECTIONS and name not in names:
                names.append(name)
    return names


def run_section(request, backend: str, name: str, timeout: float = 1700) -> str:
    """The stdout of section `name` run on `backend`; asserts that it ran to its end without an exception."""
    if backend == "jax":
        pytest.importorskip("jax")
    if backend not in _DONE:
        names = _selected(request.session, backend)
        if name not in names:
            names.append(name)
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "PYTHONPATH": str(ROOT),
            "JAX_PLATFORMS": "cpu",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        workdir = request.getfixturevalue("tmp_path_factory").mktemp(f"sections_{backend}")
        if backend == "jax":
            # XLA's compilations dominate a JAX section (about 4 CPU s per step function here); a resumed run, or
            # a model loaded from its file, compiles the same functions again: JAX's on-disk compilation cache
            # (this process's own, empty at its start) gives those back instead of compiling them twice.
            env.update(
                JAX_COMPILATION_CACHE_DIR=str(workdir / "jax_cache"),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
            )
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER],
            input=json.dumps({n: SECTIONS[backend, n] for n in names}),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
        )
        found = {}
        for line in proc.stdout.splitlines():
            if line.startswith("SECTION "):
                doc = json.loads(line[len("SECTION ") :])
                found[doc["name"]] = doc
        tail = proc.stdout[-2000:] + proc.stderr[-4000:]
        for n in names:
            found.setdefault(n, {"ok": False, "out": f"section {n} did not report (rc {proc.returncode}):\n{tail}"})
        found["_process"] = {"wall_s": round(time.time() - t0, 1), "sections": names}
        _DONE[backend] = found
    got = _DONE[backend].get(name, {"ok": False, "out": f"section {name} was not run on {backend}"})
    print(f"{backend} process: {_DONE[backend]['_process']}; section {name}: {got.get('wall_s')} s")
    assert got["ok"], got["out"]
    return got["out"]
