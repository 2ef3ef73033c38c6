"""The exact speed rewrites of Keras layers (vae.model.fast_layers): same function, same saved files."""

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.slow  # builds and runs Keras layers and networks (the fast lane stays without them)


def test_fast_layers_compute_the_same_function_as_the_stock_keras_layers():
    """The seed net's speed rewrites (vae.model.fast_layers) are exact: same variables, same outputs."""
    from keras import layers

    from vae.model.fast_layers import BatchNorm, ConvTranspose

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 4)).astype("float32")  # non-square, to catch swapped axes
    pairs = [
        (
            ConvTranspose(7, 3, padding="same", activation="relu", upsample=True),
            lambda w: keras.Sequential(
                [layers.UpSampling2D(2), layers.Conv2DTranspose(7, 3, padding="same", activation="relu")]
            ),
        ),
        (ConvTranspose(7, 3, padding="same"), lambda w: layers.Conv2DTranspose(7, 3, padding="same")),
        (ConvTranspose(7, 1, padding="same"), lambda w: layers.Conv2DTranspose(7, 1, padding="same")),
    ]
    for fast, make_stock in pairs:
        y = np.asarray(fast(x))
        fast.set_weights([rng.normal(size=w.shape).astype("float32") for w in fast.get_weights()])
        y = np.asarray(fast(x))
        stock = make_stock(None)
        stock(x)
        stock.set_weights(fast.get_weights())
        np.testing.assert_allclose(y, np.asarray(stock(x)), rtol=1e-5, atol=1e-5, err_msg=type(fast).__name__)
    assert ConvTranspose(7, 3, padding="same", upsample=True)(x).shape == (2, 12, 10, 7)

    bn, ref = BatchNorm(momentum=0.9, epsilon=1e-3), layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    bn(x), ref(x)
    ref.set_weights(bn.get_weights())
    np.testing.assert_allclose(np.asarray(bn(x, training=True)), np.asarray(ref(x, training=True)), atol=1e-4)
    for a, b in zip(bn.get_weights(), ref.get_weights()):  # moving mean and (biased) variance updates
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form", ["subpixel2", "subpixel"])
@pytest.mark.parametrize("filters", [1, 3])
def test_subpixel_transposed_conv_matches_keras_in_value_and_gradients(filters, form):
    """burgess' logits layer (vae.model.fast_layers.Conv2DTranspose): each sub-pixel form's TensorFlow forward and
    custom gradient."""
    import tensorflow as tf
    from keras import layers

    from vae.model.fast_layers import Conv2DTranspose

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 5, 6, 4)).astype("float32"))
    fast, stock = (
        Conv2DTranspose(filters, 4, strides=2, padding="same"),
        layers.Conv2DTranspose(filters, 4, strides=2, padding="same"),
    )
    fast.form = form
    fast(x), stock(x)
    fast.set_weights([rng.normal(size=w.shape).astype("float32") for w in stock.get_weights()])
    stock.set_weights(fast.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outs = [fast(x), stock(x)]
        losses = [tf.reduce_sum(tf.sin(y)) for y in outs]  # a non-uniform upstream gradient
    assert outs[0].shape == (2, 10, 12, filters)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(
        tape.gradient(losses[0], [x, *fast.trainable_weights]), tape.gradient(losses[1], [x, *stock.trainable_weights])
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["seed_32_v0.1", "burgess_32_v0.1"])
def test_models_saved_before_the_fast_layers_moved_out_of_vae_model_load_and_give_the_same_outputs(name):
    """tests/data/*_v0.1.keras were saved by the lab before this module existed (the layers were in vae.model.networks),
    with the outputs they gave then; a run trained with that version must load and compute the same."""
    import vae.model.networks  # noqa: F401  (registers the VAE class a saved model names, as vae.model.inference does)

    data = Path(__file__).parent / "data"
    model = keras.models.load_model(data / f"{name}.keras", safe_mode=True)
    expected = np.load(data / f"{name}.npz")
    out = model(expected["x"])
    np.testing.assert_allclose(np.asarray(out["mu"]), expected["mu"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["recon"]), expected["recon"], rtol=1e-4, atol=1e-5)


def test_the_logits_form_is_the_fastest_measured_unless_set_and_a_wrong_name_is_refused(monkeypatch):
    """VAE_LAB_LOGITS_FORM picks the logits layer's computation (bench/bench_step.py); unset: "subpixel2"."""
    from vae.base.errors import UserError
    from vae.model import fast_layers

    monkeypatch.delenv(fast_layers.LOGITS_FORM_ENV, raising=False)
    assert fast_layers.Conv2DTranspose(1, 4, strides=2, padding="same").form == "subpixel2"
    monkeypatch.setenv(fast_layers.LOGITS_FORM_ENV, "native")
    assert fast_layers.Conv2DTranspose(1, 4, strides=2, padding="same").form == "native"
    monkeypatch.setenv(fast_layers.LOGITS_FORM_ENV, "fast")
    with pytest.raises(UserError, match="VAE_LAB_LOGITS_FORM must be one of subpixel2, subpixel, native"):
        fast_layers.Conv2DTranspose(1, 4, strides=2, padding="same")
