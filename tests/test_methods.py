"""The disentanglement methods' regularisers against independent numpy computations, and the registry."""

import math

import numpy as np
import pytest

from vae.model import losses, methods


def np_log_normal(x, mean, logvar):
    return -0.5 * ((x - mean) ** 2 / np.exp(logvar) + logvar + math.log(2 * math.pi))


def np_logsumexp(a):
    m = max(a)
    return m + math.log(sum(math.exp(v - m) for v in a))


def np_total_correlation(z, mu, logvar, log_weight=None):
    """The batch estimate of TC written as the double loop of Chen et al. 2018 (eq. 8): for each
    sample j, log q(z_j) = log sum_i w_ji q(z_j|x_i) and log prod_l q(z_jl) = sum_l log sum_i w_ji q(z_jl|x_i).
    With log_weight None the weights are 1 (disentanglement_lib's MWS without its constant)."""
    b, d = z.shape
    lw = np.zeros((b, b)) if log_weight is None else log_weight
    total = 0.0
    for j in range(b):
        joint = [sum(np_log_normal(z[j, k], mu[i, k], logvar[i, k]) for k in range(d)) + lw[j, i] for i in range(b)]
        marginals = sum(
            np_logsumexp([np_log_normal(z[j, k], mu[i, k], logvar[i, k]) + lw[j, i] for i in range(b)])
            for k in range(d)
        )
        total += np_logsumexp(joint) - marginals
    return total / b


def np_mss_log_weights(b, n):
    """Minibatch stratified sampling weights, written out cell by cell (Chen et al.'s code)."""
    m = b - 1
    w = np.empty((b, b))
    for j in range(b):
        for i in range(b):
            if i == j:
                w[j, i] = 1 / n
            elif i == j + 1 or (j == b - 2 and i == 0):
                w[j, i] = (n - m) / (n * m)
            else:
                w[j, i] = 1 / m
    return np.log(w)


@pytest.fixture
def codes():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(7, 3)).astype(np.float32)
    logvar = rng.normal(scale=0.4, size=(7, 3)).astype(np.float32) - 1.0
    z = (mu + np.exp(0.5 * logvar) * rng.normal(size=mu.shape)).astype(np.float32)
    return z, mu, logvar


def test_total_correlation_mws_equals_the_double_loop(codes):
    z, mu, logvar = codes
    got = float(losses.total_correlation(z, mu, logvar))
    assert got == pytest.approx(
        np_total_correlation(z.astype(float), mu.astype(float), logvar.astype(float)), rel=1e-4, abs=1e-4
    )


def test_total_correlation_mss_equals_the_double_loop_with_stratified_weights(codes):
    z, mu, logvar = codes
    got = float(losses.total_correlation(z, mu, logvar, estimator="mss", dataset_size=1000))
    want = np_total_correlation(z.astype(float), mu.astype(float), logvar.astype(float), np_mss_log_weights(7, 1000))
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_total_correlation_is_larger_for_correlated_codes():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(256, 1))
    independent = rng.normal(size=(256, 3))
    correlated = np.hstack([a, a + 0.05 * rng.normal(size=(256, 1)), rng.normal(size=(256, 1))])
    logvar = np.full((256, 3), np.log(0.25))  # z = mu + 0.5 eps: the true TC is 0 and 0.51 nats
    tc = lambda mu: float(losses.total_correlation(mu, mu, logvar, "mss", dataset_size=256))  # noqa: E731
    assert tc(independent) < 0.3
    assert tc(correlated) > tc(independent) + 0.5


def test_total_correlation_refuses_unknown_estimator_and_mss_without_dataset_size(codes):
    with pytest.raises(ValueError, match="unknown total correlation estimator"):
        losses.total_correlation(*codes, estimator="nope")
    with pytest.raises(ValueError, match="dataset_size"):
        losses.total_correlation(*codes, estimator="mss")


