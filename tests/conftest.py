"""Shared fixtures and helpers of the whole suite (the one conftest).

`tmp_workspace` points VAE_LAB_HOME at a temporary folder (holding datasets/ and runs/).
`fake_run(...)` writes a run folder in the documented format (config.json, status.json,
metrics.jsonl, snapshots/epoch_NNNN.npz) from made-up but well-formed numbers.
`tiny_dataset` is a real small dataset; `wait_until` awaits a condition (no fixed sleeps).
For the end-to-end tests (tests/e2e): `browser` (headless Chromium), `server` (a real
`streamlit run` on an empty data folder `lab_home`), `pg` (a page), and `e2e_dataset` /
`e2e_finished_run`, which make the dataset and the finished run a test needs when none is there.
Tests marked `e2e` are also `slow` (`python -m pytest -m "not slow"` is the fast lane).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.streamlit_server import free_port, start_streamlit, stop_streamlit

# No warm standby trainers (vae.jobs.standby) in tests unless a test asks for them: AppTest runs pages in
# this process, and a standby per page run would be a TensorFlow process each.
os.environ["VAE_LAB_STANDBY"] = "0"


def _scan_installed_components_once() -> None:
    """Every AppTest run asks Streamlit to scan all installed distributions for v2 component manifests
    (importlib.metadata over ~470 packages: 0.66 s a test, about 60% of a page test's time here,
    measured with cProfile). The installed packages do not change during a test session, so the first
    scan's answer is reused."""
    import functools

    from streamlit.components.v2 import manifest_scanner

    if not hasattr(manifest_scanner.scan_component_manifests, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.lru_cache(maxsize=None)(
            manifest_scanner.scan_component_manifests
        )


_scan_installed_components_once()


def wait_until(check, timeout: float, what: str, poll: float = 0.05):
    """Poll `check()` until it returns something true (returned), or fail after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def tmp_workspace(tmp_path, monkeypatch):
    """An empty data root: VAE_LAB_HOME=tmp_path, with datasets/ and runs/ created."""
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "runs").mkdir()
    return tmp_path


def _config(dataset: str, **overrides) -> dict:
    from vae.runs.config import TrainConfig

    return TrainConfig.study(dataset, **overrides).to_dict()


def _metric_line(kind, epoch, step, steps, rng, beta, gamma, t):
    decay = 1.0 / (1 + (epoch - 1) + step / steps)
    recon, kl, ent = 0.2 * decay + 0.02, 3.0 * decay, 0.5 * decay
    row = dict(
        kind=kind,
        epoch=epoch,
        step=step,
        global_step=(epoch - 1) * steps + step,
        time=t,
        images_per_s=250.0 + rng.normal(),
        recon=recon,
        kl=kl,
        beta_kl=beta * kl,
        entanglement=ent,
        gamma_entanglement=gamma * ent,
        ent_seed=ent,
        ent_covariance=0.8 * ent,
        ent_dip_i=1.5 * ent,
    )
    row["loss"] = recon + beta * kl + gamma * ent
    if kind == "epoch":
        for key in list(row):
            if key in (
                "loss",
                "recon",
                "kl",
                "beta_kl",
                "entanglement",
                "gamma_entanglement",
                "ent_seed",
                "ent_covariance",
                "ent_dip_i",
            ):
                row["val_" + key] = row[key] * 1.1
        row.update(alignment_score=0.3 + 0.1 * epoch, total_correlation=0.5 / epoch, active_units=3)
    return row


@pytest.fixture
def fake_run(tmp_workspace):
    """Factory: fake_run(name="run-a", state="finished", epochs=3, ...) -> Path of a run folder under runs/."""

    def make(
        name="fake-run",
        state="finished",
        epochs=3,
        done_epochs=None,
        steps=10,
        latent_dim=3,
        image_size=32,
        n_val=24,
        n_train=60,
        dataset="datasets/none",
        message="",
        pid=None,
        heartbeat=None,
        seed=0,
        **config,
    ) -> Path:
        rng = np.random.default_rng(seed)
        ids = _dataset_ids(dataset) or {"train": np.arange(n_train), "validation": np.arange(n_train, n_train + n_val)}
        done = epochs if done_epochs is None else done_epochs
        run = tmp_workspace / "runs" / name
        (run / "snapshots").mkdir(parents=True)
        cfg = _config(dataset, epochs=epochs, latent_dim=latent_dim, image_size=image_size, seed=seed, **config)
        (run / "config.json").write_text(
            json.dumps(
                {
                    "format": "vae-lab-run",
                    "format_version": 1,
                    "config": cfg,
                    "versions": {},
                    "dataset": {},
                    "created": time.time(),
                }
            )
        )
        lines, t = [], 0.0
        for epoch in range(1, done + 1):
            for step in range(2, steps + 1, 2):
                t += 0.1
                lines.append(_metric_line("batch", epoch, step, steps, rng, cfg["beta"], cfg["gamma"], t))
            lines.append(_metric_line("epoch", epoch, steps, steps, rng, cfg["beta"], cfg["gamma"], t))
            recon_index = ids["validation"][:20]
            snap = dict(
                recon_index=recon_index,
                recon=rng.integers(0, 255, (len(recon_index), image_size, image_size), dtype=np.uint8),
            )
            for split, split_ids in ids.items():
                snap[f"index_{split}"] = split_ids
                snap[f"mu_{split}"] = rng.normal(size=(len(split_ids), latent_dim)).astype(np.float32)
            np.savez_compressed(run / "snapshots" / f"epoch_{epoch:04d}.npz", **snap)
        (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        now = time.time()
        status = dict(
            state=state,
            pid=pid,
            heartbeat=heartbeat if heartbeat is not None else now,
            message=message,
            epoch=done,
            epochs=epochs,
            step=steps if done else 0,
            steps_per_epoch=steps,
            started=now - 10,
            updated=now,
        )
        (run / "status.json").write_text(json.dumps(status))
        return run

    return make


def _dataset_ids(dataset: str) -> dict | None:
    """Image ids per split of a real dataset folder (so fake snapshots point at real images)."""
    if not (Path(dataset) / "dataset.json").exists():
        return None
    from vae.data.datasets import load_dataset

    ds = load_dataset(dataset)
    return {s: ds.indices(s) for s in ds.splits}


@pytest.fixture
def tiny_dataset(tmp_workspace):
    """A real 32x32 punctured starfish dataset of 200 draws (+45 transect points) under datasets/tiny."""
    from vae.data import datasets
    from vae.data import presets

    return datasets.write_dataset(
        presets.preset_spec("seed-punctured", n=200, image_size=32), tmp_workspace / "datasets" / "tiny"
    )


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory) -> Path:
    """A real run, trained once per session: `python -m vae train --epochs 2 --batch-size 32 --quiet` on a
    `tiny_dataset` twin (in its own folder). Tests that only need some trained run use a copy (`trained_run`),
    each paying a folder copy instead of a TensorFlow trainer process."""
    import subprocess
    import sys

    from vae.data import datasets, presets

    home = tmp_path_factory.mktemp("trained_home")
    dataset = datasets.write_dataset(
        presets.preset_spec("seed-punctured", n=200, image_size=32), home / "datasets" / "tiny"
    )
    run = home / "runs" / "trained"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vae",
            "train",
            "--data",
            str(dataset),
            "--out",
            str(run),
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--quiet",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(root), "VAE_LAB_HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run


@pytest.fixture
def trained_run(trained_tiny_run, tmp_workspace) -> Path:
    """A copy of the session's trained run (`trained_tiny_run`) under this test's runs/ folder."""
    import shutil

    return Path(shutil.copytree(trained_tiny_run, tmp_workspace / "runs" / trained_tiny_run.name))


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole session (Playwright's sync API allows one at a time)."""
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        yield b
        b.close()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's loadgroup reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """End-to-end tests (marker e2e) are slow tests too: `-m "not slow"` leaves them out.

    Two pytest-xdist groups, each run on one worker, one test after another: "serial", the tests in tests/e2e
    (they share one session server) and the Ray tests (marker ray: two Ray clusters started at once would
    compete for the 2 cores they each size for); and "backends", the tests whose scripts share one process per
    Keras backend (tests/backend_sections.py: on two workers each would start that process and run every
    section)."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        if item.nodeid.startswith("tests/e2e/") or item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.xdist_group("serial"))
        elif getattr(getattr(item, "function", None), "backend_sections", None):
            item.add_marker(pytest.mark.xdist_group("backends"))


# ---------------------------------------------------------------- end to end (tests/e2e)

E2E_BATCH_DELAY_S = 0.2  # the `server` fixture's VAE_LAB_TEST_BATCH_DELAY_S: each batch of its trainers lasts this long


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab_home")


@pytest.fixture(scope="session")
def server(lab_home):
    """Base URL of a Streamlit server started from an empty VAE_LAB_HOME; stopped at the end.

    Its trainers take at least 0.2 s a batch (test hook VAE_LAB_TEST_BATCH_DELAY_S, docs/testing.md), so
    tests can watch a run train however fast the machine is (E2E_BATCH_DELAY_S)."""
    port = free_port()
    log = open(lab_home / "streamlit.log", "wb")
    try:
        proc = start_streamlit(
            lab_home,
            port,
            log,
            extra_env={
                "VAE_LAB_MAX_TRAINERS": "2",
                "VAE_LAB_STANDBY": "1",
                "VAE_LAB_TEST_BATCH_DELAY_S": str(E2E_BATCH_DELAY_S),
            },
        )
    except RuntimeError as err:
        raise RuntimeError(f"{err}: " + (lab_home / "streamlit.log").read_text()[-2000:]) from None
    url = f"http://127.0.0.1:{port}"
    yield url
    stop_streamlit(proc)
    log.close()


@pytest.fixture
def pg(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)  # a deadline for a loaded machine; a passing wait returns at once
    yield page
    context.close()


@pytest.fixture
def e2e_dataset(lab_home) -> Path:
    """A dataset in the server's data folder: the one a test generated through the page, else a small one."""
    from vae.data import datasets
    from vae.data import presets

    existing = sorted(p for p in (lab_home / "datasets").glob("*") if (p / "dataset.json").exists())
    if existing:
        return existing[0]
    return datasets.write_dataset(
        presets.preset_spec("seed-full", n=300, image_size=64), lab_home / "datasets" / "e2e-base"
    )


@pytest.fixture
def e2e_finished_run(lab_home, e2e_dataset) -> Path:
    """A finished run in the server's data folder: one an earlier test trained, else a 2-epoch run trained now."""
    from vae.jobs import launcher
    from vae.runs import folder
    from vae.runs.config import TrainConfig

    for run in folder.list_runs(lab_home / "runs"):
        if run["state"] == "finished":
            return Path(run["path"])
    cfg = TrainConfig(dataset=str(e2e_dataset), image_size=64, epochs=2, batch_size=8)
    run = launcher.start_run(cfg, runs_root=lab_home / "runs")
    assert launcher.wait_for(run, timeout=600)["state"] == "finished"
    return run


def pytest_collection_finish(session):
    """Once the test modules are imported (TensorFlow and Keras among them), move every object that exists
    now out of the garbage collector's sight: they live for the whole session, and walking TensorFlow's
    object graph in each full collection made the page tests 3-5x slower in a session that had imported it."""
    import gc

    gc.collect()
    gc.freeze()
