"""The VAE: encoder and decoder built with the Functional API, keras.ops only.

Architectures
- `seed`: the study's network exactly (docs/study.md, "The network"): four Conv2D(3x3, valid,
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
(`ConvTranspose`, `Conv2DTranspose`, `BatchNorm`, in vae.model.fast_layers, with the
measurements and tests/test_fast_layers.py); the networks below read as if they
were the stock layers.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from vae.base.registry import ARCHITECTURES, logged_terms
from vae.model import losses, methods
from vae.model.fast_layers import BatchNorm, Conv2DTranspose, ConvTranspose


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
        h = layers.Conv2D(filters, 3, padding="valid", activation="relu", kernel_initializer=init, name=f"conv{i + 1}")(
            h
        )
        h = layers.MaxPooling2D(2, padding="same", name=f"pool{i + 1}")(h)
    h = layers.Flatten(name="flatten")(h)
    # float32 heads under mixed precision, like the burgess network's (the KL and the regularisers need them)
    outputs = [layers.Dense(latent_dim, kernel_initializer=init, name="z_mean", dtype="float32")(h)]
    if variance == "learned":
        outputs.append(layers.Dense(latent_dim, kernel_initializer="zeros", name="z_log_var", dtype="float32")(h))
    return keras.Model(x_in, outputs, name="encoder")


def _seed_decoder(image_size, latent_dim):
    init = keras.initializers.RandomNormal(stddev=0.05)
    s = image_size // 8
    z_in = keras.Input((latent_dim,), name="z")
    h = layers.Dense(s * s * 16, activation="relu", use_bias=False, kernel_initializer=init, name="dense")(z_in)
    h = layers.Reshape((s, s, 16))(h)
    for i, (filters, k, up) in enumerate(((64, 3, True), (64, 3, True), (128, 3, True), (256, 1, False))):
        h = ConvTranspose(
            filters, k, padding="same", activation="relu", kernel_initializer=init, upsample=up, name=f"deconv{i + 1}"
        )(h)  # upsample: the study's UpSampling2D(2) before this layer
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


# Encoder and decoder builders of each vae.base.registry.ARCHITECTURES entry.
NETWORKS = {"burgess": (_burgess_encoder, _burgess_decoder), "seed": (_seed_encoder, _seed_decoder)}


@keras.saving.register_keras_serializable(package="vae")
class Discriminator(layers.Layer):
    """FactorVAE's discriminator (Kim & Mnih 2018, appendix A: 6 x 1000 leaky-ReLU units, 2 logits), with its
    own Adam (beta1 0.5, beta2 0.9, as disentanglement_lib). Its weights and Adam's state are non-trainable
    variables of the model, so the VAE's optimizer leaves them alone, a saved model keeps them, and on JAX
    they travel in the trainer's state; `train_on` takes one step of its own optimizer."""

    def __init__(self, latent_dim=3, units=1000, hidden_layers=6, lr=1e-4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.units, self.hidden_layers, self.lr, self.seed = (
            int(latent_dim),
            int(units),
            int(hidden_layers),
            float(lr),
            seed,
        )
        sizes = [self.latent_dim] + [self.units] * self.hidden_layers + [2]
        params = []
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            params.append(
                self.add_weight(
                    shape=(a, b),
                    initializer="glorot_uniform",
                    trainable=False,
                    dtype="float32",
                    name=f"d{k + 1}_kernel",
                )
            )
            params.append(
                self.add_weight(
                    shape=(b,), initializer="zeros", trainable=False, dtype="float32", name=f"d{k + 1}_bias"
                )
            )
        self.params = params
        self.adam = keras.optimizers.Adam(self.lr, beta_1=0.5, beta_2=0.9, name="discriminator_adam")
        self.adam.build(self.params)
        self.adam_state = list(self.adam.variables)  # tracked: saved with the model, in JAX's state
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def _logits(self, values, z):
        # float32 weights, computed in the layer's compute dtype (float32 as the VAE builds it), float32 logits
        values = [ops.cast(v, self.compute_dtype) for v in values]
        return ops.cast(losses.discriminator_logits(values, ops.cast(z, self.compute_dtype)), "float32")

    def logits(self, z):
        return self._logits(self.params, z)

    def logits_and_train(self, z):
        """The logits of z (for the VAE's TC estimate, with gradients to z), then one step of the
        discriminator's own optimizer on z (class 0) against z with each dimension permuted across the
        batch (class 1). Returns (logits of z, loss, accuracy), the last two before the step."""
        z_perm = losses.permute_dims(ops.stop_gradient(z), seed=self.seed_generator)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf_vars = [v.value for v in self.params]  # the tf.Variables under Keras' wrappers
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(tf_vars)
                real = self._logits(tf_vars, z)  # one forward pass serves the VAE's TC and this step
                perm = self._logits(tf_vars, z_perm)
                loss = losses.discriminator_loss(real, perm)
            self.adam.apply(tape.gradient(loss, tf_vars), self.params)
        elif backend == "jax":
            import jax

            real = self.logits(z)
            z_fixed = ops.stop_gradient(z)

            def loss_fn(values):
                return losses.discriminator_loss(self._logits(values, z_fixed), self._logits(values, z_perm))

            values = [v.value for v in self.params]
            loss, grads = jax.value_and_grad(loss_fn)(values)
            new_values, new_state = self.adam.stateless_apply([v.value for v in self.adam_state], grads, values)
            for v, new in zip(self.params + self.adam_state, list(new_values) + list(new_state)):
                v.assign(new)
            perm = self.logits(z_perm)  # (after the step: only for the logged accuracy)
        else:
            raise NotImplementedError(
                f"FactorVAE's discriminator step is written for tensorflow and jax, not {backend}"
            )
        return real, loss, losses.discriminator_accuracy(ops.stop_gradient(real), ops.stop_gradient(perm))

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "units": self.units,
            "hidden_layers": self.hidden_layers,
            "lr": self.lr,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="vae")
