"""Mixed bfloat16 (the default precision) trains like float32: losses stay close over a few steps."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from vae.model.networks import build_vae  # noqa: E402


def _losses(precision, arch, steps=6):
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        m = build_vae(arch, 32, 3, seed=0)
        m.compile(keras.optimizers.Adam(1e-3))
        rng = np.random.default_rng(0)
        x = (rng.random((16, 32, 32)) > 0.8).astype(np.uint8) * 255
        return [float(m.train_on_batch(x, return_dict=True)["loss"]) for _ in range(steps)]
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["burgess", "seed"])
def test_mixed_bfloat16_losses_stay_close_to_float32(arch):
    f32, bf16 = _losses("float32", arch), _losses("mixed_bfloat16", arch)
    assert all(np.isfinite(bf16))
    np.testing.assert_allclose(bf16, f32, rtol=0.05)
    assert bf16[-1] < bf16[0]  # and it still learns
