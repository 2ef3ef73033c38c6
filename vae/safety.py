"""Guards every change to the data folder goes through: read-only mode and the disk-space check.

Read-only mode (env `VAE_LAB_READONLY=1`) turns the lab into a viewer: every function that
writes, starts, stops or deletes calls `require_writable(action)` first and raises a `UserError`
that names the mode, so the library and the CLI refuse, not only the pages (which then do not
offer those widgets). Readers (runs, curves, reconstructions, embedding) are unaffected.

The disk guard (`require_free_space`) refuses a job whose estimated size plus a margin does not
fit on the data folder's disk, before anything is written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import UserError

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
