"""The training loop: Keras `fit` plus callbacks that write the run folder.

`train_run(run_dir)` trains the config in `run_dir/config.json` and writes:
- status.json   replaced atomically at each change and by a heartbeat thread
                every HEARTBEAT_S seconds (pid, heartbeat, epoch, step, message)
- metrics.jsonl a "batch" line after the first batch and every `log_every` batches, an "epoch" line per
                epoch with validation terms and the cheap analysis numbers
- model.keras   the best epoch by the checkpoint rule (`selection_loss`: validation reconstruction + KL
                as a negative ELBO in nats per image, the same for every method); last.keras each epoch
                (for resume). Each epoch line records `val_selection` and `best_epoch`.
- snapshots/epoch_NNNN.npz  reconstructions of the first 20 validation images
                and latent means of every split
- tensorboard/  event logs

A `stop` file in the run folder ends training after the current batch; a NaN
or infinite loss ends it as `diverged`. Test hook: VAE_LAB_TEST_BATCH_DELAY_S=<seconds> makes every batch
take at least that long (a sleep after each), so a test can watch a run that is still training on any
machine (docs/testing.md); unset, training is unchanged. Training runs in its own process
(`python -m vae train --run-dir ...`, started by `vae.jobs.launcher`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import time
from pathlib import Path

import keras
import numpy as np

from vae import __version__
from vae.base.errors import UserError
from vae.base.fileio import (
    HeartbeatFile,
    atomic_copy,
    atomic_save_npz,
    atomic_save_with,
    atomic_write_json,
    atomic_write_text,
    check_model_file,
)
from vae.base.safety import env_number, require_run_space, require_writable
from vae.data.datasets import load_dataset
from vae.measures.analysis import transects_geometry
from vae.measures.metrics import cheap_metrics
from vae.model.inference import encode, reconstruct
from vae.model.methods import selection_loss
from vae.model.networks import build_vae
from vae.runs.config import TrainConfig
from vae.runs.folder import ERRORS, read_config, read_metrics, refuse_if_trained_elsewhere

HEARTBEAT_S = 2.0
N_RECON = 20
BATCH_DELAY_ENV = "VAE_LAB_TEST_BATCH_DELAY_S"


def batch_delay_hook() -> float:
    """Seconds each batch is held back by the test hook VAE_LAB_TEST_BATCH_DELAY_S (0 when unset; a value that is
    not a number >= 0 is a UserError naming the variable)."""
    return env_number(BATCH_DELAY_ENV, 0.0, zero_ok=True)


def library_versions() -> dict:
    import sklearn

    versions = {
        "vae": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "scikit-learn": sklearn.__version__,
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    return versions


class StatusFile(HeartbeatFile):
    """The run's status.json, shared by the training thread and the heartbeat thread."""

    def __init__(self, run_dir: Path, **fields):
        super().__init__(
            run_dir / "status.json",
            {"pid": os.getpid(), "started": time.time(), **fields},
            every=HEARTBEAT_S,
            ignore_os_errors=True,
        )  # the training thread reports a full disk


def _floats(logs: dict, prefix: str = "") -> dict:
    """The model's loss terms in Keras' logs (vae.base.registry's and the method's own), training or `val_` ones."""
    return {
        key: float(value)
        for key, value in logs.items()
        if (key.startswith("val_") == (prefix == "val_")) and np.ndim(value) == 0
    }


def _cheap_analysis(mu: np.ndarray, snap: dict | None = None, data: dict | None = None) -> dict:
    """Per-epoch numbers for the live charts: factor alignment (datasets with factors) and PCA
    alignment, total correlation, active units, all of the training codes, and each transect's
    straightness (chord / path length of its latent path)."""
    try:
        # Training codes and their factors: the same codes as evaluate's and the Embedding page's numbers.
        codes, factors = mu, None
        if snap is not None and data is not None and "mu_train" in snap:
            codes = snap["mu_train"]
            if data.get("factors") is not None:
                factors = data["factors"][data["splits"]["train"][: len(codes)]]
        out = {
            k: (float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v)
            for k, v in cheap_metrics(codes, factors, codes_name="train").items()
        }
        if snap is not None and data is not None and "mu_transects" in snap and "transect" in data:
            rows = data["splits"]["transects"][: len(snap["mu_transects"])]
            geo = transects_geometry(snap["mu_transects"], data["transect"][rows], data["point"][rows])
            out.update({f"straightness_{name}": float(g["straightness"]) for name, g in geo.items()})
        return out
    except Exception as e:  # analysis must never kill a training run
        return {"analysis_error": str(e)}


