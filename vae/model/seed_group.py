"""Several seeds of one setting trained as one Keras model (keras.ops only; TensorFlow and JAX).

`SeedGroup(members)` holds K ordinary VAEs (vae.model.networks.VAE), each built with its own seed, so
each has the initialisation a run of that seed would have. Its input is K batches stacked on axis 1,
(B, K, H, W): member k trains on [:, k], so each seed keeps its own data order. The group's loss is the
sum of the members' losses; no variable is shared, so d(sum)/d(member k's weights) is member k's own
gradient, and Adam (elementwise per variable) takes for each member the step it would take alone
(tests/test_seed_group.py checks one grouped step against K separate ones).

One model for K seeds means one process, one traced step and one `fit` loop for K runs; the members'
ops are independent in the graph, so TensorFlow's inter-op threads run them side by side. (A
vectorised form, the K members' kernels stacked into one grouped convolution, was measured first: on
this CPU TensorFlow's grouped Conv2D forward+backward took 4.6x the time of K separate convolutions;
bench/RESULTS.md.)

Logged terms are per member, named `s{k}/{term}` (`s{k}/loss` is member k's total loss, weighted by
batch size like Keras' own loss tracker); `loss` is the sum over members.
"""

from __future__ import annotations

import keras
from keras import ops


def member_key(k: int, name: str) -> str:
    return f"s{k}/{name}"


@keras.saving.register_keras_serializable(package="vae")
class SeedGroup(keras.Model):
    """K VAEs trained side by side on (B, K, H, W) batches; see the module docstring."""

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        self.member_loss = [keras.metrics.Mean(name=member_key(k, "loss")) for k in range(len(self.members))]

    @property
    def size(self) -> int:
        return len(self.members)

    def call(self, x, training=False):
        return [m(x[:, k], training=training) for k, m in enumerate(self.members)]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total = None
        for k, m in enumerate(self.members):
            sw = None if sample_weight is None else sample_weight[:, k]
            loss_k = m.compute_loss(x[:, k], None, y_pred[k], sw, training=training)
            n = ops.cast(ops.shape(y_pred[k]["mu"])[0], "float32")
            self.member_loss[k].update_state(loss_k, sample_weight=n)
            total = loss_k if total is None else total + loss_k
        return total

    @property
    def metrics(self):
        own = super().metrics  # the group's loss tracker (Keras skips the member models' metrics)
        seen = {id(m) for m in own}
        extra = [t for t in self.member_loss if id(t) not in seen]
        for m in self.members:
            extra += [t for t in m.trackers.values() if id(t) not in seen]
        return own + extra

    def get_metrics_result(self):
        out = {}
        if self._loss_tracker is not None:
            out["loss"] = self._loss_tracker.result()
        for k, m in enumerate(self.members):
            out[member_key(k, "loss")] = self.member_loss[k].result()
            for name, tracker in m.trackers.items():
                out[member_key(k, name)] = tracker.result()
        return out

    def build(self, input_shape=None):
        self.built = True


def member_logs(logs: dict | None, k: int) -> dict:
    """Member k's entries of the group's logs, under the names a run of its own logs them
    (`s{k}/recon` -> `recon`, `val_s{k}/loss` -> `val_loss`)."""
    out = {}
    own, val = member_key(k, ""), "val_" + member_key(k, "")
    for key, value in (logs or {}).items():
        if key.startswith(own):
            out[key[len(own) :]] = value
        elif key.startswith(val):
            out["val_" + key[len(val) :]] = value
    return out
