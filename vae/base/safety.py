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
import math
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
        raise UserError(
            f"cannot {action}: the lab is in read-only mode ({READONLY_ENV}=1); "
            f"restart it without {READONLY_ENV} to change data"
        )


# ------------------------------------------------------------------ numbers from the environment
def env_number(
    name: str, default: float, integer: bool = False, zero_ok: bool = False, maximum: float | None = None
) -> float:
    """The environment variable `name` as a finite positive number (`default` when unset or empty).

    Raises UserError naming the variable when its value is not a number, not finite (nan, inf), negative,
    zero (unless `zero_ok`), not a whole number (when `integer`) or over `maximum`: a typo must not become
    "no margin", "no limit" or a crash deep inside a job.
    """
    raw = os.environ.get(name, "")
    if not raw.strip():
        return int(default) if integer else float(default)
    want = ("a whole number" if integer else "a number") + (" >= 0" if zero_ok else " > 0")
    if maximum is not None:
        want += f" and <= {maximum:g}"
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    bad = (
        not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_ok)
        or (integer and value != int(value))
        or (maximum is not None and value > maximum)
    )
    if bad:
        raise UserError(
            f"environment variable {name}={raw!r} is not {want}; set it to one "
            f"(e.g. {name}={int(default) if integer else default:g}) or unset it for the default"
        )
    return int(value) if integer else value


# ------------------------------------------------------------------ disk guard
MARGIN_ENV = "VAE_LAB_DISK_MARGIN_MB"
DEFAULT_MARGIN_MB = 256
BLOCK = 4096  # a file takes whole filesystem blocks: thousands of small PNGs cost more than their bytes


