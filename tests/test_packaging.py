"""The lab installs as a package with a `vae-lab` command that works from any folder, and `--quiet` is quiet."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, **extra}


def test_quiet_generate_prints_nothing_and_writes_the_dataset(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vae",
            "generate",
            "--preset",
            "seed-full",
            "--n",
            "60",
            "--size",
            "32",
            "--out",
            "ds",
            "--quiet",
        ],
        cwd=tmp_path,
        env=_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")
    assert (tmp_path / "ds" / "dataset.json").is_file()


@pytest.mark.slow
def test_quiet_train_prints_nothing_not_even_tensorflows_start_up_lines(tiny_dataset, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vae",
            "train",
            "--data",
            str(tiny_dataset),
            "--out",
            "run",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--quiet",
        ],
        cwd=tmp_path,
        env=_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")
    assert (tmp_path / "run" / "model.keras").is_file()


@pytest.mark.slow
def test_pip_install_gives_the_vae_lab_command_with_its_data_files_from_an_empty_folder(tmp_path):
    """A fresh venv, `pip install .` as a user runs it (pip builds the wheel in an isolated environment with the
    setuptools pyproject.toml asks for, fetched from PyPI), then the command from another folder."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr
    # The dependencies (TensorFlow etc.) are reused from the environment running the tests (every site-packages
    # folder it sees, a venv's and the system's), not installed again: a .pth file, read after the venv's own
    # site-packages, so `vae` still comes from the installed copy.
    where_site = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", where_site], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    outer = [p for p in dict.fromkeys(sys.path) if p.rstrip("/").endswith(("site-packages", "dist-packages"))]
    (Path(site) / "outer_environment.pth").write_text("".join(f"{p}\n" for p in outer))
    empty = tmp_path / "empty"
    empty.mkdir()
    # seed-exact reads the study's draws from vae/resources: the package's data files are installed
    out = subprocess.run(
        [str(venv / "bin" / "vae-lab"), "generate", "--preset", "seed-exact", "--size", "32", "--out", "ds"],
        cwd=empty,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "wrote ds" in out.stdout and (empty / "ds" / "images.npy").is_file()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "vae", "--help"],
        cwd=empty,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0 and "generate" in where.stdout
    origin = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import vae; print(vae.__file__)"],
        cwd=empty,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert str(venv) in origin.stdout  # the installed copy, not the repository's folder


def test_the_module_table_lists_every_module_of_the_tree_under_its_folder():
    """docs/layout.md's module table: one row per module (or a few named together), each under its folder."""
    text = (ROOT / "docs" / "layout.md").read_text()
    table = text[text.index("| folder (layer) | module |") :].split("\n\n")[0].splitlines()[2:]
    listed, folder = [], None
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0]:
            folder = cells[0].split("`")[1]  # "`vae/jobs/` processes" -> "vae/jobs/"
        listed += [folder + name for name in cells[1].split("`")[1::2]]
    tree = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "vae").rglob("*.py") if p.name != "__init__.py")
    assert sorted(listed) == tree
    assert len(listed) == len(set(listed))
    # the folders' order is the order lint-imports checks ([tool.importlinter] in pyproject.toml)
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "packages")["layers"]
    order = [name.strip().replace(".", "/") + "/" for ln in layers for name in ln.split("|")]
    readme_order = list(dict.fromkeys(p.rsplit("/", 1)[0] + "/" for p in listed if p.count("/") > 1))
    assert readme_order == [f for f in order if f in readme_order]


def test_no_code_reads_a_path_outside_the_repository():
    """A fresh clone is all the tests and the lab need: no code names the study's folder beside the repository
    or a path of the machine it was written on (the study's files the tests use are in tests/data/study)."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.toml", "*.cfg", "*.ini", ".ci/*"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    outside = ("../shared", '"shared"', "/work/", "shared/seed", "/root/", "/home/")
    found = [
        (name, bad)
        for name in tracked
        if name != "tests/test_packaging.py"
        for bad in outside
        if bad in (ROOT / name).read_text(errors="replace")
    ]
    assert tracked and found == []