@pytest.mark.parametrize("kind", ["i", "ii"])
def test_dip_regularizer_matches_numpy_covariance(codes, kind):
    _, mu, logvar = codes
    cov = np.cov(mu.astype(float), rowvar=False, bias=True)
    if kind == "ii":
        cov = cov + np.diag(np.exp(logvar.astype(float)).mean(axis=0))
    off = cov - np.diag(np.diag(cov))
    want = 2.0 * (off**2).sum() + 2.0 * 5.0 * ((np.diag(cov) - 1) ** 2).sum()
    assert float(losses.dip_regularizer(mu, logvar, 2.0, 10.0, kind)) == pytest.approx(want, rel=1e-4)


def test_dip_regularizer_is_zero_for_whitened_uncorrelated_codes():
    mu = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float32)  # Cov = I exactly (biased estimate)
    assert float(losses.dip_regularizer(mu, np.zeros_like(mu), 10.0, 100.0, "i")) == pytest.approx(0.0, abs=1e-6)
    # DIP-II adds the encoder variance: exp(0) = 1 on the diagonal, so (2 - 1)^2 per latent.
    assert float(losses.dip_regularizer(mu, np.zeros_like(mu), 10.0, 100.0, "ii")) == pytest.approx(200.0, rel=1e-5)
    with pytest.raises(ValueError, match="DIP-VAE kind"):
        losses.dip_regularizer(mu, mu, 1.0, 1.0, "iii")


def test_capacity_rises_linearly_then_holds():
    got = [float(losses.capacity(s, 25.0, 1000)) for s in (0, 250, 500, 1000, 5000)]
    assert got == pytest.approx([0.0, 6.25, 12.5, 25.0, 25.0])
    assert float(losses.capacity(7, 5.0, 0)) == 5.0  # no ramp: C_max from the start


def test_factor_vae_permutation_keeps_each_column_and_breaks_the_rows():
    z = np.arange(200 * 3, dtype=np.float32).reshape(200, 3)
    p = np.asarray(losses.permute_dims(z, seed=3))
    for k in range(3):
        np.testing.assert_array_equal(np.sort(p[:, k]), z[:, k])  # the multiset of each dimension is kept
    # Rows are mixed: hardly any row keeps all three of its values together.
    rows = {tuple(r) for r in z}
    assert sum(tuple(r) in rows for r in p) < 10
    # Columns are permuted independently of each other.
    assert not np.array_equal(np.argsort(p[:, 0]), np.argsort(p[:, 1]))


def test_discriminator_terms_match_numpy():
    rng = np.random.default_rng(2)
    real, perm = rng.normal(size=(9, 2)).astype(np.float32), rng.normal(size=(9, 2)).astype(np.float32)

    def log_softmax(a):
        return a - np.log(np.exp(a).sum(axis=1, keepdims=True))

    want_loss = -0.5 * (log_softmax(real)[:, 0].mean() + log_softmax(perm)[:, 1].mean())
    assert float(losses.discriminator_loss(real, perm)) == pytest.approx(want_loss, rel=1e-5)
    assert float(losses.factor_tc(real)) == pytest.approx((real[:, 0] - real[:, 1]).mean(), rel=1e-5)
    want_acc = 0.5 * ((real[:, 0] > real[:, 1]).mean() + (perm[:, 1] >= perm[:, 0]).mean())
    assert float(losses.discriminator_accuracy(real, perm)) == pytest.approx(want_acc)
    w = [
        rng.normal(size=(2, 5)).astype(np.float32),
        np.zeros(5, np.float32),
        rng.normal(size=(5, 2)).astype(np.float32),
        np.ones(2, np.float32),
    ]
    h = real @ w[0]
    h = np.where(h > 0, h, 0.2 * h)
    np.testing.assert_allclose(np.asarray(losses.discriminator_logits(w, real)), h @ w[2] + 1, rtol=1e-5)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 1)).astype(np.float32)
    logits = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
    mu = rng.normal(size=(6, 3)).astype(np.float32)
    logvar = rng.normal(scale=0.5, size=(6, 3)).astype(np.float32)
    return x, logits, mu, logvar


