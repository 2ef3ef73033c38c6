"""Safe by default: the lab listens on loopback only, read-only mode refuses every change (library, CLI,
pages), a banner warns when anyone on the network can change data, and the disk guard refuses jobs
that do not fit, before anything is written."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from vae import cli
from vae.base import safety
from vae.base.errors import UserError
from vae.data import datasets
from vae.data import presets
from vae.jobs import deletes
from vae.jobs import launcher
from vae.jobs import standby
from vae.runs import folder
from vae.runs.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def tree(root: Path) -> dict:
    """Every file under root (hidden ones too) with its content hash, and every folder."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


# ================================================================== loopback by default


@pytest.mark.slow
def test_readme_command_listens_on_loopback_only(tmp_path):
    """`streamlit run app.py` as the README says (no --server.address): every listening socket is loopback."""
    from tests.streamlit_server import free_port, start_streamlit, stop_streamlit

    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)\n", readme).group(1)
    assert "streamlit run app.py" in first and "--server.address" not in first
    port = free_port()
    proc = start_streamlit(tmp_path, port, extra_env={"VAE_LAB_STANDBY": "0"}, address=None)
    try:
        listening = [
            c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
        ]
        assert port in {a.port for a in listening}
        assert all(ipaddress.ip_address(a.ip).is_loopback for a in listening), listening
    finally:
        stop_streamlit(proc)


def test_the_repository_config_binds_the_server_to_loopback():
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert safety.is_loopback_address(cfg["server"]["address"])


@pytest.mark.parametrize(
    "address,loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("", False),
        (None, False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
    ],
)
def test_loopback_addresses_are_told_from_network_ones(address, loopback):
    assert safety.is_loopback_address(address) is loopback


# ================================================================== the warning banner


@pytest.fixture
def server_address():
    """Set Streamlit's server.address for an AppTest of app.py; restored afterwards."""
    from streamlit import config

    old = config.get_option("server.address")
    yield lambda value: config.set_option("server.address", value)
    config.set_option("server.address", old)


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def test_every_page_warns_when_the_server_is_bound_to_a_network_address(tmp_workspace, server_address):
    server_address("0.0.0.0")
    at = _app().run()
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "anyone who can reach it can change and delete data" in text and "0.0.0.0" in text
    for name in ("dataset", "train", "compare"):
        at.switch_page(f"pages/{name}.py").run()
        assert any("anyone who can reach it" in w.value for w in at.warning), name


def test_no_warning_on_loopback_and_a_viewer_notice_instead_in_read_only_mode(
    tmp_workspace, server_address, monkeypatch
):
    server_address("127.0.0.1")
    at = _app().run()
    assert not any("anyone who can reach it" in w.value for w in at.warning)
    server_address("0.0.0.0")
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    at = _app().run()
    assert not any("anyone who can reach it" in w.value for w in at.warning)  # nobody can change anything
    assert any("Read-only viewer" in i.value for i in at.info)


# ================================================================== read-only mode: library and CLI


@pytest.fixture
def lab(tiny_dataset, fake_run, tmp_workspace):
    """A data folder with a dataset, a finished, a stopped (with checkpoint) and a running run."""
    fake_run("done", dataset=str(tiny_dataset))
    stopped = fake_run("stopped", state="stopped", done_epochs=1, epochs=3, dataset=str(tiny_dataset))
    (stopped / "last.keras").write_bytes(b"not a real model")
    fake_run("live", state="running", done_epochs=1, epochs=5, pid=os.getpid(), dataset=str(tiny_dataset))
    src = tmp_workspace / "incoming"
    src.mkdir()
    for i in range(12):
        Image.fromarray(np.full((20, 20), 10 * i, np.uint8)).save(src / f"{i:02d}.png")
    return tmp_workspace


