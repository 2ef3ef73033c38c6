"""TrainConfig: every training setting, in one validated dataclass.

The config is written to a run folder's `config.json` and read back by the
trainer process, so it must round-trip through JSON. It never imports
TensorFlow: the dashboard validates settings before anything heavy loads.

Loss (docs/study.md, "The loss and training"):  L = recon + R + gamma * L_entg, where R is the method's
regulariser (`method`, `method_params`: vae.model.methods; beta * KL for the default
beta-VAE). `reduction` "study" (the default) is the study's: recon is the
per-pixel mean binary cross-entropy, KL the mean over latent dimensions;
"papers" sums both, as disentanglement_lib, so published values mean what they say.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from vae.base.errors import UserError
from vae.base.fileio import dataclass_from_dict
from vae.base.registry import ARCHITECTURES, ENTANGLEMENT_TERMS
from vae.model import methods

VARIANCE_MODES = ("constant", "learned")
PRECISIONS = ("float32", "mixed_bfloat16")


def check_config_types(d: dict) -> str | None:
    """What is wrong with the types of a stored config's settings (config.json's "config"), or None.

    Each setting present must have its default's type (a whole number where an int is expected, any
    number where a float is); settings this version does not know are left alone (an older or newer run).
    Ranges are `TrainConfig.validate`'s job; this only lets a reader trust what it reads."""
    for f in dataclasses.fields(TrainConfig):
        if f.name not in d:
            continue
        v = getattr(TrainConfig(), f.name)
        got = d[f.name]
        if isinstance(v, bool):
            ok, want = isinstance(got, bool), "true or false"
        elif isinstance(v, int):
            ok, want = isinstance(got, int) and not isinstance(got, bool), "a whole number"
        elif isinstance(v, float):
            ok = isinstance(got, (int, float)) and not isinstance(got, bool)
            want = "a number"
        elif isinstance(v, dict):
            ok, want = isinstance(got, dict), "a JSON object"
        else:
            ok, want = isinstance(got, str), "text"
        if not ok:
            return f"setting {f.name!r} must be {want}, got {got!r}"[:200]
    return None