class RunFolderCallback(keras.callbacks.Callback):
    """Writes metrics, status, checkpoints and snapshots; honours stop requests."""

    def __init__(self, run_dir, cfg, status, data, steps_per_epoch, initial_epoch, metrics_file):
        super().__init__()
        self.run_dir, self.cfg, self.status, self.data = run_dir, cfg, status, data
        self.steps_per_epoch, self.metrics_file = steps_per_epoch, metrics_file
        self.epoch = initial_epoch
        self.global_step = initial_epoch * steps_per_epoch
        self.t0 = time.time()
        self.time_offset = data.get("time_offset", 0.0)
        self.last_t = self.t0
        self.n_train = len(data["splits"]["train"])
        self.images, self.last_images = 0, 0  # images trained on by this process (the last batch is smaller)
        self.best = data.get("best_val_loss", math.inf)  # the best selection_loss so far
        self.best_epoch = data.get("best_epoch")
        self.outcome = None  # ("stopped"|"diverged", message)
        self.logged_any = False
        self.tb = None  # TensorBoard writers, opened at the first epoch end
        self.batch_delay = batch_delay_hook()

    def _write(self, row):
        self.metrics_file.write(json.dumps(row) + "\n")
        self.metrics_file.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.batch_delay:
            time.sleep(self.batch_delay)  # test hook (VAE_LAB_TEST_BATCH_DELAY_S): a run that lasts on any machine
        self.global_step += 1
        step = batch + 1
        self.images += min(self.cfg.batch_size, self.n_train - batch * self.cfg.batch_size)
        logs = logs or {}
        loss = float(logs.get("loss", 0.0))
        if not math.isfinite(loss):
            kept = (
                "the last good model (model.keras) is kept"
                if (self.run_dir / "model.keras").exists()
                else "no model was saved: it diverged before its first epoch ended"
            )
            self.outcome = (
                "diverged",
                f"loss became {loss} at epoch {self.epoch}, step {step}; lower the learning rate or beta/gamma; {kept}",
            )
            self.model.stop_training = True
            return
        first = not self.logged_any  # the first batch is logged at once: the earliest live point
        if first or step % self.cfg.log_every == 0 or step == self.steps_per_epoch:
            now = time.time()
            # No speed on the first line: its interval includes building the training graph.
            speed = (
                {}
                if first
                else {"images_per_s": round((self.images - self.last_images) / max(now - self.last_t, 1e-9), 1)}
            )
            self.last_t, self.last_images, self.logged_any = now, self.images, True
            self._write(
                {
                    "kind": "batch",
                    "epoch": self.epoch,
                    "step": step,
                    "global_step": self.global_step,
                    "time": round(now - self.t0 + self.time_offset, 3),
                    **speed,
                    **_floats(logs),
                }
            )
            self.status.update(epoch=self.epoch, step=step, **speed)
        if (self.run_dir / "stop").exists():
            self.outcome = ("stopped", f"stopped by request at epoch {self.epoch}, step {step}")
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.outcome and self.outcome[0] == "diverged":
            return
        val_loss = float(logs.get("val_loss", logs.get("loss", math.inf)))
        prefix = "val_" if "val_recon" in logs else ""  # no validation split: the training terms
        selection = selection_loss(logs, self.cfg.reduction, self.cfg.image_size**2, self.cfg.latent_dim, prefix)
        if not math.isfinite(selection):
            selection = val_loss
        if not math.isfinite(val_loss):
            self.outcome = (
                "diverged",
                f"validation loss became {val_loss} at epoch {self.epoch}; the last good model is kept",
            )
            self.model.stop_training = True
            return
        snap = save_snapshot(self.model, self.run_dir, self.epoch, self.data, self.cfg)
        row = {
            "kind": "epoch",
            "epoch": self.epoch,
            "step": self.steps_per_epoch,
            "global_step": self.global_step,
            "time": round(time.time() - self.t0 + self.time_offset, 3),
            **_floats(logs),
            **_floats(logs, "val_"),
        }
        mu_val = snap.get("mu_validation", snap.get("mu_train"))
        if mu_val is not None and len(mu_val) >= 3:
            row.update(_cheap_analysis(mu_val, snap, self.data))
        # One Keras save per epoch (~0.1 s); the best model is a byte copy of it.
        atomic_save_with(self.run_dir / "last.keras", self.model.save, suffix=".keras")
        if selection < self.best:
            self.best, self.best_epoch = selection, self.epoch
            atomic_copy(self.run_dir / "last.keras", self.run_dir / "model.keras")
        row["val_selection"] = selection
        row["best_val_loss"] = self.best
        row["best_epoch"] = self.best_epoch
        self._write(row)
        self._tensorboard(row)
        self.status.update(
            epoch=self.epoch,
            epochs_completed=self.epoch,
            step=self.steps_per_epoch,
            best_val_loss=self.best,
            best_epoch=self.best_epoch,
        )

    def _tensorboard(self, row):
        """Epoch scalars in tensorboard/train and tensorboard/validation (tags epoch_<term>), as
        Keras' TensorBoard callback writes them; written here because that callback adds about 1 s
        to the first batch (bench/RESULTS.md)."""
        if keras.backend.backend() != "tensorflow":
            return
        import tensorflow as tf

        if self.tb is None:
            self.tb = {
                s: tf.summary.create_file_writer(str(self.run_dir / "tensorboard" / s)) for s in ("train", "validation")
            }
        values = {
            "train": {k: v for k, v in row.items() if not k.startswith("val_")},
            "validation": {k[4:]: v for k, v in row.items() if k.startswith("val_")},
        }
        for split, writer in self.tb.items():
            with writer.as_default():
                for key, value in values[split].items():
                    if key not in ("kind", "epoch", "step", "global_step") and isinstance(value, (int, float)):
                        tf.summary.scalar(f"epoch_{key}", value, step=self.epoch)
            writer.flush()

    def close(self):
        for writer in (self.tb or {}).values():
            writer.close()
        self.tb = None


