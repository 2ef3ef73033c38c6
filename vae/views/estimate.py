"""How long a run will take, before Start (never imports TensorFlow).

Measured first: earlier runs on this machine with the same method, network, batch size, image size and
precision tell the wall-clock seconds one training image costs, everything included (the
training step, the validation pass, the epoch snapshot): the time of their last epoch line over
the training images they went through (epochs done x steps per epoch x batch size). The median
over those runs is used.

Without such a run, a documented default: DEFAULT_IMAGES_PER_S, the training speeds measured on
the 2-core development machine (bench/RESULTS.md), scaled by the image area against 64x64 and
by the method's step cost (METHOD_STEP_COST: FactorVAE's discriminator), and
with VALIDATION_COST more time per validation image than a training image's forward pass would
need. A default is a rough guide on other machines; the text says which source was used.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Mapping, Sequence

# images/s of a training step at 64x64 on 2 CPU cores (bench/RESULTS.md: seed bf16 63-75 img/s at
# batch 8-64, float32 ~44; burgess bf16 1,055-1,746 img/s at batch 32-256, about 1,425 at 128).
DEFAULT_IMAGES_PER_S = {
    ("seed", "mixed_bfloat16"): 65.0,
    ("seed", "float32"): 40.0,
    ("burgess", "mixed_bfloat16"): 1400.0,
    ("burgess", "float32"): 900.0,
}
FALLBACK_IMAGES_PER_S = 100.0
VALIDATION_COST = 1 / 3  # a validation image (forward pass only) against a training image
EPOCH_OVERHEAD_S = 1.0  # the epoch's snapshot and checkpoint
MATCH = ("method", "arch", "batch_size", "image_size", "precision")
DEFAULT_METHOD = "beta-vae"  # a config without `method` trained the β-VAE family's loss
# A step's cost against a β-VAE step, for the default speed (FactorVAE trains a discriminator too:
# 1.44-1.55x in three quiet measurements, bench/RESULTS.md; the other methods cost about the same as β-VAE).
METHOD_STEP_COST = {"factor-vae": 1.5}


def _setting(cfg: Mapping, key: str) -> str:
    value = cfg.get(key)
    if key == "method" and not value:
        value = DEFAULT_METHOD
    return str(value)


def seconds_per_image(run: Mapping) -> float | None:
    """Wall seconds per training image of one finished or stopped run, or None if it cannot tell."""
    final, status, cfg = run.get("final") or {}, run.get("status") or {}, run.get("config") or {}
    t, epochs = final.get("time"), final.get("epoch")
    steps, batch = status.get("steps_per_epoch"), cfg.get("batch_size")
    if not all(isinstance(v, (int, float)) and v > 0 for v in (t, epochs, steps, batch)):
        return None
    return float(t) / (float(epochs) * float(steps) * float(batch))


def estimate_duration(cfg: Mapping, n_train: int, n_val: int, earlier_runs: Sequence[Mapping] = ()) -> dict:
    """{'seconds', 'per_epoch', 'source', 'runs'} for training `cfg` (a TrainConfig dict) on the given split sizes.

    `source` is 'measured' (earlier runs with the same MATCH settings: `runs` of them) or 'default'.
    """
    epochs = int(cfg.get("epochs") or 1)
    batch = int(cfg.get("batch_size") or 1)
    steps = math.ceil(n_train / batch)
    matching = [
        seconds_per_image(r)
        for r in earlier_runs
        if all(_setting(r.get("config") or {}, k) == _setting(cfg, k) for k in MATCH)
    ]
    matching = [s for s in matching if s is not None]
    if matching:
        per_epoch = median(matching) * steps * batch
        return {"seconds": per_epoch * epochs, "per_epoch": per_epoch, "source": "measured", "runs": len(matching)}
    ips = DEFAULT_IMAGES_PER_S.get((cfg.get("arch"), cfg.get("precision")), FALLBACK_IMAGES_PER_S)
    ips *= (64.0 / float(cfg.get("image_size") or 64)) ** 2
    ips /= METHOD_STEP_COST.get(_setting(cfg, "method"), 1.0)
    per_epoch = (steps * batch + VALIDATION_COST * n_val) / ips + EPOCH_OVERHEAD_S
    return {"seconds": per_epoch * epochs, "per_epoch": per_epoch, "source": "default", "runs": 0}