def on_disk(nbytes: float) -> int:
    """Bytes a file of `nbytes` takes on disk (whole blocks)."""
    return int(-(-max(float(nbytes), 1.0) // BLOCK) * BLOCK)


def human_bytes(n: float) -> str:
    """Bytes for people, in steps of 1024 labelled B, KB, MB, GB, TB ("1.5 GB"), the pages and the errors alike."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def margin_bytes() -> int:
    """Free space kept besides a job's estimate (env VAE_LAB_DISK_MARGIN_MB, default 256 MB; 0 is allowed)."""
    return int(env_number(MARGIN_ENV, DEFAULT_MARGIN_MB, zero_ok=True) * 1024**2)


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
        raise UserError(
            f"not enough free disk space to {action}: it needs about {human_bytes(need)} plus a "
            f"{human_bytes(margin)} margin, and the disk holding {Path(path).resolve()} has "
            f"{human_bytes(free)} free. Free some space (delete old datasets or runs) or make the job "
            f"smaller ({MARGIN_ENV} sets the margin)"
        )


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
    n_snap = len(
        [e for e in range(cfg.epochs - epochs + 1, cfg.epochs + 1) if e % cfg.snapshot_every == 0 or e == cfg.epochs]
    )
    codes = sum(min(int(n), cfg.snapshot_max_codes) for n in counts.values())
    snapshots = n_snap * on_disk(20 * cfg.image_size**2 + 28 + codes * (4 * cfg.latent_dim + 8) + 4096)
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


# ------------------------------------------------------------------ which host names the dashboard answers to
HOSTS_ENV = "VAE_LAB_ALLOWED_HOSTS"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def allowed_hosts() -> list[str]:
    """The host names the dashboard answers to: loopback ones, plus VAE_LAB_ALLOWED_HOSTS (comma-separated).

    A name in the list is a host name or IP address (no port, no scheme); `*.example.org` allows its
    subdomains and `*` allows any host (DNS rebinding then works again: only for a trusted network).
    Raises UserError naming the entry that is not one.
    """
    import re

    extra = []
    for item in os.environ.get(HOSTS_ENV, "").split(","):
        name = item.strip().lower().rstrip(".")
        if not name:
            continue
        bare = name.strip("[]")
        try:
            extra.append(str(ipaddress.ip_address(bare)))
            continue
        except ValueError:
            pass
        if name == "*" or re.fullmatch(r"(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62}\.)*[a-z0-9_-]{1,63}", name):
            extra.append(name)
        else:
            raise UserError(
                f"{HOSTS_ENV} entry {item.strip()!r} is not a host name or IP address; list names "
                f"separated by commas, without scheme or port (e.g. {HOSTS_ENV}=lab.example.org,10.0.0.5)"
            )
    return list(dict.fromkeys([*LOOPBACK_HOSTS, *extra]))


def host_of(header: str | None) -> str | None:
    """The host name of an HTTP Host header ('example.org:8501' -> 'example.org', '[::1]:80' -> '::1'),
    lower-case; None when it is missing or malformed."""
    from urllib.parse import urlsplit

    if not header or any(c in header for c in "/?#@\\ \t"):
        return None
    try:
        parts = urlsplit("//" + header)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return None
    return (parts.hostname or "").rstrip(".") or None


def host_allowed(header: str | None, allowed) -> bool:
    """True if a request with this Host header is for one of the `allowed` names (see allowed_hosts)."""
    host = host_of(header)
    if host is None:
        return False
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    for pattern in allowed:
        if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


class HostGuard:
    """ASGI middleware: requests and websockets whose Host header is not an allowed name get nothing.

    Plain ASGI (no framework): an HTTP request gets 403 with a one-line text, a websocket is closed
    before it is accepted (the server answers the handshake with 403). It stops DNS rebinding: a web
    page whose own name points at 127.0.0.1 sends its own name as Host, which is not on the list.
    """

    def __init__(self, app, hosts=None):
        self.app = app
        self.allowed = list(hosts) if hosts is not None else allowed_hosts()

    async def __call__(self, scope, receive, send):
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        if host_allowed(headers.get("host"), self.allowed):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        body = (
            f"This VAE Lab server does not answer to the host name {host_of(headers.get('host'))!r}. "
            f"Open it as http://localhost, or list the name in {HOSTS_ENV} when you start it.\n"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------ folders the dashboard may import from
IMPORT_ROOTS_ENV = "VAE_LAB_IMPORT_ROOTS"


def import_roots(data_root) -> list[Path]:
    """Folders the dashboard's folder import may read: the data root and VAE_LAB_IMPORT_ROOTS (os.pathsep-separated)."""
    roots = [Path(data_root).resolve()]
    for item in os.environ.get(IMPORT_ROOTS_ENV, "").split(os.pathsep):
        if item.strip():
            roots.append(Path(item.strip()).expanduser().resolve())
    return roots


def require_import_folder(folder, data_root) -> Path:
    """The folder (resolved, symbolic links followed) if it lies in an import root; UserError otherwise.

    The dashboard's server may run for other people: a typed path must not read any folder the server can.
    The CLI, run from the user's own shell, does not call this.
    """
    path = Path(str(folder).strip()).expanduser()
    if not path.is_absolute():
        path = Path(data_root) / path
    real = path.resolve()
    roots = import_roots(data_root)
    if not any(real == r or r in real.parents for r in roots):
        raise UserError(
            f"the dashboard imports folders only from under {', '.join(str(r) for r in roots)}; "
            f"move the images there, list their folder in {IMPORT_ROOTS_ENV} when you start the lab, "
            f"or use `python -m vae import {folder} --out ...`"
        )
    return real


# ------------------------------------------------------------------ every setting read from the environment
def check_environment() -> list[str]:
    """One line per environment variable of the lab that holds a bad value (empty: all good).

    The dashboard shows these at start and the CLI refuses with them, instead of failing later
    inside a job.
    """
    checks = [
        lambda: margin_bytes(),
        allowed_hosts,
        lambda: env_number("VAE_LAB_MAX_TRAINERS", 1, integer=True, maximum=1024),
        lambda: env_number("VAE_LAB_STANDBY_IDLE_S", 600.0),
    ]
    problems = []
    for check in checks:
        try:
            check()
        except UserError as e:
            problems.append(str(e))
    return problems
