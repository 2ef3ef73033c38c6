"""Shared fixtures: a temporary data root and fake run folders written without training.

`tmp_workspace` points VAE_LAB_HOME at a temporary folder (holding datasets/ and runs/).
`fake_run(...)` writes a run folder in the documented format (config.json, status.json,
metrics.jsonl, snapshots/epoch_NNNN.npz) from made-up but well-formed numbers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def tmp_workspace(tmp_path, monkeypatch):
    """An empty data root: VAE_LAB_HOME=tmp_path, with datasets/ and runs/ created."""
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "runs").mkdir()
    return tmp_path


def _config(dataset: str, **overrides) -> dict:
    from vae.config import TrainConfig

    return TrainConfig.study(dataset, **overrides).to_dict()


def _metric_line(kind, epoch, step, steps, rng, beta, gamma, t):
    decay = 1.0 / (1 + (epoch - 1) + step / steps)
    recon, kl, ent = 0.2 * decay + 0.02, 3.0 * decay, 0.5 * decay
    row = dict(kind=kind, epoch=epoch, step=step, global_step=(epoch - 1) * steps + step, time=t,
               images_per_s=250.0 + rng.normal(), recon=recon, kl=kl, beta_kl=beta * kl, entanglement=ent,
               gamma_entanglement=gamma * ent, ent_seed=ent, ent_covariance=0.8 * ent, ent_dip_i=1.5 * ent)
    row["loss"] = recon + beta * kl + gamma * ent
    if kind == "epoch":
        for key in list(row):
            if key in ("loss", "recon", "kl", "beta_kl", "entanglement", "gamma_entanglement",
                       "ent_seed", "ent_covariance", "ent_dip_i"):
                row["val_" + key] = row[key] * 1.1
        row.update(alignment_score=0.3 + 0.1 * epoch, total_correlation=0.5 / epoch, active_units=3)
    return row


@pytest.fixture
def fake_run(tmp_workspace):
    """Factory: fake_run(name="run-a", state="finished", epochs=3, ...) -> Path of a run folder under runs/."""

    def make(name="fake-run", state="finished", epochs=3, done_epochs=None, steps=10, latent_dim=3,
             image_size=32, n_val=24, n_train=60, dataset="datasets/none", message="", pid=None,
             heartbeat=None, seed=0, **config) -> Path:
        rng = np.random.default_rng(seed)
        done = epochs if done_epochs is None else done_epochs
        run = tmp_workspace / "runs" / name
        (run / "snapshots").mkdir(parents=True)
        cfg = _config(dataset, epochs=epochs, latent_dim=latent_dim, image_size=image_size, seed=seed, **config)
        (run / "config.json").write_text(json.dumps({"format": "vae-lab-run", "format_version": 1, "config": cfg,
                                                     "versions": {}, "dataset": {},
                                                     "created": time.time()}))
        lines, t = [], 0.0
        for epoch in range(1, done + 1):
            for step in range(2, steps + 1, 2):
                t += 0.1
                lines.append(_metric_line("batch", epoch, step, steps, rng, cfg["beta"], cfg["gamma"], t))
            lines.append(_metric_line("epoch", epoch, steps, steps, rng, cfg["beta"], cfg["gamma"], t))
            recon_index = np.arange(n_train, n_train + 20)
            snap = dict(recon_index=recon_index,
                        recon=rng.integers(0, 255, (20, image_size, image_size), dtype=np.uint8),
                        index_train=np.arange(n_train), mu_train=rng.normal(size=(n_train, latent_dim)).astype(np.float32),
                        index_validation=np.arange(n_train, n_train + n_val),
                        mu_validation=rng.normal(size=(n_val, latent_dim)).astype(np.float32))
            np.savez_compressed(run / "snapshots" / f"epoch_{epoch:04d}.npz", **snap)
        (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        now = time.time()
        status = dict(state=state, pid=pid, heartbeat=heartbeat if heartbeat is not None else now, message=message,
                      epoch=done, epochs=epochs, step=steps if done else 0, steps_per_epoch=steps,
                      started=now - 10, updated=now)
        (run / "status.json").write_text(json.dumps(status))
        return run

    return make


@pytest.fixture
def env_home(tmp_workspace):
    """The data root as a string, for AppTest scripts that read VAE_LAB_HOME."""
    return os.environ["VAE_LAB_HOME"]