class VAE(keras.Model):
    """Encoder + sampling + decoder, with the loss of `vae.model.losses` (the method's, from `vae.model.methods`) in
    `compute_loss`. AnnealedVAE keeps a step counter; FactorVAE trains its discriminator in `compute_loss`."""

    def __init__(
        self,
        arch="burgess",
        image_size=64,
        latent_dim=3,
        variance="constant",
        beta=0.001,
        gamma=0.0001,
        entanglement="seed",
        seed=None,
        method="beta-vae",
        method_params=None,
        reduction="study",
        dataset_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if arch not in NETWORKS:
            raise ValueError(f"unknown arch {arch!r}; use one of {', '.join(NETWORKS)}")
        self.arch, self.image_size, self.latent_dim = arch, int(image_size), int(latent_dim)
        self.variance, self.entanglement_mode, self.seed = variance, entanglement, seed
        self.beta, self.gamma = float(beta), float(gamma)
        self.method, self.reduction = method, reduction
        self.method_params = methods.resolve_params(method, method_params)
        self.dataset_size = None if dataset_size is None else int(dataset_size)
        spec = methods.get(method)
        build_encoder, build_decoder = NETWORKS[arch]
        self.encoder = build_encoder(self.image_size, self.latent_dim, variance)
        self.decoder = build_decoder(self.image_size, self.latent_dim)
        self.sampling = Sampling(seed=seed, name="sampling")
        self.train_steps = None
        if spec.needs_step:  # training steps taken, for AnnealedVAE's capacity (saved, so a resume continues it)
            self.train_steps = self.add_weight(
                shape=(), initializer="zeros", trainable=False, dtype="float32", name="train_steps"
            )
        self.discriminator = None
        if spec.discriminator:
            p = self.method_params
            # float32 even under mixed precision: on the 2-core CPU (AVX-512 BF16) its 1000-wide matmuls ran
            # faster in float32 than in bfloat16 (FactorVAE step 1.50x a beta-VAE step against 1.84x; bench/RESULTS.md)
            self.discriminator = Discriminator(
                self.latent_dim,
                p["disc_units"],
                p["disc_layers"],
                p["disc_lr"],
                seed=seed,
                name="discriminator",
                dtype="float32",
            )
        # The study's terms (vae.base.registry) and the method's own (vae.model.methods; beta_kl only where beta is used).
        names = [n for n in logged_terms() if n not in ("loss", "beta_kl")] + list(spec.terms)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
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
        out = {"recon": ops.sigmoid(logits), "logits": logits, "mu": mu, "z": z}
        if logvar is not None:
            out["logvar"] = logvar
        return out

    # -- loss ---------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        z = y_pred.get("z", y_pred["mu"])
        step = 0.0
        if self.train_steps is not None:
            step = ops.convert_to_tensor(self.train_steps)  # read now: the step of this batch, before the update
        disc_logits = None
        if self.discriminator is not None:
            if training:  # one step of the discriminator's own optimizer on this batch's codes
                disc_logits, disc_loss, disc_accuracy = self.discriminator.logits_and_train(z)
            else:
                disc_logits = self.discriminator.logits(z)
                perm = self.discriminator.logits(
                    losses.permute_dims(ops.stop_gradient(z), seed=self.discriminator.seed_generator)
                )
                disc_loss = losses.discriminator_loss(ops.stop_gradient(disc_logits), perm)
                disc_accuracy = losses.discriminator_accuracy(ops.stop_gradient(disc_logits), perm)
        terms = losses.vae_loss_terms(
            self.normalise(x),
            y_pred["logits"],
            y_pred["mu"],
            y_pred.get("logvar"),
            beta=self.beta,
            gamma=self.gamma,
            mode=self.entanglement_mode,
            sample_weight=sample_weight,
            method=self.method,
            params=self.method_params,
            reduction=self.reduction,
            z=z,
            step=step,
            disc_logits=disc_logits,
            dataset_size=self.dataset_size,
        )
        if self.train_steps is not None and training:
            self.train_steps.assign(step + 1.0)
        if self.discriminator is not None:
            terms["disc_loss"], terms["disc_accuracy"] = disc_loss, disc_accuracy
        # Weighted by batch size, as Keras weights its own loss tracker, so the logged
        # terms add up to the logged loss also when the last batch is smaller.
        n = ops.cast(ops.shape(y_pred["mu"])[0], "float32")
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name], sample_weight=n)
        return terms["loss"]

    def get_config(self):
        return {
            **super().get_config(),
            "arch": self.arch,
            "image_size": self.image_size,
            "latent_dim": self.latent_dim,
            "variance": self.variance,
            "beta": self.beta,
            "gamma": self.gamma,
            "entanglement": self.entanglement_mode,
            "seed": self.seed,
            "method": self.method,
            "method_params": dict(self.method_params),
            "reduction": self.reduction,
            "dataset_size": self.dataset_size,
        }

    def build(self, input_shape=None):
        self.built = True