@dataclass
class TrainConfig:
    dataset: str = ""
    arch: str = "burgess"
    image_size: int = 64
    latent_dim: int = 3
    beta: float = 0.001
    gamma: float = 0.0001
    entanglement: str = "seed"
    variance: str = "constant"
    method: str = "beta-vae"  # one of vae.model.methods.METHOD_NAMES
    method_params: dict = field(default_factory=dict)  # the method's own parameters, named as in its paper
    reduction: str = "study"  # "study" or "papers" (vae.model.methods.REDUCTIONS)
    epochs: int = 15
    batch_size: int = 128  # per-image fastest on 2 CPU cores; with lr 2e-3 as good after 15 epochs (bench/RESULTS.md)
    lr: float = 2e-3
    seed: int = 0
    sample_weights: bool = False
    precision: str = "mixed_bfloat16"  # bf16 compute, float32 weights and loss: faster on CPU (bench/RESULTS.md)
    log_every: int = 5  # batches between live metric lines
    snapshot_every: int = 1  # epochs between snapshots
    snapshot_max_codes: int = 5000  # latent means kept per split in a snapshot
    extra: dict = field(default_factory=dict)

    # ---- presets -------------------------------------------------------
    @classmethod
    def study(cls, dataset: str = "", **overrides) -> "TrainConfig":
        """The study's own settings (docs/study.md, "The network" and "The loss and training": part 3's notebook)."""
        values = dict(
            dataset=dataset,
            arch="seed",
            latent_dim=3,
            beta=0.001,
            gamma=0.0001,
            entanglement="seed",
            variance="constant",
            batch_size=8,
            lr=1e-4,
            epochs=10,
        )
        values.update(overrides)
        return cls(**values)

    # ---- serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return dataclass_from_dict(cls, d, "training")

    # ---- validation ----------------------------------------------------
    def validate(self, train_size: int | None = None) -> "TrainConfig":
        """Check every setting's range; raise UserError naming the setting."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise UserError(msg)

        def number(name: str, kind=float) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            if kind is int:
                ok = ok and float(v).is_integer()
            need(
                ok and math.isfinite(float(v)),
                f"{name} must be a finite {'whole ' if kind is int else ''}number, got {v!r}",
            )
            setattr(self, name, kind(v))

        need(bool(self.dataset), "dataset is not set: choose a dataset folder (generate one first)")
        need(self.arch in ARCHITECTURES, f"arch must be one of {', '.join(ARCHITECTURES)}, got {self.arch!r}")
        need(
            self.entanglement in ENTANGLEMENT_TERMS,
            f"entanglement must be one of {', '.join(ENTANGLEMENT_TERMS)}, got {self.entanglement!r}",
        )
        need(
            self.variance in VARIANCE_MODES,
            f"variance must be one of {', '.join(VARIANCE_MODES)}, got {self.variance!r}",
        )
        need(
            self.method in methods.METHODS,
            f"method must be one of {', '.join(methods.METHOD_NAMES)}, got {self.method!r}",
        )
        need(
            self.reduction in methods.REDUCTIONS,
            f"reduction must be one of {', '.join(methods.REDUCTIONS)}, got {self.reduction!r}",
        )
        need(isinstance(self.method_params, dict), "method_params must be a JSON object of the method's parameters")
        try:
            self.method_params = methods.resolve_params(self.method, self.method_params)
        except ValueError as e:
            raise UserError(str(e)) from None
        need(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in (
            "image_size",
            "latent_dim",
            "epochs",
            "batch_size",
            "seed",
            "log_every",
            "snapshot_every",
            "snapshot_max_codes",
        ):
            number(name, int)
        for name in ("beta", "gamma", "lr"):
            number(name)
        need(
            32 <= self.image_size <= 256 and self.image_size % 8 == 0,
            f"image_size must be a multiple of 8 between 32 and 256, got {self.image_size}",
        )
        multiple = ARCHITECTURES[self.arch].size_multiple
        need(
            self.image_size % multiple == 0,
            f"image_size must be a multiple of {multiple} for the {self.arch} network, got {self.image_size}",
        )
        need(2 <= self.latent_dim <= 10, f"latent_dim must be between 2 and 10, got {self.latent_dim}")
        need(self.beta >= 0, f"beta must be >= 0, got {self.beta}")
        need(self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}")
        need(0 < self.lr <= 1.0, f"lr (learning rate) must be in (0, 1], got {self.lr}")
        need(1 <= self.epochs <= 10_000, f"epochs must be between 1 and 10000, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        if train_size is not None:
            need(
                self.batch_size <= train_size,
                f"batch_size ({self.batch_size}) is larger than the training set ({train_size} images); lower it",
            )
        need(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        need(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        need(self.snapshot_every >= 1, f"snapshot_every must be >= 1, got {self.snapshot_every}")
        need(self.snapshot_max_codes >= 10, f"snapshot_max_codes must be >= 10, got {self.snapshot_max_codes}")
        return self


# ---- the Train page's settings in a URL (kept across reloads) and copied from a run ----------------
FORM_KEYS = (
    "beta",
    "gamma",
    "arch",
    "latent_dim",
    "entanglement",
    "variance",
    "method",
    "reduction",
    "epochs",
    "batch_size",
    "lr",
    "seed",
    "sample_weights",
)


def settings_to_query(cfg: dict) -> dict[str, str]:
    """The Train form's settings of a config dict as URL query parameters (text); method parameters as
    `mp.NAME`, the dataset by its folder name."""
    out = {
        k: str(cfg[k]).lower()
        if isinstance(cfg.get(k), bool)
        else f"{cfg[k]:g}"
        if isinstance(cfg.get(k), float)
        else str(cfg[k])
        for k in FORM_KEYS
        if cfg.get(k) is not None
    }
    out.update(
        {f"mp.{k}": f"{v:g}" if isinstance(v, float) else str(v) for k, v in (cfg.get("method_params") or {}).items()}
    )
    if cfg.get("dataset"):
        out["dataset"] = str(cfg["dataset"]).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return out


def settings_from_query(params: dict) -> dict:
    """Typed Train settings from query parameters (what settings_to_query wrote, or a hand-edited URL):
    unknown keys and values that do not parse as their setting's type are dropped, never raised."""
    types = {f.name: type(getattr(TrainConfig(), f.name)) for f in dataclasses.fields(TrainConfig)}
    out: dict = {}
    for key in FORM_KEYS:
        text = params.get(key)
        if text is None:
            continue
        kind = types[key]
        try:
            if kind is bool:
                if str(text).lower() not in ("true", "false"):
                    continue
                out[key] = str(text).lower() == "true"
            elif kind is int:
                out[key] = int(str(text))
            elif kind is float:
                value = float(str(text))
                if not math.isfinite(value):
                    continue
                out[key] = value
            else:
                out[key] = str(text)
        except ValueError:
            continue
    mp = {}
    for key, text in params.items():
        if key.startswith("mp."):
            try:
                mp[key[3:]] = int(text) if str(text).lstrip("-").isdigit() else float(text)
            except ValueError:
                mp[key[3:]] = str(text)
    if mp:
        out["method_params"] = mp
    if params.get("dataset"):
        out["dataset"] = str(params["dataset"])
    return out
