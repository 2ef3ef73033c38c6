"""Using a model: encode, reconstruct and decode in batches (imports Keras).

The trainer's per-epoch snapshots, `python -m vae evaluate` and the pages all
encode and reconstruct through this module. Models are loaded with Keras's safe
mode (no arbitrary code from a user's file); importing vae.model.networks registers the
custom classes, so no custom-object arguments are needed.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import keras
import numpy as np
from keras import ops

from vae.base.errors import UserError
from vae.base.fileio import check_model_file
from vae.model import losses
from vae.model import networks as _register  # noqa: F401  (registers VAE, Sampling and the fast layers)


def load_run_model(run_dir, which: str = "model.keras"):
    """The best model of a run (or `last.keras`)."""
    path = check_model_file(Path(run_dir) / which)  # a damaged file: said so (Keras would say "File not found")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as e:
        raise UserError(f"cannot load {path}: {e}") from None


_ENCODERS = weakref.WeakKeyDictionary()


def _compiled_encoder(model):
    """model.encode's means as a tf.function: half the time of eager calls in the per-epoch snapshot."""
    fn = _ENCODERS.get(model)
    if fn is None:
        fn = lambda x: model.encode(x)[0]  # noqa: E731
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            fn = tf.function(fn, reduce_retracing=True)
        _ENCODERS[model] = fn
    return fn


def encode(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Latent means of uint8 images (N, H, W), float32 (N, d)."""
    out = []
    encode_batch = _compiled_encoder(model)
    for i in range(0, len(images), batch_size):
        mu = encode_batch(np.asarray(images[i : i + batch_size]))
        out.append(ops.convert_to_numpy(mu).astype(np.float32))
    if not out:
        return np.zeros((0, model.latent_dim), np.float32)
    return np.concatenate(out)


def reconstruct(model, images: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """Reconstructions (mean decoding, no sampling) of uint8 images, as uint8 (N, H, W)."""
    out = []
    for i in range(0, len(images), batch_size):
        rec = model(np.asarray(images[i : i + batch_size]), training=False)["recon"]
        out.append(
            np.clip(np.round(ops.convert_to_numpy(rec).astype(np.float32)[..., 0] * 255.0), 0, 255).astype(np.uint8)
        )
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[1:], np.uint8)


def decode(model, z) -> np.ndarray:
    """uint8 images (N, H, W) decoded from latent points (N, d)."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.shape[1] != model.latent_dim:
        raise UserError(f"latent points have {z.shape[1]} dimensions; this model has {model.latent_dim}")
    logits = model.decoder(z, training=False)
    img = ops.convert_to_numpy(ops.sigmoid(logits)).astype(np.float32)[..., 0]
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def recon_loss_from_codes(model, images: np.ndarray, codes: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """recon_loss_per_image for images whose latent means `codes` (encode's) are known: only the decoder runs.

    The model's own call decodes the mean too (no sampling outside training), so the numbers are the same."""
    codes = np.asarray(codes, dtype=np.float32)
    if codes.shape != (len(images), model.latent_dim):
        raise UserError(f"codes have shape {codes.shape}; expected ({len(images)}, {model.latent_dim})")
    out = []
    for i in range(0, len(images), batch_size):
        logits = model.decoder(codes[i : i + batch_size], training=False)
        x = model.normalise(np.asarray(images[i : i + batch_size]))
        out.append(ops.convert_to_numpy(losses.reconstruction_bce(x, logits)).astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def recon_loss_per_image(model, images: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """Per-image reconstruction BCE (mean over pixels), the loss's own term."""
    out = []
    for i in range(0, len(images), batch_size):
        x = np.asarray(images[i : i + batch_size])
        y = model(x, training=False)
        out.append(ops.convert_to_numpy(losses.reconstruction_bce(model.normalise(x), y["logits"])).astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)
