"""The loss terms, as pure functions of tensors (keras.ops only).

L = recon + R(KL, ...) + gamma * L_entg   (the study's part 3: docs/study.md, "The loss and training"), where R is the
method's regulariser (vae.model.methods: beta * KL for the beta-VAE).

- recon: per-pixel binary cross-entropy, averaged over the pixels of each
  image. The study flattened the whole batch into one mean, which for
  equal-sized images is the same number as the mean of the per-image means.
  We compute it from the decoder's logits (softplus(l) - x*l), which equals
  BCE(x, sigmoid(l)) without the 1e-7 clipping Keras applied in the study.
- KL, constant variance: the study's form, mean over latent dimensions of
  (mu^2 + sigma^2 - log sigma^2 - 1) with sigma = 0.1 (no 1/2: as in the study's part-3 notebook).
- KL, learned variance: the same convention as the study's constant-variance KL,
  mean over latent dimensions of (mu^2 + exp(logvar) - logvar - 1), i.e. twice the
  textbook KL per latent (one convention for both variances; docs/methods.md, "Loss conventions").
- Reductions: `study` (above: per-pixel mean reconstruction, KL mean over latents
  without the 1/2) and `papers` (disentanglement_lib: sum over pixels, textbook KL
  summed over latents), so that published hyperparameters mean what they say.
  A study-reduced loss times the pixel count P is a papers-reduced loss with
  beta_papers = 2 * P * beta / d (`equivalent_paper_beta`).
- entanglement, mode `seed`: the study's, mean over pairs i<j of the batch
  mean of |mu_i mu_j|. `covariance`: mean over pairs i<j of |Cov(mu)_ij| of the
  centred batch covariance. `dip-i`: DIP-VAE-I (Kumar et al. 2018, eq. 6),
  sum_{i!=j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2 with lambda_d = 10.

Regularisers of the disentanglement methods (formulas as in disentanglement_lib's
methods/unsupervised/vae.py; our own code): `capacity` (AnnealedVAE, Burgess et al.
2018, eq. 8), `total_correlation` (beta-TCVAE, Chen et al. 2018: minibatch-weighted or
minibatch-stratified sampling), `dip_regularizer` (DIP-VAE, Kumar et al. 2018, eqs. 6-7),
and the FactorVAE discriminator (Kim & Mnih 2018, eq. 2 and appendix A).

Every function takes a batch and returns per-sample values (shape (B,)) or a
scalar, so tests can compare each against numpy.
"""

from __future__ import annotations

import math
import sys

import keras
from keras import ops

from vae.base.registry import ENTANGLEMENT_TERMS
from vae.model import methods

SIGMA_CONSTANT = 0.1
DIP_LAMBDA_D = 10.0
REDUCTIONS = tuple(methods.REDUCTIONS)
LOG_2PI = math.log(2.0 * math.pi)


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
    """The study's convention for KL(N(mu, exp(logvar)) || N(0, I)): mean over latent dims of
    (mu^2 + exp(logvar) - logvar - 1), twice the textbook KL per latent. Shape (B,)."""
    return 2.0 * ops.mean(kl_per_latent(mu, logvar), axis=1)


def kl_per_latent(mu, logvar=None):
    """The textbook KL of each latent, 0.5 * (mu^2 + s^2 - log s^2 - 1), with s^2 = exp(logvar) or the
    study's constant 0.1^2. Shape (B, d)."""
    mu = ops.cast(mu, "float32")
    if logvar is None:
        logvar = ops.full(ops.shape(mu), 2.0 * math.log(SIGMA_CONSTANT), dtype="float32")
    logvar = ops.cast(logvar, "float32")
    return 0.5 * (ops.square(mu) + ops.exp(logvar) - logvar - 1.0)


def reconstruction(x, logits, reduction: str = "study"):
    """Per-image binary cross-entropy: mean over pixels (`study`) or sum (`papers`). Shape (B,)."""
    per_image_mean = reconstruction_bce(x, logits)
    if reduction == "study":
        return per_image_mean
    return per_image_mean * float(math.prod(logits.shape[1:]))


def kl(mu, logvar=None, reduction: str = "study"):
    """Per-image KL: the study's (mean over latents, no 1/2) or the papers' (textbook, sum). Shape (B,)."""
    per_latent = kl_per_latent(mu, logvar)
    if reduction == "study":
        return 2.0 * ops.mean(per_latent, axis=1)
    return ops.sum(per_latent, axis=1)


equivalent_paper_beta = methods.equivalent_paper_beta


# ---------------------------------------------------------------- method regularisers


def capacity(step, c_max: float, steps: int):
    """AnnealedVAE's capacity C: rises linearly from 0 to c_max over `steps` steps, then held."""
    step = ops.cast(step, "float32")
    if steps <= 0:
        return ops.cast(c_max, "float32") + 0.0 * step
    return ops.minimum(float(c_max), float(c_max) * step / float(steps))


def gaussian_log_density(samples, mean, log_var):
    """log N(samples; mean, exp(log_var)), elementwise."""
    return -0.5 * (ops.square(samples - mean) * ops.exp(-log_var) + log_var + LOG_2PI)


def _mss_log_weights(batch_size, dataset_size: int):
    """log importance weights of minibatch stratified sampling (Chen et al. 2018, appendix C.2),
    (B, B) indexed [j, i]: 1/N on the diagonal, (N - M) / (N M) at (j, j+1) and at (B-2, 0), else 1/M,
    with M = B - 1 and N the dataset size (as the authors' code). `batch_size` may be a tensor."""
    idx = ops.arange(batch_size)
    j, i = idx[:, None], idx[None, :]
    n = float(dataset_size)
    m = ops.cast(batch_size, "float32") - 1.0
    strat = (n - m) / (n * m)
    diagonal = ops.equal(i, j)
    stratified = ops.logical_or(ops.equal(i, j + 1), ops.logical_and(ops.equal(j, batch_size - 2), ops.equal(i, 0)))
    w = ops.where(diagonal, 1.0 / n, ops.where(stratified, strat, 1.0 / m))
    return ops.log(ops.cast(w, "float32"))


def total_correlation(z, z_mean, z_log_var, estimator: str = "mws", dataset_size: int | None = None):
    """Total correlation of q(z) estimated on a batch (beta-TCVAE).

    `mws` (minibatch-weighted sampling): disentanglement_lib's `total_correlation`,
    mean_j [ log sum_i q(z_j|x_i) - sum_l log sum_i q(z_jl|x_i) ], plus the constant
    (d - 1) log(B N) when `dataset_size` N is given (the trainer gives it, so the logged
    "tc" is Chen et al.'s estimate of TC itself, not offset by about -26 nats; the constant does
    not change the gradients). Without `dataset_size` the constant is left out, as the library does.
    `mss` (minibatch stratified sampling) needs `dataset_size` and includes its weights, so it is
    an estimate of TC itself.
    """
    z, z_mean, z_log_var = (ops.cast(ops.convert_to_tensor(a), "float32") for a in (z, z_mean, z_log_var))
    log_q = gaussian_log_density(z[:, None, :], z_mean[None, :, :], z_log_var[None, :, :])  # [j, i, l]
    if estimator == "mws":
        log_qz_product = ops.sum(ops.logsumexp(log_q, axis=1), axis=1)
        log_qz = ops.logsumexp(ops.sum(log_q, axis=2), axis=1)
        if dataset_size:
            b = ops.cast(ops.shape(z)[0], "float32")
            d = float(z.shape[-1])
            log_qz = log_qz + (d - 1.0) * ops.log(b * float(dataset_size))
    elif estimator == "mss":
        if not dataset_size:
            raise ValueError("the mss estimator needs dataset_size")
        log_w = _mss_log_weights(ops.shape(z)[0], int(dataset_size))
        log_qz_product = ops.sum(ops.logsumexp(log_q + log_w[:, :, None], axis=1), axis=1)
        log_qz = ops.logsumexp(ops.sum(log_q, axis=2) + log_w, axis=1)
    else:
        raise ValueError(f"unknown total correlation estimator {estimator!r}; use mws or mss")
    return ops.mean(log_qz - log_qz_product)


def covariance_of_means(z_mean):
    """Cov(mu) = E[mu mu^T] - E[mu] E[mu]^T over the batch (the biased estimate, as disentanglement_lib)."""
    z_mean = ops.cast(ops.convert_to_tensor(z_mean), "float32")
    m = ops.mean(z_mean, axis=0)
    return ops.mean(z_mean[:, :, None] * z_mean[:, None, :], axis=0) - m[:, None] * m[None, :]


def dip_parts(z_mean, z_log_var, kind: str = "i"):
    """(sum of squared off-diagonal entries, sum of squared (diagonal - 1)) of DIP-VAE's covariance:
    Cov(mu) for kind "i", Cov(mu) + E[diag exp(logvar)] for kind "ii"."""
    cov = covariance_of_means(z_mean)
    if kind == "ii":
        cov = cov + ops.diag(ops.mean(ops.exp(ops.cast(ops.convert_to_tensor(z_log_var), "float32")), axis=0))
    elif kind != "i":
        raise ValueError(f"unknown DIP-VAE kind {kind!r}; use 'i' or 'ii'")
    diag = ops.diagonal(cov)
    off = cov - ops.diag(diag)
    return ops.sum(ops.square(off)), ops.sum(ops.square(diag - 1.0))


