"""Guards every change to the data folder goes through: read-only mode and the disk-space check.

Read-only mode (env `VAE_LAB_READONLY=1`) turns the lab into a viewer: every function that
writes, starts, stops or deletes calls `require_writable(action)` first and raises a `UserError`
that names the mode, so the library and the CLI refuse, not only the pages (which then do not
offer those widgets). Readers (runs, curves, reconstructions, embedding) are unaffected.

The disk guard (`require_free_space`) refuses a job whose estimated size plus a margin does not
fit on the data folder's disk, before anything is written.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import shutil
import socket
from pathlib import Path

from vae.base.errors import UserError

READONLY_ENV = "VAE_LAB_READONLY"
_TRUE = ("1", "true", "yes", "on")


def readonly() -> bool:
    """True when the lab runs as a read-only viewer (VAE_LAB_READONLY=1)."""
    return os.environ.get(READONLY_ENV, "").strip().lower() in _TRUE


def require_writable(action: str) -> None:
    """Raise UserError if the lab is read-only; call at the top of every mutating function."""
    if readonly():
        raise UserError(f"cannot {action}: the lab is in read-only mode ({READONLY_ENV}=1); "
                        f"restart it without {READONLY_ENV} to change data")


# ------------------------------------------------------------------ disk guard
MARGIN_ENV = "VAE_LAB_DISK_MARGIN_MB"
DEFAULT_MARGIN_MB = 256
BLOCK = 4096  # a file takes whole filesystem blocks: thousands of small PNGs cost more than their bytes


def on_disk(nbytes: float) -> int:
    """Bytes a file of `nbytes` takes on disk (whole blocks)."""
    return int(-(-max(float(nbytes), 1.0) // BLOCK) * BLOCK)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def margin_bytes() -> int:
    """Free space kept besides a job's estimate (env VAE_LAB_DISK_MARGIN_MB, default 256 MB)."""
    try:
        mb = float(os.environ.get(MARGIN_ENV, DEFAULT_MARGIN_MB))
    except ValueError:
        mb = DEFAULT_MARGIN_MB
    return int(max(mb, 0.0) * 1024 ** 2)


def free_bytes(path) -> int:
    """Free bytes (for an unprivileged user) on the disk holding `path` (or its nearest existing parent)."""
    p = Path(path).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return int(shutil.disk_usage(p).free)


def require_free_space(path, need: int, action: str) -> None:
    """Raise UserError, before anything is written, if `need` bytes plus the margin do not fit."""
    free, margin = free_bytes(path), margin_bytes()
    if free < need + margin:
        raise UserError(f"not enough free disk space to {action}: it needs about {human_bytes(need)} plus a "
                        f"{human_bytes(margin)} margin, and the disk holding {Path(path).resolve()} has "
                        f"{human_bytes(free)} free. Free some space (delete old datasets or runs) or make the job "
                        f"smaller ({MARGIN_ENV} sets the margin)")


# ---- what a run writes (checkpoints, snapshots, metrics), without TensorFlow

def param_count(arch: str, image_size: int, latent_dim: int, variance: str = "constant") -> int:
    """Parameters of vae.model.networks's encoder + decoder, counted from the layer shapes (tested against Keras).

    An architecture this function does not know is counted as the larger of the two known ones.
    """
    S, L = int(image_size), int(latent_dim)
    heads = 2 if variance == "learned" else 1
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    if arch == "seed":
        s, cin, enc = S, 1, 0
        for f in (64, 64, 128, 128):
            enc += conv(3, cin, f)
            s, cin = -(-(s - 2) // 2), f  # valid 3x3 conv, then 2x2 'same' max pooling
        enc += heads * (s * s * 128 * L + L)
        t = S // 8
        dec = L * t * t * 16 + conv(3, 16, 64) + conv(3, 64, 64) + conv(3, 64, 128) + conv(1, 128, 256)
        dec += 4 * (64 + 64 + 128 + 256) + conv(1, 256, 1)  # batch norms (4 vectors each), logits
        return enc + dec
    if arch == "burgess":
        t = S // 16
        flat = t * t * 32
        enc = conv(4, 1, 32) + 3 * conv(4, 32, 32) + flat * 256 + 256 + 256 * 256 + 256 + heads * (256 * L + L)
        dec = L * 256 + 256 + 256 * 256 + 256 + 256 * flat + flat + 3 * conv(4, 32, 32) + conv(4, 32, 1)
        return enc + dec
    return max(param_count(a, S, L, variance) for a in ("seed", "burgess"))


def estimate_run_bytes(cfg, counts: dict, epochs: int | None = None) -> dict:
    """Bytes a run writes for `epochs` more epochs (default: all): {"checkpoints", "snapshots", "logs", "total"}.

    Checkpoints: last.keras and model.keras hold the weights and Adam's two moments (float32), and
    a save writes a temporary copy first: 3 files of 12 bytes per parameter + 64 KB each. Snapshots:
    per snapshot epoch, 20 reconstructions and the latent means and ids of every split (at most
    snapshot_max_codes each), stored uncompressed as an upper bound. Logs: metrics.jsonl lines and
    TensorBoard scalars.
    """
    epochs = cfg.epochs if epochs is None else max(int(epochs), 0)
    params = param_count(cfg.arch, cfg.image_size, cfg.latent_dim, cfg.variance)
    if getattr(cfg, "method", None) == "factor-vae":  # its discriminator (and its Adam state) is saved too
        mp = getattr(cfg, "method_params", None) or {}
        units, layers = int(mp.get("disc_units", 1000)), int(mp.get("disc_layers", 6))
        params += cfg.latent_dim * units + units + (layers - 1) * (units * units + units) + 2 * units + 2
    checkpoints = 3 * on_disk(12 * params + 65536)
    n_snap = len([e for e in range(cfg.epochs - epochs + 1, cfg.epochs + 1)
                  if e % cfg.snapshot_every == 0 or e == cfg.epochs])
    codes = sum(min(int(n), cfg.snapshot_max_codes) for n in counts.values())
    snapshots = n_snap * on_disk(20 * cfg.image_size ** 2 + 28 + codes * (4 * cfg.latent_dim + 8) + 4096)
    steps = -(-int(counts.get("train", 0)) // max(int(cfg.batch_size), 1))
    logs = epochs * ((steps // max(int(cfg.log_every), 1) + 2) * 1024 + 8192)
    total = checkpoints + snapshots + logs
    return {"checkpoints": checkpoints, "snapshots": snapshots, "logs": logs, "total": total}


def require_run_space(cfg, counts: dict, run_dir, epochs: int | None = None) -> None:
    """Refuse to train when the run's checkpoints, snapshots and logs (plus the margin) do not fit."""
    epochs = cfg.epochs if epochs is None else epochs
    need = estimate_run_bytes(cfg, counts, epochs)["total"]
    require_free_space(run_dir, need, f"train run {Path(run_dir).name} ({epochs} epoch{'s' if epochs != 1 else ''})")


# ------------------------------------------------------------------ where the dashboard listens
@functools.lru_cache(maxsize=32)
def is_loopback_address(address: str | None) -> bool:
    """True if a server bound to `address` is reachable from this machine only.

    An empty address means every interface (Streamlit's default without .streamlit/config.toml).
    A host name counts as loopback only if every address it resolves to is one.
    """
    a = (address or "").strip().strip("[]")
    if not a:
        return False
    if a.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(a, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)