def save_snapshot(model, run_dir: Path, epoch: int, data: dict, cfg: TrainConfig) -> dict:
    """snapshots/epoch_NNNN.npz: recon of the first 20 validation images and mu of every split."""
    arrays = {}
    recon_split = "validation" if len(data["splits"].get("validation", ())) else "train"
    idx = data["splits"][recon_split][:N_RECON]
    arrays["recon_index"] = data["ids"][idx]
    arrays["recon"] = reconstruct(model, data["images"][idx])
    for split, split_idx in data["splits"].items():
        if len(split_idx) == 0:
            continue
        keep = split_idx[: cfg.snapshot_max_codes]
        arrays[f"index_{split}"] = data["ids"][keep]
        arrays[f"mu_{split}"] = encode(model, data["images"][keep])
    if epoch % cfg.snapshot_every == 0 or epoch == cfg.epochs:
        (run_dir / "snapshots").mkdir(exist_ok=True)
        atomic_save_npz(run_dir / "snapshots" / f"epoch_{epoch:04d}.npz", **arrays)
    return arrays


def load_training_data(cfg: TrainConfig) -> tuple[dict, dict]:
    """The dataset as uint8 arrays in memory, split indices, ids and weights."""
    ds = load_dataset(cfg.dataset)
    if ds.image_size != cfg.image_size:
        raise UserError(
            f"image_size {cfg.image_size} does not match the dataset's {ds.image_size}; "
            f"set image_size to {ds.image_size} or generate the dataset at {cfg.image_size}"
        )
    images = np.ascontiguousarray(np.asarray(ds.images, dtype=np.uint8))
    splits = {
        s: np.asarray(ds.indices(s), dtype=np.int64)
        for s in ("train", "validation", "hole", "transects")
        if s in ds.splits
    }
    if len(splits.get("train", ())) == 0:
        raise UserError(f"dataset {cfg.dataset} has no training images")
    ids = np.asarray(ds.columns["id"]).astype(np.int64)
    weights = np.asarray(ds.columns.get("weight", np.ones(len(images))), dtype=np.float32)
    meta = {
        "path": str(Path(cfg.dataset).resolve()),
        "name": Path(cfg.dataset).name,
        "family": ds.meta.get("family"),
        "counts": {s: int(len(i)) for s, i in splits.items()},
        "factor_names": list(ds.factor_names),
    }
    data = {"images": images, "splits": splits, "ids": ids, "weights": weights}
    if ds.factor_names:  # ground truth for the per-epoch factor alignment
        data["factors"] = np.column_stack([np.asarray(ds.columns[f], dtype=np.float64) for f in ds.factor_names])
    if "transect" in ds.columns and "transects" in splits:
        data["transect"] = np.asarray(ds.columns["transect"]).astype(str)
        data["point"] = np.asarray(ds.columns["point"])
    return data, meta


