"""The default training step as the trainer runs it, variants alternated in one process, against the bf16 peak.

    nice -n 10 python bench/bench_step.py [--arms native,subpixel,subpixel2] [--steps 15] [--rounds 5]
    nice -n 10 python bench/bench_step.py --paths       # the trainer's pipeline against the other scripts' ways

Each arm is the default run's model (burgess 64x64, batch 128, mixed_bfloat16, Adam) built by
`vae.training.train.build_model` and trained by `fit` on the trainer's own input (`train._fit_data`: the
repeated, reshuffled tf.data pipeline) with a callback that reads each batch's loss as `RunFolderCallback`
does; op determinism is on when the trainer turns it on (`train._configure_runtime`). Tracing is excluded
(3 warm-up steps per arm). Each round times every arm once (in turn) and then this machine's bf16 matmul
peak (4096^2, `bench_engines.matmul_peak_gflops`); reported per arm: medians over rounds of images/s, CPU
seconds per step (process time: less sensitive to other processes than wall time), GFLOP/s (74.7 MFLOP per
training image, `bench_engines.train_flops_per_image`) and its share of the same round's peak.

Arms (`vae.model.fast_layers.Conv2DTranspose.form`, the logits layer's computation; all exact):
  current   the form the library picks on this machine (`fast_layers.logits_form()`)
  native    Keras' own transposed convolution
  subpixel  3x3 'same' convolution to 4x the channels + depth-to-space (2.25x the multiply-adds)
  subpixel2 2x2 'valid' convolution of the padded input to 4x the channels + depth-to-space + crop
`--paths` compares, for the current model, the trainer's input (tf.data + per-batch loss read) with `fit`
on numpy arrays (bench/bench_group_step.py's way: Keras builds a new iterator each epoch) and with a
SeedGroup of one seed (bench_group_step.py's model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", default="native,subpixel,subpixel2")
    ap.add_argument("--paths", action="store_true", help="compare input paths instead of logits forms")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-determinism", action="store_true", help="leave op determinism off (the trainer turns it on)")
    ap.add_argument("--settings", action="store_true", help="process settings: op determinism, inter-op threads")
    args = ap.parse_args()
    if args.settings:
        return compare_settings(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from bench_engines import matmul_peak_gflops, train_flops_per_image
    from vae.model import fast_layers
    from vae.runs.config import TrainConfig
    from vae.training import grouped, train

    cfg = TrainConfig(dataset="x", seed=0)
    n = cfg.batch_size * args.steps
    train._configure_runtime(cfg)  # seed, mixed_bfloat16, op determinism: as a run
    if args.no_determinism:
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    x = (np.random.default_rng(0).random((n, 64, 64)) < 0.05).astype(np.uint8) * 255
    fp = train_flops_per_image()

    class ReadLoss(keras.callbacks.Callback):  # RunFolderCallback reads every batch's loss (a sync per step)
        def on_train_batch_end(self, batch, logs=None):
            float((logs or {}).get("loss", 0.0))

    def model(form):
        m = train.build_model(cfg, n)
        for layer in m.decoder.layers:
            if isinstance(layer, fast_layers.Conv2DTranspose):
                layer.form = form
        m.compile(optimizer=keras.optimizers.Adam(cfg.lr))
        m.optimizer.build(m.trainable_variables)
        return m

    def trainer_fit(m):
        data = train._fit_data(cfg, x, None, None, args.steps)
        return lambda steps: m.fit(data["x"], steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[ReadLoss()])

    arms = {}
    if args.paths:
        m = model(fast_layers.logits_form())
        arms["trainer (tf.data, loss read per batch)"] = trainer_fit(m)
        data = train._fit_data(cfg, x, None, None, args.steps)
        arms["tf.data, no per-batch read"] = lambda steps: m.fit(data["x"], steps_per_epoch=steps, epochs=1, verbose=0)
        arms["fit(numpy) (new iterator per epoch)"] = lambda steps: m.fit(
            x[: steps * cfg.batch_size], batch_size=cfg.batch_size, epochs=1, verbose=0, shuffle=False
        )
        g = grouped.build_group([cfg], n)
        xg = x[:, None]
        arms["SeedGroup K=1, fit(numpy)"] = lambda steps: g.fit(
            xg[: steps * cfg.batch_size], batch_size=cfg.batch_size, epochs=1, verbose=0, shuffle=False
        )
    else:
        for name in args.arms.split(","):
            form = fast_layers.logits_form() if name == "current" else name
            arms[f"{name} ({form})" if name == "current" else name] = trainer_fit(model(form))
    for fit in arms.values():
        fit(3)  # trace and warm up
    wall = {k: [] for k in arms}
    cpu = {k: [] for k in arms}
    share = {k: [] for k in arms}
    peaks = []
    out = {"load_before": os.getloadavg(), "steps": args.steps, "rounds": args.rounds, "batch": cfg.batch_size}
    for _ in range(args.rounds):
        for k, fit in arms.items():
            t, c = time.perf_counter(), time.process_time()
            fit(args.steps)
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
        peaks.append(matmul_peak_gflops("bfloat16"))
        for k in arms:
            share[k].append(n * fp / wall[k][-1] / 1e9 / peaks[-1])
    out["load_after"] = os.getloadavg()
    out["bf16_matmul_peak_gflops"] = round(statistics.median(peaks), 1)
    out["train_mflop_per_image"] = round(fp / 1e6, 2)
    first = None
    for k in arms:
        ips = n / statistics.median(wall[k])
        first = first or statistics.median(wall[k])
        out[k] = {
            "images_per_s": round(ips, 1),
            "ms_per_step": round(1000 * statistics.median(wall[k]) / args.steps, 1),
            "cpu_ms_per_step": round(1000 * statistics.median(cpu[k]) / args.steps, 1),
            "wall_vs_first_arm": round(statistics.median(wall[k]) / first, 3),
            "gflops": round(ips * fp / 1e9, 1),
            "share_of_bf16_peak": round(statistics.median(share[k]), 3),
        }
    print(json.dumps(out, indent=1))


SETTINGS = {
    "trainer (determinism on, TF's default threads)": ([], {}),
    "determinism off": (["--no-determinism"], {}),
    "inter-op threads 1": ([], {"TF_NUM_INTEROP_THREADS": "1"}),
}


def compare_settings(args) -> None:
    """Process-wide settings, one child process per arm and round (arms alternate): the current model."""
    import subprocess

    rows = {k: [] for k in SETTINGS}
    for _ in range(args.rounds):
        for name, (flags, env) in SETTINGS.items():
            cmd = [sys.executable, __file__, "--arms", "current", "--rounds", "3", "--steps", str(args.steps), *flags]
            res = subprocess.run(
                cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}, capture_output=True, text=True, check=True
            )
            doc = json.loads(res.stdout[res.stdout.index("{") :])
            rows[name].append(next(v for k, v in doc.items() if k.startswith("current")))
    out = {"load_after": os.getloadavg(), "rounds": args.rounds}
    for name, runs in rows.items():
        out[name] = {
            key: round(statistics.median(r[key] for r in runs), 3)
            for key in ("images_per_s", "cpu_ms_per_step", "share_of_bf16_peak")
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
