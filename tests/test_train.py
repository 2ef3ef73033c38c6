"""Training runs: the run folder, reproducibility, stop requests, evaluation."""

import json

import numpy as np
import pytest

from vae.base.errors import UserError
from vae.data import datasets
from vae.data.presets import preset_spec
from vae.runs import folder
from vae.runs.config import TrainConfig


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    spec = preset_spec("seed-punctured", n=400, image_size=32, seed=1)
    return datasets.write_dataset(spec, root / "tiny")


def _train(tmp_path, dataset, name="run", **overrides):
    from vae.runs.folder import write_run_config
    from vae.training.train import train_run

    cfg = TrainConfig(dataset=str(dataset), image_size=32, epochs=2, batch_size=32, log_every=2, **overrides)
    run_dir = write_run_config(tmp_path / name, cfg)
    return run_dir, train_run(run_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset):
    """One 2-epoch run (seed 0) shared by the tests that only read it (or add evaluation files to it)."""
    return _train(tmp_path_factory.mktemp("trained"), tiny_dataset)


@pytest.mark.slow
def test_training_run_writes_a_complete_run_folder(trained):
    run_dir, status = trained
    assert status["state"] == "finished"
    for name in ("config.json", "status.json", "metrics.jsonl", "model.keras", "last.keras"):
        assert (run_dir / name).is_file(), name
    doc = folder.read_config(run_dir)
    assert doc["versions"]["keras"] and doc["config"]["epochs"] == 2
    epochs = folder.read_metrics(run_dir, "epoch")
    assert [r["epoch"] for r in epochs] == [1, 2]
    for key in (
        "loss",
        "recon",
        "beta_kl",
        "gamma_entanglement",
        "ent_seed",
        "ent_covariance",
        "ent_dip_i",
        "val_loss",
        "val_recon",
        "factor_alignment",
        "pca_alignment",
        "alignment_codes",
        "straightness_P1",
        "straightness_P3",
        "time",
    ):
        assert key in epochs[-1], key
    batches = folder.read_metrics(run_dir, "batch")
    # The first batch is logged at once (the earliest live point), without a speed: its interval
    # includes building the training graph.
    assert batches[0]["global_step"] == 1 and "images_per_s" not in batches[0]
    assert len(batches) >= 4 and all(r["images_per_s"] > 0 for r in batches[1:])
    tags = {p.parent.name for p in (run_dir / "tensorboard").rglob("events.out.tfevents*")}
    assert tags == {"train", "validation"}
    # total = recon + beta*KL + gamma*entanglement, as logged
    last = epochs[-1]
    assert last["val_loss"] == pytest.approx(
        last["val_recon"] + last["val_beta_kl"] + last["val_gamma_entanglement"], rel=1e-4
    )
    # the checkpoint rule is validation reconstruction + KL (nats per image), whatever the method adds
    for row in epochs:
        assert row["val_selection"] == pytest.approx(row["val_recon"] * 32 * 32 + row["val_kl"] * 3 / 2, rel=1e-6)
    best = min(epochs, key=lambda r: r["val_selection"])
    assert last["best_epoch"] == best["epoch"] and status["best_epoch"] == best["epoch"]
    assert folder.list_snapshots(run_dir) == [1, 2]
    snap = folder.load_snapshot(run_dir, 2)
    # the first 20 validation images (the punctured split's validation set is 211/4510 of the covered draws)
    n_recon = min(20, len(snap["index_validation"]))
    assert snap["recon"].shape == (n_recon, 32, 32) and snap["recon"].dtype == np.uint8
    for split in ("train", "validation", "hole", "transects"):
        assert snap[f"mu_{split}"].shape == (len(snap[f"index_{split}"]), 3)
    assert len(snap["mu_transects"]) == 45


@pytest.mark.slow
def test_same_settings_and_seed_give_identical_metrics(tmp_path, tiny_dataset, trained):
    a, _ = trained  # seed 0
    b, _ = _train(tmp_path, tiny_dataset, "b", seed=0)
    c, _ = _train(tmp_path, tiny_dataset, "c", seed=8)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in rows]  # noqa
    assert strip(folder.read_metrics(a)) == strip(folder.read_metrics(b))
    assert strip(folder.read_metrics(a)) != strip(folder.read_metrics(c))


@pytest.mark.slow
def test_stop_request_ends_training_within_one_batch(tmp_path, tiny_dataset):
    from vae.runs.folder import write_run_config
    from vae.training.train import train_run

    cfg = TrainConfig(dataset=str(tiny_dataset), image_size=32, epochs=5, batch_size=16, log_every=1)
    run_dir = write_run_config(tmp_path / "stopme", cfg)
    (run_dir / "stop").write_text("{}")
    status = train_run(run_dir)
    assert status["state"] == "stopped"
    assert "epoch 1, step 1" in status["message"]
    assert len(folder.read_metrics(run_dir, "batch")) == 1


def test_config_validation_names_the_setting():
    with pytest.raises(UserError, match="beta"):
        TrainConfig(dataset="x", beta=-1).validate()
    with pytest.raises(UserError, match="latent_dim"):
        TrainConfig(dataset="x", latent_dim=11).validate()
    with pytest.raises(UserError, match="image_size"):
        TrainConfig(dataset="x", image_size=36).validate()
    with pytest.raises(UserError, match="batch_size"):
        TrainConfig(dataset="x", batch_size=500).validate(train_size=100)


def test_study_settings_are_the_studys():
    cfg = TrainConfig.study("d")
    assert (cfg.arch, cfg.beta, cfg.gamma, cfg.batch_size, cfg.lr, cfg.latent_dim, cfg.variance, cfg.entanglement) == (
        "seed",
        0.001,
        0.0001,
        8,
        1e-4,
        3,
        "constant",
        "seed",
    )


