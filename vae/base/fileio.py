"""Atomic file writes: a reader never sees a half-written file.

Every file the library writes goes to a temporary file in the same folder
first and is then moved into place with `os.replace`, which is atomic on
POSIX. Temporary names start with '.' and contain '.tmp' so listings skip them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from vae.base.errors import UserError


def _tmp_path(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_with(path: str | os.PathLike, save_fn, suffix: str = "") -> None:
    """Call `save_fn(tmp_path)` to write a file, then move it into place.

    For writers that need a real path with a given extension (Keras wants
    `.keras`): `suffix` is appended to the temporary name.
    """
    path = Path(path)
    tmp = _tmp_path(path, suffix)
    try:
        save_fn(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a file's bytes to `dst` atomically (a reader sees the old or the new file, never a part)."""
    atomic_save_with(dst, lambda tmp: shutil.copyfile(src, tmp), suffix=Path(dst).suffix)


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dataclass_from_dict(cls, d: dict, what: str):
    """Build dataclass `cls` from a JSON dict, refusing unknown keys with a UserError."""
    if not isinstance(d, dict):
        raise UserError(f"{what} must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise UserError(f"unknown {what} setting(s): {', '.join(unknown)}; remove them or upgrade the lab")
    return cls(**d)
