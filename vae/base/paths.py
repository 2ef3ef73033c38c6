"""Where the lab keeps its files: the data root and its datasets/, runs/ and sweeps/ folders.

The data root is the environment variable ``VAE_LAB_HOME`` (default: the
current directory). Datasets live in ``$VAE_LAB_HOME/datasets``, runs in
``$VAE_LAB_HOME/runs``. The functions read the variable on every call, so a
test can point them at a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path


def data_root() -> Path:
    """The folder that holds datasets/ and runs/ (absolute: the trainer process runs elsewhere)."""
    return Path(os.environ.get("VAE_LAB_HOME") or ".").expanduser().resolve()


def datasets_root(create: bool = False) -> Path:
    """``$VAE_LAB_HOME/datasets`` (created when ``create``)."""
    path = data_root() / "datasets"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def runs_root(create: bool = False) -> Path:
    """``$VAE_LAB_HOME/runs`` (created when ``create``)."""
    path = data_root() / "runs"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def sweeps_root(create: bool = False) -> Path:
    """``$VAE_LAB_HOME/sweeps`` (created when ``create``)."""
    path = data_root() / "sweeps"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def package_parent() -> str:
    """The folder that holds the `vae` package: put on PYTHONPATH of the processes the lab starts
    (trainer, evaluation, sweep driver, Ray workers), so `python -m vae` works from any folder."""
    return str(Path(__file__).resolve().parents[2])


def lab_pythonpath(environ=None) -> str:
    """PYTHONPATH for a process the lab starts: the package's folder first, then the caller's own."""
    environ = os.environ if environ is None else environ
    return package_parent() + (os.pathsep + environ["PYTHONPATH"] if environ.get("PYTHONPATH") else "")


def child_env() -> dict:
    """The environment of a process the lab starts (trainer, evaluation, sweep driver): this one's, with
    `lab_pythonpath()` and TensorFlow's C++ log level 2 unless the caller set one."""
    env = dict(os.environ)
    env["PYTHONPATH"] = lab_pythonpath(env)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def start_detached(cmd: list[str], log_path, env: dict | None = None) -> int:
    """Start `cmd` as its own OS process (its own session: a Streamlit rerun, a closed tab or a server restart
    never touches it), stdout and stderr appended to `log_path`, from `package_parent()` with `child_env()`
    unless `env` is given; returns its pid. A thread waits for it, so once it exits it does not stay a
    zombie under the long-running process that started it (the dashboard's server)."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=package_parent(),
            env=child_env() if env is None else env,
            start_new_session=True,
        )
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid
