"""The loss terms, as pure functions of tensors (keras.ops only).

L = recon + beta * KL + gamma * L_entg   (FACTS.md §3; study part 3)

- recon: per-pixel binary cross-entropy, averaged over the pixels of each
  image. The study flattened the whole batch into one mean, which for
  equal-sized images is the same number as the mean of the per-image means.
  We compute it from the decoder's logits (softplus(l) - x*l), which equals
  BCE(x, sigmoid(l)) without the 1e-7 clipping Keras applied in the study.
- KL, constant variance: the study's form, mean over latent dimensions of
  (mu^2 + sigma^2 - log sigma^2 - 1) with sigma = 0.1 (no 1/2: as in NB-EL).
- KL, learned variance: the textbook closed form
  0.5 * (mu^2 + exp(logvar) - logvar - 1), mean over latent dimensions.
- entanglement, mode `seed`: the study's, mean over pairs i<j of the batch
  mean of |mu_i mu_j|. `covariance`: mean over pairs i<j of |Cov(mu)_ij| of the
  centred batch covariance. `dip-i`: DIP-VAE-I (Kumar et al. 2018, eq. 6),
  sum_{i!=j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2 with lambda_d = 10.

Every function takes a batch and returns per-sample values (shape (B,)) or a
scalar, so tests can compare each against numpy.
"""

from __future__ import annotations

import math

from keras import ops

from .registry import ENTANGLEMENT_TERMS

SIGMA_CONSTANT = 0.1
DIP_LAMBDA_D = 10.0


def reconstruction_bce(x, logits):
    """Per-image mean binary cross-entropy; x in [0, 1], logits of the decoder. Shape (B,)."""
    x = ops.cast(x, "float32")
    logits = ops.cast(logits, "float32")
    per_pixel = ops.softplus(logits) - x * logits
    return ops.mean(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=1)


def kl_constant(mu, sigma: float = SIGMA_CONSTANT):
    """The study's KL with fixed sigma, mean over latent dims. Shape (B,)."""
    mu = ops.cast(mu, "float32")
    const = sigma**2 - math.log(sigma**2) - 1.0
    return ops.mean(ops.square(mu), axis=1) + const


def kl_learned(mu, logvar):
    """Closed-form KL(N(mu, exp(logvar)) || N(0, I)), mean over latent dims. Shape (B,)."""
    mu = ops.cast(mu, "float32")
    logvar = ops.cast(logvar, "float32")
    return 0.5 * ops.mean(ops.square(mu) + ops.exp(logvar) - logvar - 1.0, axis=1)


def _pair_mask(d: int):
    """(d, d) float mask of the pairs i < j."""
    return ops.triu(ops.ones((d, d), dtype="float32"), k=1)


def _covariance(mu):
    mu = mu - ops.mean(mu, axis=0, keepdims=True)
    n = ops.cast(ops.shape(mu)[0], "float32")
    return ops.matmul(ops.transpose(mu), mu) / ops.maximum(n - 1.0, 1.0)


def entanglement(mu, mode: str = "seed"):
    """The entanglement penalty of a batch of latent means (B, d); a scalar.

    Works on any array (numpy included): `float(entanglement(np_mu, "seed"))`.
    """
    mu = ops.cast(ops.convert_to_tensor(mu), "float32")
    d = mu.shape[-1]
    if mode == "seed":
        mask = _pair_mask(d)
        pair_means = ops.mean(ops.abs(mu[:, :, None] * mu[:, None, :]), axis=0)
        return ops.sum(pair_means * mask) / (d * (d - 1) / 2)
    if mode == "covariance":
        mask = _pair_mask(d)
        return ops.sum(ops.abs(_covariance(mu)) * mask) / (d * (d - 1) / 2)
    if mode == "dip-i":
        cov = _covariance(mu)
        diag = ops.diagonal(cov)
        off = cov * (1.0 - ops.eye(d, dtype="float32"))
        return ops.sum(ops.square(off)) + DIP_LAMBDA_D * ops.sum(ops.square(diag - 1.0))
    raise ValueError(f"unknown entanglement mode {mode!r}; use one of {', '.join(ENTANGLEMENT_TERMS)}")


def vae_loss_terms(x, logits, mu, logvar=None, *, beta, gamma, mode="seed", sample_weight=None):
    """All terms of one batch. Returns a dict of scalars; `loss` is what is minimised.

    With sample weights w, the per-image part (recon + beta*KL) is averaged with
    weights w (a real per-sample weighting; the study's version only rescaled the
    batch loss by 2*mean(w), see FACTS.md §1).
    """
    recon = reconstruction_bce(x, logits)
    kl = kl_constant(mu) if logvar is None else kl_learned(mu, logvar)
    per_image = recon + beta * kl
    if sample_weight is not None:
        w = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        data_term = ops.sum(per_image * w) / ops.maximum(ops.sum(w), 1e-8)
    else:
        data_term = ops.mean(per_image)
    ents = {m: entanglement(mu, m) for m in ENTANGLEMENT_TERMS}
    ent = ents[mode]
    return {
        "loss": data_term + gamma * ent,
        "recon": ops.mean(recon),
        "kl": ops.mean(kl),
        "beta_kl": beta * ops.mean(kl),
        "entanglement": ent,
        "gamma_entanglement": gamma * ent,
        **{term.log_key: ents[m] for m, term in ENTANGLEMENT_TERMS.items()},
    }
