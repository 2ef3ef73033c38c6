"""Train several seeds of one setting as one grouped model in this process (the sweep's fast engine).

`train_group(run_dirs)` takes K planned run folders whose configs differ only in their seed, builds
each seed's VAE exactly as `vae.training.train` would (the same global seed before the build, so the
same initial weights; the same shuffled tf.data pipeline per seed, so the same data order), stacks them
in a `vae.model.seed_group.SeedGroup` and trains all K in one `fit`. Every run folder gets what the
per-run trainer writes (status.json, metrics.jsonl, snapshots, last.keras / model.keras, tensorboard):
one `RunFolderCallback` per seed, fed with that seed's own logs. Then each run is evaluated as the
per-run engine evaluates it (`evaluate_run`), so evaluation.json is computed the same way.

Faults, per run: a seed whose loss becomes NaN is `diverged` and the others go on; a `stop` file in a
run folder stops that run after the current batch (all stopped: the group ends). A run that was
interrupted (a folder with metrics but not finished) is trained again from epoch 0: the grouped
checkpoints hold the model but not the group's optimizer state.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np

from vae.base.errors import UserError
from vae.base.fileio import atomic_write_json, read_json
from vae.base.safety import require_run_space, require_writable
from vae.model.seed_group import SeedGroup, member_logs
from vae.runs.config import TrainConfig
from vae.runs.folder import refuse_if_trained_elsewhere
from vae.training import train


def _same_setting(cfgs: list[TrainConfig]) -> None:
    base = {k: v for k, v in cfgs[0].to_dict().items() if k != "seed"}
    for c in cfgs[1:]:
        other = {k: v for k, v in c.to_dict().items() if k != "seed"}
        if other != base:
            diff = sorted(k for k in set(base) | set(other) if base.get(k) != other.get(k))
            raise UserError(f"a seed group's runs must differ only in their seed; these differ in {', '.join(diff)}")
    seeds = [c.seed for c in cfgs]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"a seed group names a seed twice: {seeds}")


def build_member(cfg: TrainConfig, n_train: int):
    """Seed `cfg.seed`'s VAE, built after the same global seeding as `train_run`'s (same initial weights)."""
    keras.utils.set_random_seed(cfg.seed)
    return train.build_model(cfg, n_train)


def build_group(cfgs: list[TrainConfig], n_train: int):
    """The compiled SeedGroup of `cfgs` (Adam's slots built eagerly, as train_run does)."""
    members = [build_member(c, n_train) for c in cfgs]
    group = SeedGroup(members, name="seed_group")
    group.compile(optimizer=keras.optimizers.Adam(cfgs[0].lr))
    group.optimizer.build(group.trainable_variables)
    return group


def group_fit_data(cfgs: list[TrainConfig], x_train, w_train, validation, steps_per_epoch: int) -> dict:
    """`fit`'s data arguments for the group: batches (B, K, H, W), member k's slice in seed k's order.

    On TensorFlow each seed's pipeline is the per-run trainer's (shuffle with seed `cfg.seed`, the global
    seed set to it as train_run sets it, batch, repeat), zipped: each seed sees the batches its own run
    would. Elsewhere each seed's rows are permuted once by its seed and `fit` reshuffles the stacked rows.
    """
    k = len(cfgs)
    batch = cfgs[0].batch_size
    val = None
    if validation is not None:
        xv = np.ascontiguousarray(
            np.broadcast_to(validation[0][:, None], (len(validation[0]), k) + validation[0].shape[1:])
        )
        wv = (
            None if len(validation) < 3 else np.ascontiguousarray(np.broadcast_to(validation[2][:, None], (len(xv), k)))
        )
        val = (xv,) if wv is None else (xv, np.zeros(len(xv), np.float32), wv)
    if keras.backend.backend() != "tensorflow":
        perms = [np.random.default_rng(c.seed).permutation(len(x_train)) for c in cfgs]
        xg = np.stack([x_train[p] for p in perms], axis=1)
        wg = None if w_train is None else np.stack([w_train[p] for p in perms], axis=1)
        return dict(x=xg, sample_weight=wg, batch_size=batch, shuffle=True, validation_data=val)
    import tensorflow as tf

    parts = []
    for c in cfgs:
        tf.random.set_seed(c.seed)  # the global seed train_run's pipeline is built under
        ds = tf.data.Dataset.from_tensor_slices((x_train,) if w_train is None else (x_train, w_train))
        parts.append(ds.shuffle(len(x_train), seed=c.seed, reshuffle_each_iteration=True).batch(batch))

    def stack(*members):
        xs = tf.stack([m[0] for m in members], axis=1)
        if w_train is None:
            return (xs,)
        return xs, tf.zeros(tf.shape(xs)[:1], tf.float32), tf.stack([m[1] for m in members], axis=1)

    train_ds = tf.data.Dataset.zip(tuple(parts)).map(stack).repeat().prefetch(2)
    val_ds = None
    if val is not None:
        val_ds = tf.data.Dataset.from_tensor_slices(val).batch(batch).prefetch(2)
    return dict(x=train_ds, steps_per_epoch=steps_per_epoch, validation_data=val_ds, shuffle=False)


class _Dispatch(keras.callbacks.Callback):
    """Hands each seed's RunFolderCallback that seed's logs; drops a seed once it stopped or diverged."""

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = callbacks
        self.epoch_end_s: list[float] = []

    def _live(self):
        return [(k, cb) for k, cb in enumerate(self.callbacks) if cb.outcome is None]

    def on_epoch_begin(self, epoch, logs=None):
        for _, cb in self._live():
            cb.on_epoch_begin(epoch, None)

    def on_train_batch_end(self, batch, logs=None):
        for k, cb in self._live():
            cb.on_train_batch_end(batch, member_logs(logs, k))
        if not self._live():
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        t = time.perf_counter()
        for k, cb in self._live():
            cb.on_epoch_end(epoch, member_logs(logs, k))
        self.epoch_end_s.append(time.perf_counter() - t)
        if not self._live():
            self.model.stop_training = True


def _fresh(run_dir: Path) -> None:
    """An interrupted run starts over: drop what an earlier attempt wrote."""
    for name in ("metrics.jsonl", "last.keras", "model.keras", "evaluation.json", "latents.csv"):
        (run_dir / name).unlink(missing_ok=True)
    snaps = run_dir / "snapshots"
    if snaps.is_dir():
        for f in snaps.glob("epoch_*.npz"):
            f.unlink(missing_ok=True)


def train_group(run_dirs, evaluate: str = "quick", verbose: bool = False, status_fields: dict | None = None) -> dict:
    """Train (from epoch 0) and evaluate the runs in `run_dirs` as one SeedGroup; returns per-run
    states and the time spent ({"states": {name: state}, "train_s", "evaluate_s", "epoch_end_s"}).

    `status_fields` go into every run's status.json (the sweep's node and host: a run finished by a group
    whose result never reached the sweep driver still says where it ran)."""
    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise UserError("a seed group needs at least one run")
    for rd in run_dirs:
        require_writable(f"train run {rd.name}")
    docs = [read_json(rd / "config.json") for rd in run_dirs]
    cfgs = [TrainConfig.from_dict(d["config"]) for d in docs]
    _same_setting(cfgs)
    for rd in run_dirs:
        refuse_if_trained_elsewhere(rd)
    statuses = [
        train.StatusFile(
            rd,
            state="running",
            message=f"loading data (trained as a seed group of {len(run_dirs)})",
            epoch=0,
            epochs=c.epochs,
            step=0,
            group=len(run_dirs),
            **(status_fields or {}),
        )
        for rd, c in zip(run_dirs, cfgs)
    ]
    for s in statuses:
        s.start_heartbeat()
    t0 = time.perf_counter()
    try:
        callbacks = _train(run_dirs, cfgs, docs, statuses, verbose)
    except BaseException as e:
        msg = (
            "interrupted"
            if isinstance(e, KeyboardInterrupt)
            else str(e)
            if isinstance(e, UserError)
            else f"{type(e).__name__}: {e}"
        )
        for s in statuses:
            if s.data.get("state") == "running":
                s.update(state="stopped" if isinstance(e, KeyboardInterrupt) else "failed", message=msg)
        raise
    finally:
        for s in statuses:
            s.stop_heartbeat()
    t_train = time.perf_counter() - t0
    dispatch = callbacks[-1]
    states = {rd.name: s.data["state"] for rd, s in zip(run_dirs, statuses)}
    t1 = time.perf_counter()
    if evaluate != "none":
        from vae.training.evaluate import evaluate_run, sweep_evaluation

        for rd in run_dirs:
            if states[rd.name] == "finished":
                evaluate_run(rd, **sweep_evaluation(evaluate))
    keras.backend.clear_session()  # the worker trains its next group with a clean graph
    return {
        "states": states,
        "train_s": round(t_train, 2),
        "evaluate_s": round(time.perf_counter() - t1, 2),
        "epoch_end_s": dispatch.epoch_end_s,
    }


def _train(run_dirs, cfgs, docs, statuses, verbose):
    cfg = cfgs[0]
    data, meta = train.load_training_data(cfg)
    n_train = len(data["splits"]["train"])
    for c, rd in zip(cfgs, run_dirs):
        c.validate(train_size=n_train)
        require_run_space(c, meta["counts"], rd, epochs=c.epochs)
    for rd in run_dirs:
        _fresh(rd)
    train._configure_runtime(cfg)  # precision policy, op determinism (the seed is set per member)
    versions = train.library_versions()
    for rd, doc in zip(run_dirs, docs):
        if doc.get("versions") != versions or not doc.get("dataset"):
            doc.update(versions=versions, dataset=doc.get("dataset") or meta)
            atomic_write_json(rd / "config.json", doc)
    group = build_group(cfgs, n_train)

    tr_idx, va = data["splits"]["train"], data["splits"].get("validation", np.zeros(0, np.int64))
    x_train = data["images"][tr_idx]
    w_train = data["weights"][tr_idx] if cfg.sample_weights else None
    validation = None
    if len(va):
        x_val = data["images"][va]
        validation = (x_val, None, data["weights"][va]) if cfg.sample_weights else (x_val,)
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    fit_data = group_fit_data(cfgs, x_train, w_train, validation, steps_per_epoch)
    for s in statuses:
        s.update(message=f"training (a seed group of {len(cfgs)})", steps_per_epoch=steps_per_epoch, epoch=0)

    files = [open(rd / "metrics.jsonl", "a", encoding="utf-8") for rd in run_dirs]
    cbs = []
    try:
        for rd, c, s, f, m in zip(run_dirs, cfgs, statuses, files, group.members):
            cb = train.RunFolderCallback(rd, c, s, data, steps_per_epoch, 0, f)
            cb.set_model(m)
            cbs.append(cb)
        dispatch = _Dispatch(cbs)
        group.fit(**fit_data, epochs=cfg.epochs, callbacks=[dispatch], verbose=2 if verbose else 0)
    finally:
        for cb in cbs:
            cb.close()
        for f in files:
            f.close()
    for cb, s, c in zip(cbs, statuses, cfgs):
        if cb.outcome:
            state, message = cb.outcome
        else:
            state, message = "finished", f"finished {c.epochs} epochs; best validation loss {cb.best:.5f}"
        s.update(state=state, message=message, finished=time.time())
    return cbs + [dispatch]
