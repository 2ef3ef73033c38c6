"""The model and loss code uses keras.ops only, so it trains on the JAX backend too (the GPU path)."""

import textwrap

import pytest

from tests.backend_sections import SECTIONS, run_section, uses_section


@pytest.mark.slow
@uses_section("backends")  # run in the session's one JAX process (tests/backend_sections.py)
def test_model_trains_saves_and_loads_on_the_jax_backend(request):
    assert run_section(request, "jax", "backends").startswith("ok")


SECTIONS["jax", "backends"] = textwrap.dedent("""
    import numpy as np, keras
    assert keras.backend.backend() == "jax"
    from vae.model.networks import build_vae
    from vae.model import losses
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    m = build_vae("seed", 32, 3, "learned", beta=0.001, gamma=0.0001, entanglement="covariance")
    m.compile(keras.optimizers.Adam(3e-3))
    # 8 images in batches of 8, 15 steps: JAX's CPU convolutions are slow (32 images in batches of 16, 30 steps,
    # took 38 s on a quiet machine, 15 x 8 about 12 s under load); the loss falls as far, 0.69 -> 0.31
    x = np.zeros((8, 32, 32), np.uint8); x[:, 8:24, 8:24] = 255
    first = m.evaluate(x, verbose=0, return_dict=True)["loss"]
    m.fit(x, epochs=15, batch_size=8, verbose=0)
    last = m.evaluate(x, verbose=0, return_dict=True)["loss"]
    assert last < 0.7 * first, (first, last)
    m.save("m.keras")
    m2 = keras.models.load_model("m.keras", safe_mode=True)
    d = np.abs(np.asarray(m(x[:2])["recon"]) - np.asarray(m2(x[:2])["recon"])).max()
    assert d < 1e-6, d
    mu = np.random.default_rng(0).normal(size=(8, 3))
    assert abs(float(losses.entanglement(mu, "seed")) - np.mean([np.abs(mu[:, i] * mu[:, j]).mean()
               for i in range(3) for j in range(i + 1, 3)])) < 1e-5
    print("ok", first, last)
""")
