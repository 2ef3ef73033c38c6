"""Start and stop a real `streamlit run app.py` for browser tests (shared by e2e and the soak test)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(
    home: Path,
    port: int,
    log=subprocess.DEVNULL,
    extra_env: dict | None = None,
    timeout: float = 180.0,
    address: str | None = "127.0.0.1",
) -> subprocess.Popen:
    """A server on 127.0.0.1:port with VAE_LAB_HOME=home, returned once /_stcore/health answers ok.

    address=None starts it as the README does (`streamlit run app.py`: .streamlit/config.toml decides).
    """
    env = {
        **os.environ,
        "VAE_LAB_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(extra_env or {}),
    }
    where = ["--server.address", address] if address else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            *where,
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read().strip() == b"ok":
                return proc
        except OSError:
            time.sleep(0.3)
    stop_streamlit(proc)
    raise RuntimeError(f"streamlit did not become healthy on port {port} within {timeout:.0f} s")


def stop_streamlit(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
