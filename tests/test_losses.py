"""The loss terms against an independent numpy computation."""

import numpy as np
import pytest

from vae.model import losses


def np_bce(x, p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1).mean(axis=1)


def np_seed_entanglement(mu):
    # The study's double loop over latent pairs (docs/study.md, "The loss and training").
    d = mu.shape[1]
    total = 0.0
    for i in range(d):
        for j in range(i + 1, d):
            total += np.mean(np.abs(mu[:, i] * mu[:, j]))
    return total * 2 / (d * (d - 1))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 1)).astype(np.float32)
    logits = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
    mu = rng.normal(size=(6, 4)).astype(np.float32)
    logvar = rng.normal(scale=0.5, size=(6, 4)).astype(np.float32)
    return x, logits, mu, logvar


def test_reconstruction_is_per_pixel_binary_cross_entropy(batch):
    x, logits, _, _ = batch
    got = np.asarray(losses.reconstruction_bce(x, logits))
    np.testing.assert_allclose(got, np_bce(x, 1 / (1 + np.exp(-logits))), rtol=1e-5)


def test_study_constant_variance_kl(batch):
    _, _, mu, _ = batch
    s2 = 0.1**2
    want = np.mean(mu**2 + s2 - np.log(s2) - 1, axis=1)
    np.testing.assert_allclose(np.asarray(losses.kl_constant(mu)), want, rtol=1e-5)


def test_learned_variance_kl_uses_the_study_convention_twice_the_closed_form_gaussian_kl(batch):
    _, _, mu, logvar = batch
    want = np.mean(mu**2 + np.exp(logvar) - logvar - 1, axis=1)  # no 1/2, as the study's constant-sigma KL
    np.testing.assert_allclose(np.asarray(losses.kl_learned(mu, logvar)), want, rtol=1e-5)


def test_seed_entanglement_equals_study_double_loop(batch):
    _, _, mu, _ = batch
    assert float(losses.entanglement(mu, "seed")) == pytest.approx(np_seed_entanglement(mu), rel=1e-5)


def test_covariance_entanglement_uses_centred_covariance(batch):
    _, _, mu, _ = batch
    cov = np.cov(mu, rowvar=False)
    iu = np.triu_indices(4, 1)
    assert float(losses.entanglement(mu, "covariance")) == pytest.approx(np.abs(cov[iu]).mean(), rel=1e-5)
    # Shifting every code by a constant changes the study's term but not the covariance term.
    assert float(losses.entanglement(mu + 3.0, "covariance")) == pytest.approx(np.abs(cov[iu]).mean(), rel=1e-4)
    assert float(losses.entanglement(mu + 3.0, "seed")) > 2 * float(losses.entanglement(mu, "seed"))


def test_dip_i_penalises_off_diagonal_and_unit_diagonal(batch):
    _, _, mu, _ = batch
    cov = np.cov(mu, rowvar=False)
    off = cov - np.diag(np.diag(cov))
    want = (off**2).sum() + 10 * ((np.diag(cov) - 1) ** 2).sum()
    assert float(losses.entanglement(mu, "dip-i")) == pytest.approx(want, rel=1e-5)


def test_entanglement_is_zero_for_axis_aligned_codes():
    mu = np.zeros((10, 3), np.float32)
    mu[:, 0] = np.linspace(-1, 1, 10)
    assert float(losses.entanglement(mu, "seed")) == 0.0
    assert float(losses.entanglement(mu, "covariance")) == pytest.approx(0.0, abs=1e-7)


def test_unknown_entanglement_mode_is_refused():
    with pytest.raises(ValueError, match="unknown entanglement mode"):
        losses.entanglement(np.zeros((4, 3)), "nope")


def test_total_loss_combines_terms_with_beta_gamma_and_sample_weights(batch):
    x, logits, mu, _ = batch
    w = np.array([1, 0, 0.5, 1, 0, 1], np.float32)
    t = losses.vae_loss_terms(x, logits, mu, beta=0.01, gamma=0.5, mode="seed", sample_weight=w)
    recon = np_bce(x, 1 / (1 + np.exp(-logits)))
    kl = np.mean(mu**2 + 0.01 - np.log(0.01) - 1, axis=1)
    want = np.sum((recon + 0.01 * kl) * w) / w.sum() + 0.5 * np_seed_entanglement(mu)
    assert float(t["loss"]) == pytest.approx(want, rel=1e-5)
    assert float(t["gamma_entanglement"]) == pytest.approx(0.5 * np_seed_entanglement(mu), rel=1e-5)
    # The logged terms are the same weighted means, so they add up to the loss.
    assert float(t["beta_kl"]) == pytest.approx(0.01 * np.sum(kl * w) / w.sum(), rel=1e-5)
    assert float(t["recon"]) == pytest.approx(np.sum(recon * w) / w.sum(), rel=1e-5)
