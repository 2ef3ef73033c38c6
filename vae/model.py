"""The VAE: encoder and decoder built with the Functional API, keras.ops only.

Architectures
- `seed`: the study's network exactly (FACTS.md §2): four Conv2D(3x3, valid,
  ReLU) -> MaxPool(2, same) with 64, 64, 128, 128 filters, Dense(latent) means;
  decoder Dense((S/8)^2*16, ReLU, no bias) -> Reshape -> [Up, ConvT 3x3 64, BN]
  x2 -> Up, ConvT 3x3 128, BN -> ConvT 1x1 256, BN -> ConvT 1x1 1 (sigmoid).
  Kernels RandomNormal(0.05). At 256x256x1 with 3 latents: 549,956 parameters.
- `burgess`: the standard disentanglement conv net (Burgess et al. 2018,
  "Understanding disentangling in beta-VAE", appendix): four 4x4 stride-2
  convs of 32 filters, Dense 256-256, mirrored decoder. The fast default.

The decoder returns logits; the model's output `recon` is sigmoid(logits).
Variance `constant` samples z = mu + 0.1*eps (the study); `learned` adds a
log-variance head. The model normalises uint8 input itself (x / 255), so the
data stays uint8 in memory and on the way in.

Speed: a few decoder layers are exact, faster rewrites of Keras' own
(`ConvTranspose`, `Conv2DTranspose`, `BatchNorm`, in vae.fast_layers, with the
measurements and tests/test_fast_layers.py); the networks below read as if they
were the stock layers.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from . import losses
from .fast_layers import BatchNorm, Conv2DTranspose, ConvTranspose
from .registry import ARCHITECTURES, logged_terms


@keras.saving.register_keras_serializable(package="vae")
class Sampling(layers.Layer):
    """z = mu + sigma * eps; sigma fixed at 0.1 or exp(logvar / 2)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mu, logvar=None, training=None):
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator, dtype=mu.dtype)
        if logvar is None:
            return mu + losses.SIGMA_CONSTANT * eps
        return mu + ops.exp(0.5 * logvar) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _seed_encoder(image_size, latent_dim, variance):
    init = keras.initializers.RandomNormal(stddev=0.05)
    x_in = keras.Input((image_size, image_size, 1), name="image")
    h = x_in
    for i, filters in enumerate((64, 64, 128, 128)):
        h = layers.Conv2D(filters, 3, padding="valid", activation="relu", kernel_initializer=init, name=f"conv{i + 1}")(h)
        h = layers.MaxPooling2D(2, padding="same", name=f"pool{i + 1}")(h)
    h = layers.Flatten(name="flatten")(h)
    outputs = [layers.Dense(latent_dim, kernel_initializer=init, name="z_mean")(h)]
    if variance == "learned":
        outputs.append(layers.Dense(latent_dim, kernel_initializer="zeros", name="z_log_var")(h))
    return keras.Model(x_in, outputs, name="encoder")


def _seed_decoder(image_size, latent_dim):
    init = keras.initializers.RandomNormal(stddev=0.05)
    s = image_size // 8
    z_in = keras.Input((latent_dim,), name="z")
    h = layers.Dense(s * s * 16, activation="relu", use_bias=False, kernel_initializer=init, name="dense")(z_in)
    h = layers.Reshape((s, s, 16))(h)
    for i, (filters, k, up) in enumerate(((64, 3, True), (64, 3, True), (128, 3, True), (256, 1, False))):
        h = ConvTranspose(filters, k, padding="same", activation="relu", kernel_initializer=init, upsample=up,
                          name=f"deconv{i + 1}")(h)  # upsample: the study's UpSampling2D(2) before this layer
        h = BatchNorm(momentum=0.99, epsilon=1e-3, name=f"bn{i + 1}")(h)
    logits = ConvTranspose(1, 1, padding="same", kernel_initializer=init, name="logits", dtype="float32")(h)
    return keras.Model(z_in, logits, name="decoder")


def _burgess_encoder(image_size, latent_dim, variance):
    x_in = keras.Input((image_size, image_size, 1), name="image")
    h = x_in
    for i in range(4):
        h = layers.Conv2D(32, 4, strides=2, padding="same", activation="relu", name=f"conv{i + 1}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(256, activation="relu", name="fc1")(h)
    h = layers.Dense(256, activation="relu", name="fc2")(h)
    outputs = [layers.Dense(latent_dim, name="z_mean", dtype="float32")(h)]
    if variance == "learned":
        outputs.append(layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h))
    return keras.Model(x_in, outputs, name="encoder")


def _burgess_decoder(image_size, latent_dim):
    s = image_size // 16
    z_in = keras.Input((latent_dim,), name="z")
    h = layers.Dense(256, activation="relu", name="fc1")(z_in)
    h = layers.Dense(256, activation="relu", name="fc2")(h)
    h = layers.Dense(s * s * 32, activation="relu", name="fc3")(h)
    h = layers.Reshape((s, s, 32))(h)
    for i in range(3):
        h = layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu", name=f"deconv{i + 1}")(h)
    logits = Conv2DTranspose(1, 4, strides=2, padding="same", name="logits", dtype="float32")(h)
    return keras.Model(z_in, logits, name="decoder")


