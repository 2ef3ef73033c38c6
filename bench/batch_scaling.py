"""Images/s of our training step against batch size, one network per process (bench_train.py runs it).

    python bench/batch_scaling.py --arch seed --batches 8 32 64 [--precision mixed_bfloat16]

Each batch size: a fresh model, the trainer's tf.data feeding of in-memory uint8 images (seed-full-like
random curves are not needed: the cost does not depend on pixel values), a few warm-up steps, then
timed steps. Prints one JSON line: {"arch", "precision", "size", "images_per_s": {batch: rate}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--arch",
        default="burgess",
        help="burgess, seed, or study: the study's network with stock "
        "Keras layers and add_loss (bench/study_pipeline.py), fed float32 numpy arrays as a plain "
        "in-memory `fit` (the issue's setting for its batch-size slowdown)",
    )
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--precision", default="mixed_bfloat16")
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128, 256])
    ap.add_argument("--images", type=int, default=1536, help="images timed per batch size")
    a = ap.parse_args(argv)
    import keras
    import tensorflow as tf

    from vae.model.networks import build_vae

    keras.mixed_precision.set_global_policy(a.precision)
    x = (np.random.default_rng(0).random((2048, a.size, a.size)) < 0.05).astype(np.uint8) * 255
    rates = {}
    for b in a.batches:
        keras.utils.set_random_seed(0)
        steps, warm = max(3, a.images // b), 2
        times = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter())

        if a.arch == "study":
            from study_pipeline import build_study_vae

            m = build_study_vae(a.size)
            xf = (x[: (warm + steps) * b].astype(np.float32) / 255.0)[..., None]
            m.fit(xf, batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[Clock()])
        else:
            m = build_vae(a.arch, a.size, 3)
            m.compile(optimizer=keras.optimizers.Adam(1e-4))
            m.optimizer.build(m.trainable_variables)
            ds = tf.data.Dataset.from_tensor_slices(x).shuffle(2048).batch(b, drop_remainder=True).repeat().prefetch(2)
            m.fit(ds, steps_per_epoch=warm + steps, epochs=1, verbose=0, callbacks=[Clock()])
        rates[b] = steps * b / (times[-1] - times[warm - 1])
    out = {"arch": a.arch, "precision": a.precision, "size": a.size, "images_per_s": rates}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