def dip_regularizer(z_mean, z_log_var, lambda_od: float, lambda_d: float, kind: str = "i"):
    """DIP-VAE's lambda_od * sum_{i!=j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2 (Kumar et al. 2018)."""
    off, diag = dip_parts(z_mean, z_log_var, kind)
    return lambda_od * off + lambda_d * diag


def permute_dims(z, seed=None):
    """FactorVAE's permuted codes: each latent dimension shuffled across the batch independently,
    so every column keeps its values and the dependence between columns is broken."""
    z = ops.convert_to_tensor(z)
    order = ops.argsort(keras.random.uniform(ops.shape(z), seed=seed), axis=0)
    return ops.take_along_axis(z, order, axis=0)


def discriminator_logits(weights, z, alpha: float = 0.2):
    """FactorVAE's discriminator, an MLP with leaky ReLUs and 2 logits ("from q(z)", "permuted");
    `weights` is the list [W1, b1, ..., Wk, bk]."""
    h = ops.cast(z, keras.backend.standardize_dtype(weights[0].dtype))
    n = len(weights) // 2
    for k in range(n):
        h = ops.matmul(h, weights[2 * k]) + weights[2 * k + 1]
        if k < n - 1:
            h = ops.leaky_relu(h, alpha)
    return h


def factor_tc(logits_real):
    """FactorVAE's total correlation estimate: mean of the discriminator's logit difference."""
    return ops.mean(logits_real[:, 0] - logits_real[:, 1])


def discriminator_loss(logits_real, logits_permuted):
    """Cross-entropy of the discriminator: codes of q(z) are class 0, permuted codes class 1."""
    return -0.5 * (
        ops.mean(ops.log_softmax(logits_real, axis=1)[:, 0]) + ops.mean(ops.log_softmax(logits_permuted, axis=1)[:, 1])
    )


def discriminator_accuracy(logits_real, logits_permuted):
    right_real = ops.cast(logits_real[:, 0] > logits_real[:, 1], "float32")
    right_perm = ops.cast(logits_permuted[:, 1] >= logits_permuted[:, 0], "float32")
    return 0.5 * (ops.mean(right_real) + ops.mean(right_perm))


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


def vae_loss_terms(
    x,
    logits,
    mu,
    logvar=None,
    *,
    beta,
    gamma,
    mode="seed",
    sample_weight=None,
    method="beta-vae",
    params=None,
    reduction="study",
    z=None,
    step=0,
    disc_logits=None,
    dataset_size=None,
):
    """All terms of one batch. Returns a dict of scalars; `loss` is what is minimised:
    recon + R + gamma * L_entg, with R the method's regulariser (vae.model.methods).

    With sample weights w, the per-image terms (recon, KL) are averaged with weights w (a real
    per-sample weighting; the study's version only rescaled the batch loss by 2*mean(w), see
    docs/study.md, "The loss and training"), so the logged terms add up to the loss.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
    m = methods.get(method)
    p = methods.resolve_params(method, params)
    recon = reconstruction(x, logits, reduction)
    kl_image = kl(mu, logvar, reduction)
    if sample_weight is not None:
        w = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        total = ops.maximum(ops.sum(w), 1e-8)
        recon_bar, kl_bar = ops.sum(recon * w) / total, ops.sum(kl_image * w) / total
    else:
        recon_bar, kl_bar = ops.mean(recon), ops.mean(kl_image)
    mu = ops.cast(mu, "float32")
    full_logvar = (
        ops.full(ops.shape(mu), 2.0 * math.log(SIGMA_CONSTANT), dtype="float32")
        if logvar is None
        else ops.cast(logvar, "float32")
    )
    batch = methods.Batch(
        kl=kl_bar,
        mu=mu,
        logvar=full_logvar,
        z=mu if z is None else ops.cast(z, "float32"),
        step=step,
        disc_logits=disc_logits,
        dataset_size=dataset_size,
    )
    reg = m.regularizer(batch, p, float(beta), sys.modules[__name__])  # methods never imports this module
    ents = {e: entanglement(mu, e) for e in ENTANGLEMENT_TERMS}
    ent = ents[mode]
    return {
        "loss": recon_bar + reg.pop("regularizer") + gamma * ent,
        "recon": recon_bar,
        "kl": kl_bar,
        **reg,
        "entanglement": ent,
        "gamma_entanglement": gamma * ent,
        **{term.log_key: ents[e] for e, term in ENTANGLEMENT_TERMS.items()},
    }
