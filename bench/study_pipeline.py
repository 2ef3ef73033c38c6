"""The study's training pipeline, re-implemented as a baseline (docs/study.md; the study's part-3 notebook).

- PNG files read by `keras.utils.image_dataset_from_directory` (grayscale, resized bilinearly to
  SIZE x SIZE, batch 8, shuffle=False, no cache, label_mode=None), then multiplied by 1/255. The
  function needs one class subfolder: the dataset's training PNGs are symlinked into tmp/train/category1.
- The `seed` network with stock Keras layers (Conv2D/MaxPool encoder; Dense, UpSampling2D,
  Conv2DTranspose, BatchNormalization decoder; sigmoid output): 549,956 parameters at 256x256.
- The loss added by an `Add_VAE_Loss` layer via `add_loss` (model compiled with loss=None):
  mean(0.001*KL + recon + 0.0001*entanglement), recon = keras binary_crossentropy of the flattened
  batch, KL = mean_dims(mu^2 + s^2 - log s^2 - 1) with s = 0.1, entanglement = the study's Python
  double loop over latent pairs of the batch mean of |mu_i mu_j|, times 2/(d(d-1)).
- Adam(1e-4), float32, Keras defaults for everything else.

    python bench/study_pipeline.py --data DATASET_FOLDER --steps 40     # prints images/s as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SIGMA = 0.1


def prepare_folder(dataset: str | Path, root: str | Path, n_train: int = 4499) -> Path:
    """root/train/category1/ with symlinks to the dataset's first n_train PNGs (the study's split)."""
    src = sorted((Path(dataset) / "images").glob("*.png"))[:n_train]
    cat = Path(root) / "train" / "category1"
    cat.mkdir(parents=True, exist_ok=True)
    for p in src:
        link = cat / p.name
        if not link.exists():
            link.symlink_to(p.resolve())
    return cat.parent


def build_study_vae(size: int, latent_dim: int = 3):
    import keras
    from keras import layers, ops

    init = keras.initializers.RandomNormal(stddev=0.05)

    class Sample_latent_vector(layers.Layer):
        def call(self, mu):
            return mu + SIGMA * keras.random.normal(ops.shape(mu))

    class Add_VAE_Loss(layers.Layer):
        def call(self, x, x_hat, mu):
            kl = ops.mean(ops.square(mu) + SIGMA**2 - ops.log(SIGMA**2) - 1.0, axis=1)
            recon = keras.losses.binary_crossentropy(ops.reshape(x, (-1,)), ops.reshape(x_hat, (-1,)))
            d = mu.shape[-1]
            ent = 0.0
            for i in range(d):  # the study's double loop over latent pairs
                for j in range(i + 1, d):
                    ent = ent + ops.mean(ops.abs(mu[:, i] * mu[:, j]))
            ent = ent * 2.0 / (d * (d - 1))
            self.add_loss(ops.mean(0.001 * kl + 1.0 * recon + 0.0001 * ent))
            return x_hat

    x_in = keras.Input((size, size, 1))
    h = x_in
    for f in (64, 64, 128, 128):
        h = layers.Conv2D(f, 3, padding="valid", activation="relu", kernel_initializer=init)(h)
        h = layers.MaxPooling2D(2, padding="same")(h)
    mu = layers.Dense(latent_dim, kernel_initializer=init)(layers.Flatten()(h))
    z = Sample_latent_vector()(mu)
    s = size // 8
    h = layers.Dense(s * s * 16, activation="relu", use_bias=False, kernel_initializer=init)(z)
    h = layers.Reshape((s, s, 16))(h)
    for f, k, up in ((64, 3, True), (64, 3, True), (128, 3, True), (256, 1, False)):
        if up:
            h = layers.UpSampling2D(2)(h)
        h = layers.Conv2DTranspose(f, k, padding="same", activation="relu", kernel_initializer=init)(h)
        h = layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(h)
    x_hat = layers.Conv2DTranspose(1, 1, padding="same", activation="sigmoid", kernel_initializer=init)(h)
    out = Add_VAE_Loss()(x_in, x_hat, mu)
    model = keras.Model(x_in, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-7), loss=None)
    return model


def run_study(dataset: str, size: int, steps: int = 40, warmup: int = 5, batch_size: int = 8) -> dict:
    """Train the study pipeline for warmup + steps batches; images/s over the last `steps`."""
    import keras

    with tempfile.TemporaryDirectory(prefix="study-") as tmp:
        train_dir = prepare_folder(dataset, tmp)
        ds = keras.utils.image_dataset_from_directory(
            str(train_dir),
            shuffle=False,
            image_size=(size, size),
            batch_size=batch_size,
            color_mode="grayscale",
            label_mode=None,
            verbose=False,
        )
        ds = ds.map(lambda x: x * (1.0 / 255))
        model = build_study_vae(size)
        times = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter())

        model.fit(ds, epochs=1, steps_per_epoch=warmup + steps, callbacks=[Clock()], verbose=0)
        n_params = model.count_params()
    rate = steps * batch_size / (times[-1] - times[warmup - 1])
    return {"images_per_s": rate, "steps": steps, "batch_size": batch_size, "image_size": size, "params": n_params}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps(run_study(a.data, a.size, a.steps, a.warmup)))
    sys.stdout.flush()
