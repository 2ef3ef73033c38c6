"""Atomic file writes: a reader never sees a half-written file.

Every file the library writes goes to a temporary file in the same folder
first and is then moved into place with `os.replace`, which is atomic on
POSIX. Temporary names start with '.' and contain '.tmp' so listings skip them.
`jsonable` turns numpy results (arrays, scalars, NaN) into data `json` can write.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from vae.base.errors import UserError


def jsonable(obj):
    """Recursively turn numpy arrays/scalars into lists/floats/ints; NaN and inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biu" or (obj.dtype.kind == "f" and np.isfinite(obj).all()):
            return obj.tolist()  # plain ints, floats and bools already: the same lists, without the walk
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


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


def check_model_file(path) -> Path:
    """`path` (a run's model.keras or last.keras) is there and is a Keras archive (a zip file); else a
    UserError that says so (Keras itself calls a damaged file "File not found")."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a model file; the run folder is damaged")
    if not path.is_file():
        raise UserError(f"run {path.parent.name} has no {path.name} yet; it is saved at the end of the first epoch")
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path} is damaged: not a Keras model archive (empty, cut short or overwritten); "
            "resume or retrain the run to write it again"
        )
    return path


class HeartbeatFile:
    """A JSON status file (a run's or a sweep's status.json) rewritten atomically at each change and
    every `every` seconds by a daemon thread, each time with a fresh `heartbeat` (unix seconds), so a
    reader can tell a live writer from a dead one.

    The file is written while the lock is held: otherwise a heartbeat holding an older snapshot
    ("running") could replace a final state ("finished") written just before it. `write_fn(data)`
    writes the file (default: atomic JSON at `path`); with `ignore_os_errors` a failed write (a full
    disk) is skipped, for a writer whose own writes report that failure."""

    def __init__(self, path, data: dict, every: float, write_fn=None, ignore_os_errors: bool = False):
        self.path = Path(path)
        self.data = data
        self.every = every
        self.lock = threading.Lock()
        self._write_fn = write_fn or (lambda d: atomic_write_json(self.path, d))
        self._ignore_os_errors = ignore_os_errors
        self._stop = threading.Event()
        self.write()

    def update(self, **fields) -> None:
        """Change fields and write the file now."""
        with self.lock:
            self.data.update(fields)
            self._write_locked()

    def write(self) -> None:
        with self.lock:
            self._write_locked()

    def _write_locked(self) -> None:
        self.data["heartbeat"] = time.time()
        try:
            self._write_fn(self.data)
        except OSError:
            if not self._ignore_os_errors:
                raise

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(self.every):
                try:
                    self.write()
                except OSError:
                    pass  # the writer's next change reports it

        threading.Thread(target=beat, name=f"heartbeat {self.path.name}", daemon=True).start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