def _mutations(home: Path):
    ds, runs = home / "datasets" / "tiny", home / "runs"
    cfg = lambda: TrainConfig(dataset=str(ds), image_size=32, epochs=1, batch_size=16)  # noqa: E731

    def train_run():
        from vae.training import train  # imports TensorFlow

        train.train_run(runs / "done")

    def evaluate_run():
        from vae.training import evaluate

        evaluate.evaluate_run(runs / "done")

    return {
        "generate": lambda: datasets.write_dataset(
            presets.preset_spec("seed-full", n=12, image_size=32), home / "datasets" / "new"
        ),
        "import": lambda: datasets.import_images(home / "incoming", home / "datasets" / "imported", size=32),
        "delete dataset": lambda: datasets.delete_dataset(ds, root=home / "datasets"),
        "delete dataset (checked)": lambda: deletes.delete_dataset(ds, home / "datasets", runs),
        "start run": lambda: launcher.start_run(cfg(), runs_root=runs),
        "resume run": lambda: launcher.resume_run(runs / "stopped"),
        "stop run": lambda: launcher.request_stop(runs / "live"),
        "create run": lambda: folder.write_run_config(runs / "new-run", cfg()),
        "train run": train_run,
        "evaluate run": evaluate_run,
        "standby launch": lambda: standby.launch(runs, dict(os.environ)),
    }


MUTATIONS = [
    "generate",
    "import",
    "delete dataset",
    "delete dataset (checked)",
    "start run",
    "resume run",
    "stop run",
    "create run",
    "evaluate run",
    "standby launch",
    pytest.param("train run", marks=pytest.mark.slow),
]  # vae.training.train imports TensorFlow


@pytest.mark.parametrize("action", MUTATIONS)
def test_read_only_mode_refuses_every_change_in_the_library_and_leaves_the_disk_unchanged(lab, monkeypatch, action):
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    before = tree(lab)
    with pytest.raises(UserError, match="read-only mode \\(VAE_LAB_READONLY=1\\)"):
        _mutations(lab)[action]()
    assert tree(lab) == before


def test_read_only_mode_starts_no_standby_trainer(lab, monkeypatch):
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    monkeypatch.setenv("VAE_LAB_STANDBY", "1")
    before = tree(lab)
    assert launcher.ensure_standby(lab / "runs") is None
    assert tree(lab) == before


def test_without_read_only_mode_the_same_calls_work(lab, monkeypatch):
    """The guard is the mode, not the calls: a delete and a stop go through when writable."""
    monkeypatch.delenv("VAE_LAB_READONLY", raising=False)
    launcher.request_stop(lab / "runs" / "live")
    assert (lab / "runs" / "live" / "stop").exists()
    datasets.write_dataset(presets.preset_spec("seed-full", n=12, image_size=32), lab / "datasets" / "new")
    datasets.delete_dataset(lab / "datasets" / "new", root=lab / "datasets")
    assert not (lab / "datasets" / "new").exists()


def _cli_commands(home: Path) -> dict:
    ds, runs = home / "datasets" / "tiny", home / "runs"
    return {
        "generate": [
            "generate",
            "--preset",
            "seed-full",
            "--n",
            "12",
            "--size",
            "32",
            "--out",
            str(home / "datasets" / "x"),
        ],
        "import": ["import", str(home / "incoming"), "--out", str(home / "datasets" / "y"), "--size", "32"],
        "train": ["train", "--data", str(ds), "--out", str(runs / "cli-run"), "--epochs", "1", "--batch-size", "16"],
        "train --run-dir": ["train", "--run-dir", str(runs / "done")],
        "train --resume": ["train", "--run-dir", str(runs / "stopped"), "--resume"],
        "evaluate": ["evaluate", str(runs / "done")],
    }