@pytest.mark.slow
def test_evaluate_writes_latents_and_evaluation(trained, tiny_dataset, monkeypatch):
    from vae.training import evaluate

    monkeypatch.setattr(
        evaluate,
        "GENERATOR_SETTINGS",
        {
            "factor_vae": {"num_train": 20, "num_eval": 10, "num_variance_estimate": 200},
            "beta_vae": {"num_train": 20, "num_eval": 10},
        },
    )
    run_dir, _ = trained
    result = evaluate.evaluate_run(run_dir)
    saved = json.loads((run_dir / "evaluation.json").read_text())
    assert saved["summary"]["factor_alignment"] == pytest.approx(result["summary"]["factor_alignment"])
    assert saved["summary"]["alignment_codes"].startswith("training split")
    chance = saved["summary"]["chance"]["factor_alignment"]  # beside the score: random rotations of the codes
    assert chance["lo"] <= chance["mean"] <= chance["hi"] and saved["chance"]["factor_alignment"]["n"] == 200
    assert saved["settings"]["dci_setting"] == "reference" and "hole_ratio" in saved["summary"]
    best = folder.read_metrics(run_dir, "epoch")[-1]["best_epoch"]
    assert saved["evaluated_epoch"] == saved["summary"]["evaluated_epoch"] == best
    assert saved["checkpoint_rule"].startswith("validation reconstruction + KL")
    assert {"active_units", "collapsed", "collapsed_latents", "kl_total", "kl_per_latent"} <= set(saved["summary"])
    assert len(saved["latent_usage"]["kl_per_latent"]) == 3 and "entanglement_profile" in saved
    assert [p["n"] for p in saved["hole_interpolation"]["profile"]] and "hole_error_median" in saved[
        "hole_interpolation"
    ]
    assert set(saved["transects"]) == {"P1", "P2", "P3"}
    assert 0 < saved["transects"]["P1"]["straightness"] <= 1
    assert "hole" in saved and saved["hole"]["n_hole"] > 0
    assert 0 <= saved["metrics"]["mig"]["score"] <= 1
    # the pages' reader takes a real evaluation as it is written (not as damaged)
    assert folder.read_evaluation(run_dir) == saved and folder.evaluation_summary(run_dir)["mig"] is not None
    lines = (run_dir / "latents.csv").read_text().splitlines()
    assert lines[0].split(",")[-3:] == ["mu_1", "mu_2", "mu_3"]
    assert len(lines) == 1 + len(datasets.load_dataset(tiny_dataset).columns["id"])


def test_final_status_is_never_overwritten_by_a_late_heartbeat(tmp_path, monkeypatch):
    """The heartbeat thread and the training thread write status.json; the last update must win."""
    import threading
    import time as _time

    from vae.base import fileio
    from vae.training import train

    status = train.StatusFile(tmp_path, state="running")
    real = fileio.atomic_write_json
    gate = threading.Event()

    def slow_write(path, obj):
        if obj.get("state") == "running" and threading.current_thread().name == "late-heartbeat":
            gate.set()
            _time.sleep(0.3)  # the heartbeat is preempted between snapshot and write
        real(path, obj)

    monkeypatch.setattr(fileio, "atomic_write_json", slow_write)  # what StatusFile (a fileio.HeartbeatFile) writes with
    beat = threading.Thread(target=status.write, name="late-heartbeat")
    beat.start()
    assert gate.wait(60), "the heartbeat thread never reached its write"  # else the race below is not tested
    status.update(state="finished")
    beat.join()
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "finished"


def test_images_per_second_counts_the_smaller_last_batch_of_an_epoch(tmp_path, monkeypatch):
    """70 training images in batches of 32: the epoch's third batch holds 6 images, not 32."""
    import io
    import json as _json

    from vae.training import train

    clock = iter(float(t) for t in range(100, 200))
    monkeypatch.setattr(train.time, "time", lambda: next(clock))

    class Status:
        def update(self, **fields):
            pass

    cfg = TrainConfig(dataset="unused", image_size=32, epochs=1, batch_size=32, log_every=3)
    out = io.StringIO()
    cb = train.RunFolderCallback(tmp_path, cfg, Status(), {"splits": {"train": np.arange(70)}}, 3, 0, out)
    for batch in range(3):
        cb.on_train_batch_end(batch, {"loss": 0.5})
    rows = [_json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["step"] for r in rows] == [1, 3]
    assert "images_per_s" not in rows[0]
    assert rows[1]["images_per_s"] == pytest.approx(32 + 6)  # batches 2 and 3, one clock second apart


def test_the_batch_delay_test_hook_is_off_unless_set_and_refuses_a_non_number(monkeypatch):
    """VAE_LAB_TEST_BATCH_DELAY_S (docs/testing.md) slows every batch of a trainer started with it; unset, none."""
    from vae.training.train import BATCH_DELAY_ENV, batch_delay_hook

    monkeypatch.delenv(BATCH_DELAY_ENV, raising=False)
    assert batch_delay_hook() == 0.0
    monkeypatch.setenv(BATCH_DELAY_ENV, "0.25")
    assert batch_delay_hook() == 0.25
    monkeypatch.setenv(BATCH_DELAY_ENV, "a while")
    with pytest.raises(UserError, match=f"environment variable {BATCH_DELAY_ENV}='a while' is not a number >= 0"):
        batch_delay_hook()
    monkeypatch.setenv(BATCH_DELAY_ENV, "-1")  # a negative delay is a typo, not "no delay"
    with pytest.raises(UserError, match=f"{BATCH_DELAY_ENV}='-1' is not a number >= 0"):
        batch_delay_hook()