def _configure_runtime(cfg: TrainConfig):
    keras.utils.set_random_seed(cfg.seed)
    # Always set the policy: it is process-global, and one process may train several runs.
    keras.mixed_precision.set_global_policy(cfg.precision)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:
            pass


def build_model(cfg: TrainConfig, n_train: int):
    """The run's VAE as `cfg` describes it (its weights from the global seed set before the call)."""
    return build_vae(
        cfg.arch,
        cfg.image_size,
        cfg.latent_dim,
        cfg.variance,
        beta=cfg.beta,
        gamma=cfg.gamma,
        entanglement=cfg.entanglement,
        seed=cfg.seed,
        method=cfg.method,
        method_params=cfg.method_params,
        reduction=cfg.reduction,
        dataset_size=n_train,
    )


def train_run(run_dir, resume: bool = False, verbose: bool = False) -> dict:
    """Train the run in `run_dir` (its config.json must exist). Returns the final status."""
    run_dir = Path(run_dir)
    require_writable(f"train run {run_dir.name}")
    doc = read_config(run_dir)  # checked: a damaged config.json is a one-line UserError
    cfg = TrainConfig.from_dict(doc["config"])
    refuse_if_trained_elsewhere(run_dir)
    status = StatusFile(run_dir, state="running", message="loading data", epoch=0, epochs=cfg.epochs, step=0)
    status.start_heartbeat()
    try:
        return _train(run_dir, cfg, doc, status, resume, verbose)
    except UserError as e:
        status.update(state="failed", message=str(e))
        raise
    except KeyboardInterrupt:
        status.update(state="stopped", message="interrupted")
        raise
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}"
        if isinstance(e, OSError) and e.errno == 28:
            msg = f"the disk is full ({e}); free some space and resume the run"
        status.update(state="failed", message=msg)
        raise
    finally:
        status.stop_heartbeat()


