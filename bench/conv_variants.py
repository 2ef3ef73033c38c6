"""Exact rewrites of burgess' 4x4 stride-2 convolutions, timed against TensorFlow's own (a negative result).

    python bench/conv_variants.py

For each layer shape of the burgess network at 64x64 (batch 128, bfloat16): forward + backward time of
the native op and of exact alternatives, each checked against the native output first:
- conv: space-to-depth of the 1-padded input, then a 2x2 valid convolution (same multiply-adds, wider GEMMs);
- transposed conv: a 2x2 convolution to 4x the channels + sub-pixel interleave; a 3x3 'same' convolution
  to 4x the channels + depth-to-space (2.25x the multiply-adds); neighbourhood gather + matmul.
On this 2-core AVX512-BF16 machine none was faster than oneDNN's native kernels (bench/RESULTS.md).
"""

from __future__ import annotations

import time

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vae.model.fast_layers import _subpixel_kernel_selector  # noqa: E402  (the library's tap map, used by its logits layer)

B = 128
_SUB = np.array([[3, 1], [2, 0]])  # transposed conv k4 s2 'same': sub-pixel s, tap t -> kernel index


def s2d_conv(x, k):
    h, w, c = x.shape[1:]
    xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    xs = tf.reshape(
        tf.transpose(tf.reshape(xp, (-1, (h + 2) // 2, 2, (w + 2) // 2, 2, c)), (0, 1, 3, 2, 4, 5)),
        (-1, (h + 2) // 2, (w + 2) // 2, 4 * c),
    )
    o = k.shape[-1]
    k2 = tf.reshape(tf.transpose(tf.reshape(k, (2, 2, 2, 2, c, o)), (0, 2, 1, 3, 4, 5)), (2, 2, 4 * c, o))
    return tf.nn.conv2d(xs, tf.cast(k2, x.dtype), 1, "VALID")


def _sub_kernels(k):  # k: (4, 4, out, in) -> (2, 2, in, 4*out) ordered [sr, sc, out]
    kt = tf.transpose(k, (0, 1, 3, 2))
    return tf.concat(
        [tf.gather(tf.gather(kt, _SUB[sr], axis=0), _SUB[sc], axis=1) for sr in range(2) for sc in range(2)], axis=-1
    )


def _interleave(y, n, m, o):
    parts = [
        y[:, sr : sr + n, sc : sc + m, (2 * sr + sc) * o : (2 * sr + sc + 1) * o] for sr in range(2) for sc in range(2)
    ]
    z = tf.reshape(tf.stack(parts, axis=3), (-1, n, m, 2, 2, o))
    return tf.reshape(tf.transpose(z, (0, 1, 3, 2, 4, 5)), (-1, 2 * n, 2 * m, o))


def deconv_2x2(x, k):
    n, m = x.shape[1:3]
    y = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), tf.cast(_sub_kernels(k), x.dtype), 1, "VALID")
    return _interleave(y, n, m, k.shape[2])


def deconv_3x3(x, k):
    n, m, c = x.shape[1:]
    o = k.shape[2]
    sel = _subpixel_kernel_selector()
    big = tf.reshape(tf.einsum("adk,bel,klco->decabo", sel, sel, tf.transpose(k, (0, 1, 3, 2))), (3, 3, c, 4 * o))
    y = tf.nn.conv2d(x, tf.cast(big, x.dtype), 1, "SAME")
    y = tf.transpose(tf.reshape(y, (-1, n, m, 2, 2, o)), (0, 1, 3, 2, 4, 5))
    return tf.reshape(y, (-1, 2 * n, 2 * m, o))


def deconv_matmul(x, k):
    n, m, c = x.shape[1:]
    xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    nb = tf.concat([xp[:, tr : tr + n + 1, tc : tc + m + 1, :] for tr in range(2) for tc in range(2)], axis=-1)
    y = tf.matmul(nb, tf.cast(tf.reshape(_sub_kernels(k), (4 * c, -1)), x.dtype))
    return _interleave(y, n, m, k.shape[2])


def native_conv(x, k):
    return tf.nn.conv2d(x, tf.cast(k, x.dtype), 2, "SAME")


def native_deconv(x, k):
    n, m = x.shape[1:3]
    return tf.nn.conv2d_transpose(x, tf.cast(k, x.dtype), (tf.shape(x)[0], 2 * n, 2 * m, k.shape[2]), 2, "SAME")


def time_ms(fn, x, k, input_grad=True, n=15, repeats=5):
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.softplus(tf.cast(fn(x, k), "float32")))
        return tape.gradient(loss, ([x] if input_grad else []) + [k])

    step(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            out = step(x)
        _ = out[-1].numpy()
        times.append((time.perf_counter() - t0) / n)
    return 1000 * float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(0)
    convs = [("conv1", (64, 64, 1), False), ("conv2", (32, 32, 32), True), ("conv3", (16, 16, 32), True)]
    for name, shape, grad in convs:
        x = tf.constant(rng.random((2,) + shape, np.float32))
        k = tf.Variable(rng.normal(0, 0.05, (4, 4, shape[-1], 32)).astype(np.float32))
        assert np.allclose(s2d_conv(x, k), native_conv(x, k), atol=1e-4), name
        xb = tf.cast(tf.random.uniform((B,) + shape), "bfloat16")
        print(
            f"{name:8s} native {time_ms(native_conv, xb, k, grad):6.2f} ms   "
            f"space-to-depth {time_ms(s2d_conv, xb, k, grad):6.2f} ms",
            flush=True,
        )
    deconvs = [("deconv2", (8, 8, 32), 32), ("deconv3", (16, 16, 32), 32), ("logits", (32, 32, 32), 1)]
    for name, shape, out in deconvs:
        x = tf.constant(rng.random((2,) + shape, np.float32))
        k = tf.Variable(rng.normal(0, 0.05, (4, 4, out, shape[-1])).astype(np.float32))
        ref = native_deconv(x, k)
        for f in (deconv_2x2, deconv_3x3, deconv_matmul):
            assert np.allclose(f(x, k), ref, atol=1e-4), (name, f.__name__)
        xb = tf.cast(tf.random.uniform((B,) + shape), "bfloat16")
        print(
            f"{name:8s} native {time_ms(native_deconv, xb, k):6.2f} ms   2x2+interleave "
            f"{time_ms(deconv_2x2, xb, k):6.2f}   3x3+depth-to-space {time_ms(deconv_3x3, xb, k):6.2f}   "
            f"gather+matmul {time_ms(deconv_matmul, xb, k, n=3, repeats=3):7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