def build_vae(
    arch="burgess",
    image_size=64,
    latent_dim=3,
    variance="constant",
    beta=0.001,
    gamma=0.0001,
    entanglement="seed",
    seed=None,
    method="beta-vae",
    method_params=None,
    reduction="study",
    dataset_size=None,
) -> VAE:
    """Build a VAE; call `model.compile(optimizer)` and `fit(uint8 images)` to train."""
    multiple = ARCHITECTURES[arch].size_multiple if arch in ARCHITECTURES else 1
    if image_size % multiple:
        raise ValueError(f"{arch} needs image_size a multiple of {multiple}, got {image_size}")
    model = VAE(
        arch=arch,
        image_size=image_size,
        latent_dim=latent_dim,
        variance=variance,
        beta=beta,
        gamma=gamma,
        entanglement=entanglement,
        seed=seed,
        method=method,
        method_params=method_params,
        reduction=reduction,
        dataset_size=dataset_size,
    )
    model(ops.zeros((1, image_size, image_size, 1), dtype="float32"))
    return model


def count_params(model: VAE) -> dict:
    """Trainable / non-trainable / total parameter counts of encoder + decoder."""
    weights = model.encoder.weights + model.decoder.weights
    trainable = model.encoder.trainable_weights + model.decoder.trainable_weights
    n = lambda ws: int(sum(int(ops.size(w)) for w in ws))  # noqa: E731
    total = n(weights)
    return {"total": total, "trainable": n(trainable), "non_trainable": total - n(trainable)}
