"""Where a training step's time goes: TensorFlow's profiler, aggregated per op type and per layer.

    python bench/profile_step.py [--arch burgess] [--batch 128] [--size 64] [--precision mixed_bfloat16]

Trains a few warm-up steps, profiles --steps more, and prints milliseconds per step summed over
TensorFlow's compute threads (so the total can exceed the wall time: two ops run at once on 2 cores).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="burgess")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--precision", default="mixed_bfloat16")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args(argv)
    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from vae.model.networks import build_vae

    keras.mixed_precision.set_global_policy(a.precision)
    x = (np.random.default_rng(0).random((2048, a.size, a.size)) < 0.05).astype(np.uint8) * 255
    m = build_vae(a.arch, a.size, 3)
    m.compile(optimizer=keras.optimizers.Adam(1e-3))
    ds = tf.data.Dataset.from_tensor_slices(x).shuffle(2048).batch(a.batch).repeat().prefetch(2)
    m.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)
    logdir = tempfile.mkdtemp(prefix="profile-")
    tf.profiler.experimental.start(logdir)
    t0 = time.perf_counter()
    m.fit(ds, steps_per_epoch=a.steps, epochs=1, verbose=0)
    dt = time.perf_counter() - t0
    tf.profiler.experimental.stop()
    print(
        f"{a.arch} {a.size}x{a.size} batch {a.batch} {a.precision}: {a.steps * a.batch / dt:.0f} img/s, "
        f"{1000 * dt / a.steps:.1f} ms/step (while profiling)"
    )
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    by_op, by_layer, total = collections.Counter(), collections.Counter(), 0.0
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for ev in line.events:
                name = plane.event_metadata[ev.metadata_id].name
                if name.startswith("ExecutorState") or ":" not in name:
                    continue
                path, op = name.rsplit(":", 1)
                ms = ev.duration_ps / 1e9 / a.steps
                total += ms
                by_op[op] += ms
                hit = re.search(r"(encoder|decoder)(?:_\d+)?/(\w+?)(?:_\d+)?/", path)
                by_layer[
                    f"{hit.group(1)}/{hit.group(2)}"
                    if hit
                    else ("optimizer/other gradients" if "gradient" in path or "adam" in path.lower() else "other")
                ] += ms
    print(f"ops: {total:.1f} ms/step over the compute threads")
    for title, counter in (("by op", by_op), ("by layer (forward + its gradients)", by_layer)):
        print(title)
        for key, ms in counter.most_common(a.top):
            print(f"  {ms:7.2f}  {key}")


if __name__ == "__main__":
    main()
