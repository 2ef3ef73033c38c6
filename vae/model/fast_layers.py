"""Exact, faster rewrites of three Keras layers used by the decoders (vae.model.networks).

Each class keeps Keras' variables, weight paths and update rules, so parameter
counts and saved `.keras` files are unchanged; only the computation differs
(measured in bench/RESULTS.md and bench/conv_variants.py; tests/test_fast_layers.py
checks each one against the stock Keras layer in value and gradient).

- `ConvTranspose`: the seed decoder's stride-1 Conv2DTranspose runs as the
  equivalent Conv2D (flipped, transposed kernel). With `upsample=True` an
  "UpSampling2D(2), ConvT 3x3" pair runs as one stride-2 4x4 transposed
  convolution with merged taps (2.25x fewer multiply-adds; +20% images/s for
  the seed net at batch 8), so the saved model has no separate UpSampling2D.
- `Conv2DTranspose`: burgess' 1-channel logits layer (float32) as a 2x2 convolution
  to 4x the channels + depth-to-space on TensorFlow, with the transposed convolution's
  own gradient kernels (bench/bench_step.py; the form is chosen by `logits_form()`).
- `BatchNorm`: trains with TensorFlow's fused kernel (one pass instead of
  Keras' moments + normalise graph, which dominated at 64x64 with 256 channels).

The registered names ("vae>ConvTranspose", "vae>Conv2DTranspose", "vae>BatchNorm")
are what a saved model refers to; files saved when these classes lived in
vae.model.networks load the same (tests/test_fast_layers.py).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

# Per spatial axis, nearest 2x upsampling followed by a 3-tap 'same' convolution w equals a stride-2
# transposed convolution with the 4 taps (w[2], w[1] + w[2], w[0] + w[1], w[0]): even outputs see
# x[i-1] and x[i], odd outputs x[i] and x[i+1], and the upsampled copies' taps add up.
_UP_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


@keras.saving.register_keras_serializable(package="vae")
class ConvTranspose(layers.Conv2DTranspose):
    """Conv2DTranspose whose stride-1 'same' case runs as the equivalent Conv2D.

    For stride 1 and odd kernels, conv_transpose(x, W) == conv(x, W') with W'
    the spatially flipped kernel with its in/out axes swapped. The variables are
    Conv2DTranspose's own, so weights and parameter counts are unchanged.

    `upsample=True` puts an UpSampling2D(2, nearest) in front of a 3x3 layer and
    computes both as one stride-2 4x4 transposed convolution whose taps are sums
    of the 3x3 kernel's (exact; 2.25x fewer multiply-adds than convolving the
    upsampled image). Same variables, and the same weight paths in a saved model.
    """

    def __init__(self, *args, upsample=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.upsample = bool(upsample)
        if self.upsample and (
            tuple(self.kernel_size) != (3, 3)
            or tuple(self.strides) != (1, 1)
            or self.padding != "same"
            or tuple(self.dilation_rate) != (1, 1)
            or self.data_format != "channels_last"
        ):
            raise ValueError("upsample=True needs a 3x3 kernel, stride 1, 'same' padding and channels_last")

    def call(self, inputs):
        if self.upsample:
            taps = ops.convert_to_tensor(_UP_TAPS, dtype="float32")
            conv_kernel = ops.flip(ops.flip(ops.cast(self.kernel, "float32"), 0), 1)  # (3, 3, out, in)
            kernel = ops.einsum("ak,bl,kloi->aboi", taps, taps, conv_kernel)  # (4, 4, out, in)
            y = ops.conv_transpose(inputs, ops.cast(kernel, inputs.dtype), strides=2, padding="same")
        elif (
            tuple(self.strides) != (1, 1)
            or self.padding != "same"
            or any(k % 2 == 0 for k in self.kernel_size)
            or tuple(self.dilation_rate) != (1, 1)
            or self.data_format != "channels_last"
        ):
            return super().call(inputs)
        else:
            kernel = ops.transpose(ops.flip(ops.flip(self.kernel, 0), 1), (0, 1, 3, 2))
            y = ops.conv(inputs, ops.cast(kernel, inputs.dtype), strides=1, padding="same")
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape):
        if not self.upsample:
            return super().compute_output_shape(input_shape)
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        return {**super().get_config(), "upsample": self.upsample}


def _subpixel_kernel_selector():
    """sel[s, d, k] = 1 where sub-pixel s of a stride-2 4x4 'same' transposed conv takes tap k from
    input offset d - 1: even outputs use taps 3 (offset -1) and 1 (offset 0), odd ones 2 (0) and 0 (+1)."""
    sel = np.zeros((2, 3, 4), np.float32)
    for s, pairs in enumerate((((0, 3), (1, 1)), ((1, 2), (2, 0)))):
        for d, k in pairs:
            sel[s, d, k] = 1.0
    return sel


def _tf_subpixel_conv_transpose(x, kernel, window=3):
    """TensorFlow: conv_transpose(x, kernel, stride 2, 'same') for a 4x4 kernel (4, 4, out, in), computed as a
    convolution to 4*out channels followed by depth-to-space; gradients are TensorFlow's own kernels for the
    transposed convolution (a stride-2 conv for dx, Conv2DBackpropFilter for dk).

    window=3: a 3x3 'same' convolution (each sub-pixel's 2x2 taps inside 3x3: 2.25x the multiply-adds);
    window=2: a 2x2 'valid' convolution of the 1-padded input, no zero taps, whose (n + 1) x (m + 1) sub-pixel
    grid is the 1-padded output (y_pad[2i + ph] = sum_d x_pad[i + d] k[2(1 - d) + ph]), cropped after
    depth-to-space."""
    import tensorflow as tf

    n, m, c = x.shape[1], x.shape[2], x.shape[3]
    o = kernel.shape[2]
    sel = tf.constant(_subpixel_kernel_selector())

    @tf.custom_gradient
    def forward(x, k):
        if window == 3:
            big = tf.einsum("adk,bel,klco->decabo", sel, sel, tf.cast(tf.transpose(k, (0, 1, 3, 2)), "float32"))
            y = tf.nn.conv2d(x, tf.cast(tf.reshape(big, (3, 3, c, 4 * o)), x.dtype), 1, "SAME")
            y = tf.reshape(tf.transpose(tf.reshape(y, (-1, n, m, 2, 2, o)), (0, 1, 3, 2, 4, 5)), (-1, 2 * n, 2 * m, o))
        else:
            # (4, 4, o, c) as (1 - dh, ph, 1 - dw, pw, o, c) -> (dh, dw, c, (ph, pw, o))
            w2 = tf.reverse(tf.reshape(k, (2, 2, 2, 2, o, c)), [0, 2])
            w2 = tf.reshape(tf.transpose(w2, (0, 2, 5, 1, 3, 4)), (2, 2, c, 4 * o))
            y = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), w2, 1, "VALID")
            y = tf.nn.depth_to_space(y, 2)[:, 1 : 2 * n + 1, 1 : 2 * m + 1, :]

        def grad(dy):
            dx = tf.nn.conv2d(dy, tf.cast(k, dy.dtype), 2, "SAME")
            dk = tf.raw_ops.Conv2DBackpropFilter(
                input=dy, filter_sizes=tf.shape(k), out_backprop=x, strides=[1, 2, 2, 1], padding="SAME"
            )
            return dx, tf.cast(dk, k.dtype)

        return y, grad

    return forward(x, tf.cast(kernel, x.dtype))


LOGITS_FORMS = ("subpixel2", "subpixel", "native")
LOGITS_FORM_ENV = "VAE_LAB_LOGITS_FORM"


def logits_form() -> str:
    """The computation burgess' logits layer uses on TensorFlow (`Conv2DTranspose.form`): $VAE_LAB_LOGITS_FORM
    when set, else "subpixel2": the cheapest whole training step of the three on the AMX Xeon measured (the 3x3
    sub-pixel form also beat "native" on an AMD EPYC; bench/bench_step.py times them on any machine, figures in
    bench/RESULTS.md). All three compute the same function."""
    import os

    from vae.base.errors import UserError

    form = os.environ.get(LOGITS_FORM_ENV) or LOGITS_FORMS[0]
    if form not in LOGITS_FORMS:
        raise UserError(
            f"{LOGITS_FORM_ENV} must be one of {', '.join(LOGITS_FORMS)}, not {form!r}; unset it for the default"
        )
    return form


@keras.saving.register_keras_serializable(package="vae")
class Conv2DTranspose(layers.Conv2DTranspose):
    """Keras' Conv2DTranspose (same class name, variables and weight paths in a saved model).

    On TensorFlow, a stride-2 4x4 'same' layer with at most 4 output channels (burgess' logits layer)
    computes the same function in one of three ways (`form`, set from `logits_form()` when the layer is
    made; not saved): "native" (Keras' own: oneDNN's transposed-convolution kernel is slow with one output
    channel), "subpixel" (a 3x3 convolution to 4x the channels + depth-to-space: 9-17% faster steps than
    native on an AMD EPYC) or "subpixel2" (a 2x2 convolution with no zero taps + depth-to-space + crop).
    The sub-pixel forms keep the transposed convolution's gradient kernels (`_tf_subpixel_conv_transpose`).
    Other backends and shapes: Keras' own.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.form = logits_form()

    def call(self, inputs):
        if (
            keras.backend.backend() != "tensorflow"
            or self.form == "native"
            or self.filters > 4
            or tuple(self.kernel_size) != (4, 4)
            or tuple(self.strides) != (2, 2)
            or self.padding != "same"
            or self.data_format != "channels_last"
            or tuple(self.dilation_rate) != (1, 1)
        ):
            return super().call(inputs)
        y = _tf_subpixel_conv_transpose(inputs, self.kernel, window=2 if self.form == "subpixel2" else 3)
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return self.activation(y) if self.activation is not None else y


@keras.saving.register_keras_serializable(package="vae")
class BatchNorm(layers.BatchNormalization):
    """BatchNormalization that trains with TensorFlow's fused kernel (same variables and update rule)."""

    def call(self, inputs, training=None, mask=None):
        if (
            not training
            or keras.backend.backend() != "tensorflow"
            or len(inputs.shape) != 4
            or self.axis not in (-1, 3)
            or not self.scale
            or not self.center
        ):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        y, mean, var = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            tf.cast(self.gamma, "float32"),
            tf.cast(self.beta, "float32"),
            epsilon=self.epsilon,
            is_training=True,
        )
        # The fused kernel returns the unbiased variance; Keras' moving variance uses the biased one.
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
        var = var * (n - 1.0) / tf.maximum(n, 1.0)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + tf.cast(mean, self.moving_mean.dtype) * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + tf.cast(var, self.moving_variance.dtype) * (1.0 - m))
        return y
