"""The network: the study's exact architecture, the fast default, save/load."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from vae.model import build_vae, count_params  # noqa: E402


def test_seed_network_has_the_study_parameter_count():
    m = build_vae("seed", image_size=256, latent_dim=3, variance="constant")
    assert count_params(m) == {"total": 549_956, "trainable": 548_932, "non_trainable": 1_024}
    enc = sum(int(np.prod(w.shape)) for w in m.encoder.weights)
    assert enc == 345_411  # FACTS.md §2: encoder 345,411 (z_mean Dense 86,403)


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


def test_keras_file_round_trips_without_custom_objects(tmp_path):
    m = build_vae("burgess", 64, 3, "learned", beta=0.5, gamma=0.2, entanglement="covariance", seed=3)
    path = tmp_path / "m.keras"
    m.save(path)
    m2 = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    np.testing.assert_allclose(np.asarray(m(x)["recon"]), np.asarray(m2(x)["recon"]), atol=1e-6)
    assert (m2.beta, m2.gamma, m2.entanglement_mode, m2.variance) == (0.5, 0.2, "covariance", "learned")


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


def test_fast_layers_compute_the_same_function_as_the_stock_keras_layers():
    """The seed net's speed rewrites (vae.model) are exact: same variables, same outputs."""
    from keras import layers

    from vae.model import BatchNorm, ConvTranspose

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 4)).astype("float32")  # non-square, to catch swapped axes
    pairs = [
        (ConvTranspose(7, 3, padding="same", activation="relu", upsample=True),
         lambda w: keras.Sequential([layers.UpSampling2D(2), layers.Conv2DTranspose(7, 3, padding="same",
                                                                                  activation="relu")])),
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


@pytest.mark.parametrize("filters", [1, 3])
def test_subpixel_transposed_conv_matches_keras_in_value_and_gradients(filters):
    """burgess' logits layer (vae.model.Conv2DTranspose): its TensorFlow forward and custom gradient."""
    import tensorflow as tf
    from keras import layers

    from vae.model import Conv2DTranspose

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 5, 6, 4)).astype("float32"))
    fast, stock = Conv2DTranspose(filters, 4, strides=2, padding="same"), layers.Conv2DTranspose(
        filters, 4, strides=2, padding="same")
    fast(x), stock(x)
    fast.set_weights([rng.normal(size=w.shape).astype("float32") for w in stock.get_weights()])
    stock.set_weights(fast.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outs = [fast(x), stock(x)]
        losses = [tf.reduce_sum(tf.sin(y)) for y in outs]  # a non-uniform upstream gradient
    assert outs[0].shape == (2, 10, 12, filters)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(tape.gradient(losses[0], [x, *fast.trainable_weights]),
                    tape.gradient(losses[1], [x, *stock.trainable_weights])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