def _train(run_dir: Path, cfg: TrainConfig, doc: dict, status: StatusFile, resume: bool, verbose: bool) -> dict:
    data, meta = load_training_data(cfg)
    n_train = len(data["splits"]["train"])
    cfg.validate(train_size=n_train)
    done = (read_metrics(run_dir, "epoch") or [{}])[-1].get("epoch", 0) if resume else 0
    require_run_space(cfg, meta["counts"], run_dir, epochs=cfg.epochs - int(done or 0))  # before any file
    _configure_runtime(cfg)
    versions = library_versions()
    if doc.get("versions") != versions or not doc.get("dataset"):
        doc.update(versions=versions, dataset=doc.get("dataset") or meta)
        atomic_write_json(run_dir / "config.json", doc)

    initial_epoch, extra = 0, {}
    if resume and (run_dir / "last.keras").exists():
        model = keras.models.load_model(check_model_file(run_dir / "last.keras"), safe_mode=True)
        if not model.compiled:  # a seed group's checkpoint (vae.training.grouped) holds no optimizer: Adam restarts
            model.compile(optimizer=keras.optimizers.Adam(cfg.lr))
        rows = read_metrics(run_dir, "epoch")
        initial_epoch = rows[-1]["epoch"] if rows else 0
        done_rows = [r for r in rows if r.get("epoch", 0) <= initial_epoch]
        best_row = min(done_rows, key=lambda r: r.get("val_selection", r.get("val_loss", math.inf)), default={})
        extra = {
            "time_offset": rows[-1]["time"] if rows else 0.0,
            "best_val_loss": best_row.get("val_selection", best_row.get("val_loss", math.inf)),
            "best_epoch": best_row.get("epoch"),
        }
        _truncate_metrics_after(run_dir, initial_epoch)
    else:
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
        model = build_model(cfg, n_train)
        model.compile(optimizer=keras.optimizers.Adam(cfg.lr))
        # Create Adam's slot variables now, eagerly: created inside the first traced step they cost
        # about 2 s more before the first batch (bench/RESULTS.md); same variables, same values.
        model.optimizer.build(model.trainable_variables)

    tr, va = data["splits"]["train"], data["splits"].get("validation", np.zeros(0, np.int64))
    x_train = data["images"][tr]
    w_train = data["weights"][tr] if cfg.sample_weights else None
    validation = None
    if len(va):
        x_val = data["images"][va]
        validation = (x_val, None, data["weights"][va]) if cfg.sample_weights else (x_val,)
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    status.update(message="training", steps_per_epoch=steps_per_epoch, epoch=initial_epoch)

    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as mf:
        cb = RunFolderCallback(run_dir, cfg, status, {**data, **extra}, steps_per_epoch, initial_epoch, mf)
        try:
            if initial_epoch < cfg.epochs:
                model.fit(
                    **_fit_data(cfg, x_train, w_train, validation, steps_per_epoch),
                    epochs=cfg.epochs,
                    initial_epoch=initial_epoch,
                    callbacks=[cb],
                    verbose=2 if verbose else 0,
                )
        finally:
            cb.close()

    if cb.outcome:
        state, message = cb.outcome
    else:
        state, message = (
            "finished",
            (
                f"finished {cfg.epochs} epochs; best model: epoch {cb.best_epoch} "
                f"(validation reconstruction + KL {cb.best:.2f} nats per image)"
            ),
        )
    status.update(state=state, message=message, finished=time.time())
    return dict(status.data)


def _fit_data(cfg: TrainConfig, x_train, w_train, validation, steps_per_epoch: int) -> dict:
    """The data arguments of `fit`.

    On TensorFlow: one repeated, reshuffled tf.data pipeline over the in-memory uint8 array, so
    that no epoch pays for a new iterator (Keras builds one per epoch from numpy arrays, about
    1.5 s an epoch on 2 cores: bench/RESULTS.md). Elsewhere (JAX, PyTorch): the arrays themselves.
    """
    if keras.backend.backend() != "tensorflow":
        return dict(
            x=x_train, sample_weight=w_train, batch_size=cfg.batch_size, shuffle=True, validation_data=validation
        )
    import tensorflow as tf

    def pipeline(x, w, train):
        parts = (x,) if w is None else (x, np.zeros(len(x), np.float32), w)  # (x, unused y, weight)
        ds = tf.data.Dataset.from_tensor_slices(parts)
        if train:
            ds = ds.shuffle(len(x), seed=cfg.seed, reshuffle_each_iteration=True)
        ds = ds.batch(cfg.batch_size)
        return (ds.repeat() if train else ds).prefetch(2)

    val = None
    if validation is not None:
        val = pipeline(validation[0], validation[2] if len(validation) == 3 else None, False)
    return dict(
        x=pipeline(x_train, w_train, True), steps_per_epoch=steps_per_epoch, validation_data=val, shuffle=False
    )  # the pipeline reshuffles itself


def _truncate_metrics_after(run_dir: Path, epoch: int) -> None:
    """Drop metrics lines past the last completed epoch (a resumed run re-does them)."""
    rows = [r for r in read_metrics(run_dir) if r.get("epoch", 0) <= epoch]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    atomic_write_text(run_dir / "metrics.jsonl", text)


def install_signal_handlers() -> None:
    """SIGTERM ends training like a stop request (the run is kept as 'stopped')."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run_trainer(run_dir, resume: bool = False, verbose: bool = False, quiet: bool = False) -> int:
    """Body of a trainer process (`python -m vae train`, or a standby given a run): train the run folder,
    print its final state (with `quiet`, only when it did not finish or stop), and return the exit code
    (0 finished or stopped, 1 otherwise)."""
    install_signal_handlers()
    status = train_run(run_dir, resume=resume, verbose=verbose)
    ok = status["state"] not in ERRORS
    if not (quiet and ok):
        print(f"{status['state']}: {status.get('message', '')}")
    return 0 if ok else 1
