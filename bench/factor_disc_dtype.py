"""FactorVAE's discriminator in bfloat16 against float32 (under mixed_bfloat16), against a beta-VAE step, in one process.

    python bench/factor_disc_dtype.py      # prints median step ms and the ratio to the beta-VAE step

Burgess net, 64x64, batch 64, 10 latents; 3 interleaved repeats of each model, epochs 2-3 of 12 steps timed.
The float32 discriminator is what vae.model.networks builds since this measurement (bench/RESULTS.md).
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import keras

from vae.model import networks
from vae.model.networks import build_vae
from vae.runs.config import TrainConfig
from vae.training.train import _fit_data

keras.mixed_precision.set_global_policy("mixed_bfloat16")
steps = 12
x = (np.random.default_rng(0).random((64 * steps, 64, 64)) > 0.7).astype(np.uint8) * 255
orig_init = networks.Discriminator.__init__


def forced(dtype):
    def init(self, *a, **kw):
        kw["dtype"] = dtype
        orig_init(self, *a, **kw)

    return init


class Clock(keras.callbacks.Callback):
    def __init__(self):
        self.t = []

    def on_train_batch_end(self, batch, logs=None):
        self.t.append(time.perf_counter())


times = {}
for rep in range(3):
    for label, method, f32 in [
        ("beta", "beta-vae", False),
        ("fv-bf16", "factor-vae", False),
        ("fv-f32", "factor-vae", True),
    ]:
        networks.Discriminator.__init__ = forced("float32" if f32 else "mixed_bfloat16")
        keras.utils.set_random_seed(0)
        m = build_vae(
            "burgess",
            64,
            10,
            "learned",
            beta=1.0,
            gamma=0.0,
            method=method,
            method_params={"gamma_tc": 10.0} if method == "factor-vae" else {},
            reduction="papers",
            dataset_size=len(x),
        )
        m.compile(keras.optimizers.Adam(1e-4))
        m.optimizer.build(m.trainable_variables)
        c = Clock()
        m.fit(
            **_fit_data(TrainConfig(dataset="x", batch_size=64), x, None, None, steps),
            epochs=3,
            callbacks=[c],
            verbose=0,
        )
        times.setdefault(label, []).extend(np.diff(c.t)[steps:].tolist())
b = np.median(times["beta"])
for k, v in times.items():
    print(k, round(1000 * np.median(v), 1), "ms", round(np.median(v) / b, 2))
