"""The network: the study's exact architecture, the fast default, save/load."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from vae.model.networks import build_vae, count_params  # noqa: E402


@pytest.mark.slow
def test_seed_network_has_the_study_parameter_count():
    m = build_vae("seed", image_size=256, latent_dim=3, variance="constant")
    assert count_params(m) == {"total": 549_956, "trainable": 548_932, "non_trainable": 1_024}
    enc = sum(int(np.prod(w.shape)) for w in m.encoder.weights)
    assert enc == 345_411  # docs/study.md, "The network": encoder 345,411 (z_mean Dense 86,403)


@pytest.mark.slow
@pytest.mark.parametrize("arch,size", [("seed", 64), ("seed", 32), ("burgess", 64), ("burgess", 128)])
@pytest.mark.parametrize("variance", ["constant", "learned"])
def test_architectures_reconstruct_images_of_their_size(arch, size, variance):
    m = build_vae(arch, image_size=size, latent_dim=4, variance=variance)
    x = np.random.default_rng(0).integers(0, 256, (2, size, size), dtype=np.uint8)
    out = m(x)
    assert out["recon"].shape == (2, size, size, 1)
    assert out["mu"].shape == (2, 4)
    assert ("logvar" in out) == (variance == "learned")
    r = np.asarray(out["recon"])
    assert r.min() >= 0 and r.max() <= 1


@pytest.mark.slow
def test_keras_file_round_trips_without_custom_objects(tmp_path):
    m = build_vae("burgess", 64, 3, "learned", beta=0.5, gamma=0.2, entanglement="covariance", seed=3)
    path = tmp_path / "m.keras"
    m.save(path)
    m2 = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    np.testing.assert_allclose(np.asarray(m(x)["recon"]), np.asarray(m2(x)["recon"]), atol=1e-6)
    assert (m2.beta, m2.gamma, m2.entanglement_mode, m2.variance) == (0.5, 0.2, "covariance", "learned")


@pytest.mark.slow
def test_one_training_step_lowers_the_loss_on_a_fixed_batch():
    keras.utils.set_random_seed(0)
    m = build_vae("burgess", 32, 2, beta=0.001, gamma=0.0001)
    m.compile(keras.optimizers.Adam(3e-3))
    x = np.zeros((16, 32, 32), np.uint8)
    x[:, 8:24, 8:24] = 255
    first = m.evaluate(x, verbose=0, return_dict=True)["loss"]
    m.fit(x, epochs=80, batch_size=16, verbose=0)
    last = m.evaluate(x, verbose=0, return_dict=True)["loss"]
    assert last < 0.5 * first
    assert np.abs(np.asarray(m(x)["recon"])[..., 0] - x / 255).mean() < 0.1
