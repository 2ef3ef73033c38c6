"""The lab installs as a package with a `vae-lab` command that works from any folder, and `--quiet` is quiet."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, **extra}


def test_quiet_generate_prints_nothing_and_writes_the_dataset(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vae", "generate", "--preset", "seed-full", "--n", "60", "--size",
                          "32", "--out", "ds", "--quiet"], cwd=tmp_path, env=_env(PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")
    assert (tmp_path / "ds" / "dataset.json").is_file()


@pytest.mark.slow
def test_quiet_train_prints_nothing_not_even_tensorflows_start_up_lines(tiny_dataset, tmp_path):
    out = subprocess.run([sys.executable, "-m", "vae", "train", "--data", str(tiny_dataset), "--out", "run",
                          "--epochs", "1", "--batch-size", "64", "--quiet"], cwd=tmp_path,
                         env=_env(PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")
    assert (tmp_path / "run" / "model.keras").is_file()


@pytest.mark.slow
def test_pip_install_gives_the_vae_lab_command_with_its_data_files_from_an_empty_folder(tmp_path):
    """A fresh venv (reusing the installed TensorFlow etc.), `pip install .`, then the command elsewhere."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", str(ROOT)], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    # seed-exact reads the study's draws from vae/resources: the package's data files are installed
    out = subprocess.run([str(venv / "bin" / "vae-lab"), "generate", "--preset", "seed-exact", "--size", "32",
                          "--out", "ds"], cwd=empty, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "wrote ds" in out.stdout and (empty / "ds" / "images.npy").is_file()
    where = subprocess.run([str(venv / "bin" / "python"), "-m", "vae", "--help"], cwd=empty, env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert where.returncode == 0 and "generate" in where.stdout
    origin = subprocess.run([str(venv / "bin" / "python"), "-c", "import vae; print(vae.__file__)"], cwd=empty,
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert str(venv) in origin.stdout  # the installed copy, not the repository's folder