def np_bce_sum(x, logits):
    p = 1 / (1 + np.exp(-logits))
    return -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1).sum(axis=1)


def test_papers_reduction_sums_pixels_and_uses_the_textbook_kl(batch):
    x, logits, mu, logvar = batch
    t = losses.vae_loss_terms(x, logits, mu, logvar, beta=4.0, gamma=0.0, reduction="papers")
    kl = 0.5 * (mu**2 + np.exp(logvar) - logvar - 1).sum(axis=1)
    assert float(t["recon"]) == pytest.approx(np_bce_sum(x, logits).mean(), rel=1e-5)
    assert float(t["kl"]) == pytest.approx(kl.mean(), rel=1e-5)
    assert float(t["loss"]) == pytest.approx(np_bce_sum(x, logits).mean() + 4.0 * kl.mean(), rel=1e-5)


@pytest.mark.parametrize("variance", ["learned", "constant"])
def test_equivalent_paper_beta_gives_the_same_loss_times_the_pixel_count(batch, variance):
    x, logits, mu, logvar = batch
    logvar = logvar if variance == "learned" else None
    beta = 0.003
    study = losses.vae_loss_terms(x, logits, mu, logvar, beta=beta, gamma=0.0, reduction="study")
    eq = losses.equivalent_paper_beta(beta, 64, 3)
    assert eq == pytest.approx(2 * 64 * 0.003 / 3)
    papers = losses.vae_loss_terms(x, logits, mu, logvar, beta=eq, gamma=0.0, reduction="papers")
    assert float(papers["loss"]) == pytest.approx(64 * float(study["loss"]), rel=1e-5)


@pytest.mark.parametrize("variance", ["learned", "constant"])
def test_study_beta_is_the_inverse_the_train_page_shows_for_a_papers_run(batch, variance):
    """A papers-reduced β, turned into the study's β by the Train page's formula, gives the papers' loss / P."""
    x, logits, mu, logvar = batch
    logvar = logvar if variance == "learned" else None
    papers = losses.vae_loss_terms(x, logits, mu, logvar, beta=4.0, gamma=0.0, reduction="papers")
    beta = methods.study_beta(4.0, 64, 3)
    assert beta == pytest.approx(3 * 4.0 / (2 * 64))
    study = losses.vae_loss_terms(x, logits, mu, logvar, beta=beta, gamma=0.0, reduction="study")
    assert float(papers["loss"]) == pytest.approx(64 * float(study["loss"]), rel=1e-5)
    assert methods.study_beta(methods.equivalent_paper_beta(0.001, 64 * 64, 3), 64 * 64, 3) == pytest.approx(0.001)


def _terms(batch, method, params, reduction="papers", gamma=0.0, **kw):
    x, logits, mu, logvar = batch
    return losses.vae_loss_terms(
        x, logits, mu, logvar, beta=1.0, gamma=gamma, method=method, params=params, reduction=reduction, **kw
    )