# Encoder and decoder builders of each vae.registry.ARCHITECTURES entry.
NETWORKS = {"burgess": (_burgess_encoder, _burgess_decoder), "seed": (_seed_encoder, _seed_decoder)}


@keras.saving.register_keras_serializable(package="vae")
class VAE(keras.Model):
    """Encoder + sampling + decoder, with the loss of `vae.losses` in `compute_loss`."""

    def __init__(self, arch="burgess", image_size=64, latent_dim=3, variance="constant", beta=0.001, gamma=0.0001,
                 entanglement="seed", seed=None, **kwargs):
        super().__init__(**kwargs)
        if arch not in NETWORKS:
            raise ValueError(f"unknown arch {arch!r}; use one of {', '.join(NETWORKS)}")
        self.arch, self.image_size, self.latent_dim = arch, int(image_size), int(latent_dim)
        self.variance, self.entanglement_mode, self.seed = variance, entanglement, seed
        self.beta, self.gamma = float(beta), float(gamma)
        build_encoder, build_decoder = NETWORKS[arch]
        self.encoder = build_encoder(self.image_size, self.latent_dim, variance)
        self.decoder = build_decoder(self.image_size, self.latent_dim)
        self.sampling = Sampling(seed=seed, name="sampling")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in logged_terms() if name != "loss"}
        # Track them as attributes so Keras reports them with the loss.
        for name, tracker in self.trackers.items():
            setattr(self, f"tracker_{name}", tracker)

    # -- forward ------------------------------------------------------------
    @staticmethod
    def normalise(x):
        """uint8 (or [0, 1] float) images (B, H, W) or (B, H, W, 1) -> float (B, H, W, 1) in [0, 1]."""
        if x.dtype == "uint8":
            x = ops.cast(x, "float32") / 255.0
        else:
            x = ops.cast(x, "float32")
        if len(x.shape) == 3:
            x = ops.expand_dims(x, -1)
        return x

    def encode(self, x):
        out = self.encoder(self.normalise(x))
        if self.variance == "learned":
            return out[0], out[1]
        return (out[0] if isinstance(out, (list, tuple)) else out), None

    def call(self, x, training=False):
        mu, logvar = self.encode(x)
        z = self.sampling(mu, logvar) if training else mu
        logits = self.decoder(z, training=training)
        out = {"recon": ops.sigmoid(logits), "logits": logits, "mu": mu}
        if logvar is not None:
            out["logvar"] = logvar
        return out

    # -- loss ---------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = losses.vae_loss_terms(
            self.normalise(x), y_pred["logits"], y_pred["mu"], y_pred.get("logvar"),
            beta=self.beta, gamma=self.gamma, mode=self.entanglement_mode, sample_weight=sample_weight)
        # Weighted by batch size, as Keras weights its own loss tracker, so the logged
        # terms add up to the logged loss also when the last batch is smaller.
        n = ops.cast(ops.shape(y_pred["mu"])[0], "float32")
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name], sample_weight=n)
        return terms["loss"]

    def get_config(self):
        return {**super().get_config(), "arch": self.arch, "image_size": self.image_size,
                "latent_dim": self.latent_dim, "variance": self.variance, "beta": self.beta, "gamma": self.gamma,
                "entanglement": self.entanglement_mode, "seed": self.seed}

    def build(self, input_shape=None):
        self.built = True


def build_vae(arch="burgess", image_size=64, latent_dim=3, variance="constant", beta=0.001, gamma=0.0001,
              entanglement="seed", seed=None) -> VAE:
    """Build a VAE; call `model.compile(optimizer)` and `fit(uint8 images)` to train."""
    multiple = ARCHITECTURES[arch].size_multiple if arch in ARCHITECTURES else 1
    if image_size % multiple:
        raise ValueError(f"{arch} needs image_size a multiple of {multiple}, got {image_size}")
    model = VAE(arch=arch, image_size=image_size, latent_dim=latent_dim, variance=variance, beta=beta, gamma=gamma,
                entanglement=entanglement, seed=seed)
    model(ops.zeros((1, image_size, image_size, 1), dtype="float32"))
    return model


def count_params(model: VAE) -> dict:
    """Trainable / non-trainable / total parameter counts of encoder + decoder."""
    weights = model.encoder.weights + model.decoder.weights
    trainable = model.encoder.trainable_weights + model.decoder.trainable_weights
    n = lambda ws: int(sum(int(ops.size(w)) for w in ws))  # noqa: E731
    total = n(weights)
    return {"total": total, "trainable": n(trainable), "non_trainable": total - n(trainable)}
