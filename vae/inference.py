"""Using a trained run's model: encode, reconstruct, decode (imports Keras).

Models are loaded with Keras's safe mode (no arbitrary code from a user's
file); the `vae` package registers the custom classes, so no custom-object
arguments are needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError


def load_run_model(run_dir, which: str = "model.keras"):
    """The best model of a run (or `last.keras`)."""
    import keras

    from . import model as _register  # noqa: F401  (registers VAE and Sampling)

    path = Path(run_dir) / which
    if not path.exists():
        raise UserError(f"run {Path(run_dir).name} has no {which} yet; it is saved at the end of the first epoch")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as e:
        raise UserError(f"cannot load {path}: {e}") from None


def encode(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Latent means (N, d) of uint8 images (N, H, W)."""
    from .train import encode_in_batches

    return encode_in_batches(model, images, batch_size)


def reconstruct(model, images: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """uint8 reconstructions (N, H, W) by mean decoding."""
    from .train import reconstruct_in_batches

    return reconstruct_in_batches(model, images, batch_size)


def decode(model, z) -> np.ndarray:
    """uint8 images (N, H, W) decoded from latent points (N, d)."""
    from keras import ops

    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.shape[1] != model.latent_dim:
        raise UserError(f"latent points have {z.shape[1]} dimensions; this model has {model.latent_dim}")
    logits = model.decoder(z, training=False)
    img = ops.convert_to_numpy(ops.sigmoid(logits)).astype(np.float32)[..., 0]
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def recon_loss_per_image(model, images: np.ndarray, batch_size: int = 200) -> np.ndarray:
    """Per-image reconstruction BCE (mean over pixels), the loss's own term."""
    from keras import ops

    from . import losses

    out = []
    for i in range(0, len(images), batch_size):
        x = np.asarray(images[i:i + batch_size])
        y = model(x, training=False)
        out.append(ops.convert_to_numpy(losses.reconstruction_bce(model.normalise(x), y["logits"])).astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)