def test_each_method_adds_its_regulariser_to_reconstruction_and_the_study_term(batch):
    x, logits, mu, logvar = batch
    recon = np_bce_sum(x, logits).mean()
    kl = (0.5 * (mu**2 + np.exp(logvar) - logvar - 1).sum(axis=1)).mean()
    ent = float(losses.entanglement(mu, "covariance"))

    t = _terms(batch, "annealed", {"gamma_c": 100.0, "c_max": 20.0, "c_steps": 100}, step=25)
    assert float(t["capacity"]) == pytest.approx(5.0)
    assert float(t["loss"]) == pytest.approx(recon + 100 * abs(kl - 5.0), rel=1e-5)

    t = _terms(batch, "beta-tcvae", {"beta_tc": 6.0}, z=mu, gamma=0.5, mode="covariance")
    tc = np_total_correlation(mu.astype(float), mu.astype(float), logvar.astype(float))
    assert float(t["tc"]) == pytest.approx(tc, rel=1e-4)
    assert float(t["loss"]) == pytest.approx(recon + kl + 5.0 * tc + 0.5 * ent, rel=1e-4)

    cov = np.cov(mu.astype(float), rowvar=False, bias=True)
    off = ((cov - np.diag(np.diag(cov))) ** 2).sum()
    t = _terms(batch, "dip-vae-i", {"lambda_od": 10.0, "lambda_d_factor": 10.0})
    assert float(t["loss"]) == pytest.approx(recon + kl + 10 * off + 100 * ((np.diag(cov) - 1) ** 2).sum(), rel=1e-4)

    disc = np.array([[1.0, 0.0], [2.0, 1.5]] * 3, np.float32)
    t = _terms(batch, "factor-vae", {"gamma_tc": 10.0}, disc_logits=disc)
    assert float(t["tc"]) == pytest.approx(0.75)
    assert float(t["loss"]) == pytest.approx(recon + kl + 7.5, rel=1e-5)


def test_method_parameters_default_to_the_papers_and_refuse_strangers():
    assert methods.resolve_params("dip-vae-i", {}) == {"lambda_od": 10.0, "lambda_d_factor": 10.0}
    assert methods.resolve_params("dip-vae-ii", {})["lambda_d_factor"] == 1.0
    assert methods.resolve_params("annealed", {"c_max": 5})["c_max"] == 5.0
    with pytest.raises(ValueError, match="gamma_tc is not a parameter of beta-vae"):
        methods.resolve_params("beta-vae", {"gamma_tc": 1.0})
    with pytest.raises(ValueError, match="tc_estimator must be one of mws, mss"):
        methods.resolve_params("beta-tcvae", {"tc_estimator": "exact"})
    with pytest.raises(ValueError, match="unknown method"):
        methods.get("vq-vae")


def test_every_method_has_a_formula_and_logs_its_own_terms():
    for name, m in methods.METHODS.items():
        tex = methods.loss_latex(name, {}, beta=1.0, gamma=0.0, entanglement_tex="L")
        assert tex.startswith("L = L_{\\mathrm{recon}}")
        for p in m.params:
            if p.kind is not str and p.in_loss:
                assert p.symbol in tex, (name, p.name)
        assert "loss" in methods.logged_terms(name)
    assert "disc_accuracy" in methods.logged_terms("factor-vae")
    assert "capacity" in methods.logged_terms("annealed")


@pytest.mark.parametrize("arch", ["seed", "burgess"])
def test_latent_mean_and_log_variance_are_float32_under_mixed_precision(arch):
    import keras

    from vae.model.networks import build_vae

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        m = build_vae(arch, 32, 3, "learned")
        mu, logvar = m.encode(np.zeros((2, 32, 32), np.uint8))
        assert keras.backend.standardize_dtype(mu.dtype) == "float32"
        assert keras.backend.standardize_dtype(logvar.dtype) == "float32"
        assert m.encoder.get_layer("conv1").compute_dtype == "bfloat16"  # the rest still computes in bfloat16
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_the_logged_mws_total_correlation_adds_back_its_constant(codes):
    """Issue 23: given the dataset size N, the MWS estimate is Chen et al.'s (weights 1/(N B) in the
    double loop), (d - 1) log(B N) above the library's constant-free number (which was logged before)."""
    import math

    z, mu, logvar = codes
    bare = float(losses.total_correlation(z, mu, logvar))
    full = float(losses.total_correlation(z, mu, logvar, "mws", dataset_size=1000))
    assert full - bare == pytest.approx(2 * math.log(7 * 1000), rel=1e-5)
    chen = np_total_correlation(
        z.astype(float), mu.astype(float), logvar.astype(float), np.full((7, 7), -math.log(7 * 1000))
    )
    assert full == pytest.approx(chen, rel=1e-4, abs=1e-3)