@pytest.mark.parametrize("command", ["generate", "import", "train", "train --run-dir", "train --resume", "evaluate"])
def test_read_only_mode_refuses_every_cli_command_that_changes_data(lab, monkeypatch, capsys, command):
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    before = tree(lab)
    assert cli.main(_cli_commands(lab)[command]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot ") and "VAE_LAB_READONLY=1" in err and "Traceback" not in err
    assert tree(lab) == before


def test_read_only_cli_in_its_own_process_still_lists_runs_but_refuses_generate(lab):
    env = {**os.environ, "VAE_LAB_READONLY": "1", "PYTHONPATH": str(ROOT)}
    before = tree(lab)
    listed = subprocess.run(
        [sys.executable, "-m", "vae", "runs", "--root", str(lab / "runs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0 and "live" in listed.stdout and "stopped" in listed.stdout
    gen = subprocess.run(
        [sys.executable, "-m", "vae", *_cli_commands(lab)["generate"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gen.returncode == 2 and "read-only mode" in gen.stderr
    assert tree(lab) == before


# ================================================================== read-only mode: pages

MUTATING_LABELS = re.compile(r"^(Generate|Import|Delete|Yes, delete.*|Start|Stop|Resume|Quick start|Evaluate.*)$")


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


@pytest.mark.parametrize("name", ["home", "dataset", "train", "reconstructions", "embedding", "compare"])
def test_read_only_pages_show_the_runs_but_offer_no_way_to_change_them(lab, monkeypatch, name):
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    before = tree(lab)
    at = _page(name).run()
    assert not at.exception
    offered = [b.label for b in at.button if MUTATING_LABELS.match(b.label)]
    assert offered == [] and not at.get("file_uploader"), offered
    if name in ("train", "reconstructions", "embedding"):
        assert at.selectbox(key="train_run" if name == "train" else "run").options  # the runs can be picked
    assert tree(lab) == before


def test_read_only_train_page_shows_the_running_run_without_stop(lab, monkeypatch):
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    at = _page("train").run()
    assert at.selectbox(key="train_run").value == "live" and "running" in at.get("progress")[0].proto.text
    assert not any(b.label in ("Stop", "Start") for b in at.button)
    monkeypatch.delenv("VAE_LAB_READONLY")
    at = _page("train").run()  # the same page, writable, offers them
    assert {"Start", "Stop"} <= {b.label for b in at.button}


# ================================================================== disk guard


@pytest.fixture
def small_disk(monkeypatch):
    """The data folder's disk reports `free` bytes (default: 1 MB)."""

    def set_free(free=1024**2):
        monkeypatch.setattr(safety, "free_bytes", lambda path: free)

    set_free()
    return set_free


def test_dataset_size_estimate_matches_the_written_folder(tmp_path):
    for spec in (
        presets.preset_spec("seed-punctured", n=300, image_size=32),
        presets.preset_spec("dsprites", n=200, image_size=64),
    ):
        est = datasets.estimate_dataset_bytes(spec)
        out = datasets.write_dataset(spec, tmp_path / spec.preset)
        used = sum(safety.on_disk(p.stat().st_size) for p in out.rglob("*") if p.is_file())
        assert 0.8 * used <= est <= 1.25 * used, (spec.preset, est, used)


def test_generate_refuses_when_the_disk_is_too_small_and_writes_nothing(tmp_workspace, small_disk):
    before = tree(tmp_workspace)
    with pytest.raises(UserError, match="not enough free disk space to write dataset big"):
        datasets.write_dataset(presets.preset_spec("seed-full", image_size=64), tmp_workspace / "datasets" / "big")
    assert tree(tmp_workspace) == before


def test_the_margin_counts_too(tmp_workspace, small_disk, monkeypatch):
    spec = presets.preset_spec("seed-full", n=50, image_size=32)
    need = datasets.estimate_dataset_bytes(spec)
    small_disk(need + safety.margin_bytes() - 1)
    with pytest.raises(UserError, match="margin"):
        datasets.write_dataset(spec, tmp_workspace / "datasets" / "a")
    small_disk(need + safety.margin_bytes() + 1)
    assert (datasets.write_dataset(spec, tmp_workspace / "datasets" / "a") / "dataset.json").exists()
    monkeypatch.setenv("VAE_LAB_DISK_MARGIN_MB", "0")
    small_disk(need - 1)
    with pytest.raises(UserError, match="needs about"):
        datasets.write_dataset(spec, tmp_workspace / "datasets" / "b")


def test_import_refuses_when_the_disk_is_too_small_and_writes_nothing(lab, small_disk):
    before = tree(lab)
    with pytest.raises(UserError, match="not enough free disk space to import 12 images"):
        datasets.import_images(lab / "incoming", lab / "datasets" / "imp", size=32)
    assert tree(lab) == before


def test_start_and_resume_refuse_when_the_run_does_not_fit(lab, small_disk):
    import shutil

    shutil.rmtree(lab / "runs" / "live")  # a free trainer slot: only the disk is in the way
    (lab / "runs" / ".lock").touch()
    before = tree(lab)
    cfg = TrainConfig(dataset=str(lab / "datasets" / "tiny"), image_size=32, epochs=2, batch_size=16)
    with pytest.raises(UserError, match="not enough free disk space to train run"):
        launcher.start_run(cfg, runs_root=lab / "runs")
    with pytest.raises(UserError, match="not enough free disk space to train run stopped \\(2 epochs\\)"):
        launcher.resume_run(lab / "runs" / "stopped")
    assert tree(lab) == before


def test_cli_train_refuses_before_creating_the_run_folder(lab, small_disk, capsys):
    out = lab / "runs" / "cli-run"
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(lab / "datasets" / "tiny"),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--batch-size",
                "16",
            ]
        )
        == 2
    )
    assert "not enough free disk space" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow  # vae.training.train imports TensorFlow
def test_a_trainer_that_finds_the_disk_full_fails_the_run_before_writing_a_checkpoint(lab, small_disk):
    """A queued or resumed run is checked again when its trainer starts (space may be gone by then)."""
    from vae.runs.folder import read_status
    from vae.training import train

    run = lab / "runs" / "prepared"
    folder.write_run_config(
        run, TrainConfig(dataset=str(lab / "datasets" / "tiny"), image_size=32, epochs=1, batch_size=16)
    )
    with pytest.raises(UserError, match="not enough free disk space"):
        train.train_run(run)
    st = read_status(run)
    assert st["state"] == "failed" and "not enough free disk space" in st["message"]
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "status.json"]


def test_run_estimate_scales_with_epochs_snapshots_and_the_network():
    cfg = TrainConfig(dataset="x", image_size=64, epochs=10)
    counts = {"train": 4499, "validation": 501, "transects": 45}
    full, half = safety.estimate_run_bytes(cfg, counts), safety.estimate_run_bytes(cfg, counts, epochs=5)
    assert full["checkpoints"] == half["checkpoints"] and full["snapshots"] == 2 * half["snapshots"]
    assert full["checkpoints"] >= 3 * 12 * safety.param_count("burgess", 64, 3)
    big = safety.estimate_run_bytes(TrainConfig(dataset="x", image_size=256, arch="seed", epochs=10), counts)
    assert big["total"] > 0 and safety.param_count("seed", 256, 3) == 549_956  # the study's count (docs/study.md)


def test_dataset_page_shows_the_size_estimate_and_warns_when_it_does_not_fit(tmp_workspace, small_disk):
    small_disk(10 * 1024**4)
    at = _page("dataset").run()
    est = datasets.estimate_dataset_bytes(presets.preset_spec("seed-full", image_size=64))
    assert any(f"About **{safety.human_bytes(est)}** on disk" in c.value for c in at.caption)
    assert not any("Not enough free disk space" in w.value for w in at.warning)
    small_disk()
    at = _page("dataset").run()
    assert any("Not enough free disk space" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Generate").click().run()
    assert any("not enough free disk space" in e.value for e in at.error)
    assert not any((tmp_workspace / "datasets").iterdir())


@pytest.mark.slow
def test_param_count_matches_keras():
    from vae.model.networks import build_vae, count_params

    for arch, size, latent, variance in (
        ("seed", 64, 3, "constant"),
        ("seed", 96, 5, "learned"),
        ("burgess", 64, 3, "constant"),
        ("burgess", 128, 10, "learned"),
    ):
        assert (
            safety.param_count(arch, size, latent, variance)
            == count_params(build_vae(arch, size, latent, variance))["total"]
        )


@pytest.mark.slow
def test_a_real_run_stays_within_its_estimate(trained_tiny_run):
    out = trained_tiny_run  # `python -m vae train --epochs 2 --batch-size 32` of a 200-draw 32x32 dataset
    cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text())["config"])
    assert cfg.epochs == 2
    est = safety.estimate_run_bytes(cfg, datasets.load_dataset(cfg.dataset).meta["counts"])
    used = sum(safety.on_disk(p.stat().st_size) for p in out.rglob("*") if p.is_file())
    model = 2 * safety.on_disk((out / "model.keras").stat().st_size)  # the estimate counts a save's temp copy too
    assert used <= est["total"] and est["checkpoints"] <= 3 * model


def test_human_bytes_counts_in_steps_of_1024_up_to_tb():
    """The one byte format (the pages and the disk-space errors use it): 1024 per step, B to TB."""
    assert safety.human_bytes(512) == "512 B"
    assert safety.human_bytes(1536) == "1.5 KB"
    assert safety.human_bytes(256 * 1024**2) == "256.0 MB"
    assert safety.human_bytes(3 * 1024**4) == "3.0 TB"  # the pages' old copy stopped at GB: "3072.0 GB"
