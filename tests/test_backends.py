"""The model and loss code uses keras.ops only, so it trains on the JAX backend too (the GPU path)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_model_trains_saves_and_loads_on_the_jax_backend(tmp_path):
    pytest.importorskip("jax")
    script = textwrap.dedent(f"""
        import numpy as np, keras
        assert keras.backend.backend() == "jax"
        from vae.model.networks import build_vae
        from vae.model import losses
        keras.utils.set_random_seed(0)
        m = build_vae("seed", 32, 3, "learned", beta=0.001, gamma=0.0001, entanglement="covariance")
        m.compile(keras.optimizers.Adam(3e-3))
        x = np.zeros((32, 32, 32), np.uint8); x[:, 8:24, 8:24] = 255
        first = m.evaluate(x, verbose=0, return_dict=True)["loss"]
        m.fit(x, epochs=15, batch_size=16, verbose=0)
        last = m.evaluate(x, verbose=0, return_dict=True)["loss"]
        assert last < 0.7 * first, (first, last)
        m.save({str(tmp_path / "m.keras")!r})
        m2 = keras.models.load_model({str(tmp_path / "m.keras")!r}, safe_mode=True)
        d = np.abs(np.asarray(m(x[:2])["recon"]) - np.asarray(m2(x[:2])["recon"])).max()
        assert d < 1e-6, d
        mu = np.random.default_rng(0).normal(size=(8, 3))
        assert abs(float(losses.entanglement(mu, "seed")) - np.mean([np.abs(mu[:, i] * mu[:, j]).mean()
                   for i in range(3) for j in range(i + 1, 3)])) < 1e-5
        print("ok", first, last)
    """)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok" in proc.stdout
