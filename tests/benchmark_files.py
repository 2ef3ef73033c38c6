"""Tiny files in each benchmark's exact published format, for tests without a network.

Each writer makes a file (or folder) that the real loader reads the same way it reads the original:
dSprites' npz (imgs 0/1 uint8, latents_values float64 (N, 6): color, shape, scale, orientation, posX,
posY; plus latents_classes and a pickled metadata entry, as the original has), 3D Shapes' h5 (images
(N, 64, 64, 3) uint8, labels (N, 6) float64), MPI3D's npz (images (N, 64, 64, 3) uint8, the factors implied
by row-major order), SmallNORB's binary matrices (gzip'd; magic, ndim, dims, data), and Cars3D's tar.gz
(data/cars/car_NNN_mesh.mat with "im" (H, W, 3, 24, 4)). Images carry their row number so a test can tell
that row i of the dataset is row i of the source.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np


def _marked(n: int, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """uint8 images whose first pixels spell the row number (base 256) and the rest is noise."""
    imgs = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = imgs.reshape(n, -1)
    flat[:, 0] = np.arange(n) % 256
    flat[:, 1] = np.arange(n) // 256
    return imgs


def write_dsprites(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    imgs = (rng.random((n, 64, 64)) < 0.3).astype(np.uint8)
    classes = np.column_stack(
        [
            np.zeros(n),
            rng.integers(0, 3, n),
            rng.integers(0, 6, n),
            rng.integers(0, 40, n),
            rng.integers(0, 32, n),
            rng.integers(0, 32, n),
        ]
    ).astype(np.int64)
    values = np.column_stack(
        [
            np.ones(n),
            classes[:, 1] + 1.0,
            0.5 + classes[:, 2] * 0.1,
            classes[:, 3] * 2 * np.pi / 40,
            classes[:, 4] / 31,
            classes[:, 5] / 31,
        ]
    )
    meta = np.array({"description": "tiny test copy"}, dtype=object)
    np.savez_compressed(path, imgs=imgs, latents_values=values, latents_classes=classes, metadata=meta)
    return path


def write_shapes3d(path: Path, n: int = 40, seed: int = 0) -> Path:
    import h5py

    rng = np.random.default_rng(seed)
    labels = np.column_stack(
        [
            rng.integers(0, 10, n) / 10,
            rng.integers(0, 10, n) / 10,
            rng.integers(0, 10, n) / 10,
            0.75 + rng.integers(0, 8, n) * 0.5 / 7,
            rng.integers(0, 4, n).astype(float),
            -30 + rng.integers(0, 15, n) * 60 / 14,
        ]
    )
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=_marked(n, (64, 64, 3), rng))
        f.create_dataset("labels", data=labels)
    return path


MPI3D_TINY = (2, 2, 1, 1, 1, 3, 4)  # 48 images


def write_mpi3d(path: Path, seed: int = 0) -> Path:
    n = int(np.prod(MPI3D_TINY))
    np.savez(path, images=_marked(n, (64, 64, 3), np.random.default_rng(seed)))
    return path


def _matrix(arr: np.ndarray) -> bytes:
    magic = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype(np.int32): 0x1E3D4C54}[arr.dtype]
    dims = list(arr.shape) + [1] * max(0, 3 - arr.ndim)
    head = np.array([magic, arr.ndim, *dims], dtype="<i4").tobytes()
    return head + arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def write_smallnorb(folder: Path, n: int = 30, seed: int = 0, testing: bool = True, size: int = 96) -> Path:
    from vae.data.benchmarks import BENCHMARKS

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = BENCHMARKS["smallnorb"].files
    for part, offset in ((files[:3], 0), (files[3:], n)) if testing else ((files[:3], 0),):
        dat = np.stack([_marked(n, (size, size), rng), rng.integers(0, 256, (n, size, size), dtype=np.uint8)], 1)
        dat.reshape(n, 2, -1)[:, 0, 0] = (np.arange(n) + offset) % 256
        cat = rng.integers(0, 5, n).astype(np.int32)
        info = np.column_stack(
            [rng.integers(0, 10, n), rng.integers(0, 9, n), 2 * rng.integers(0, 18, n), rng.integers(0, 6, n)]
        ).astype(np.int32)
        for src, arr in zip(part, (dat, cat, info)):
            (folder / src.name).write_bytes(gzip.compress(_matrix(arr), compresslevel=1))
    return folder


def write_cars3d(path: Path, cars: int = 2, size: int = 16, seed: int = 0) -> Path:
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tf:
        names = [f"car_{k + 1:03d}_mesh" for k in range(cars)]
        listing = ("\n".join(names) + "\n").encode()
        info = tarfile.TarInfo("data/cars/list.txt")
        info.size = len(listing)
        tf.addfile(info, io.BytesIO(listing))
        for k, name in enumerate(names):
            im = rng.integers(0, 256, (size, size, 3, 24, 4), dtype=np.uint8)
            im[0, 0, 0] = np.arange(96).reshape(4, 24).T + 96 * k  # (azimuth, elevation) -> its row
            buf = io.BytesIO()
            savemat(buf, {"im": im, "mask": np.ones((size, size, 24, 4), np.uint8)})
            data = buf.getvalue()
            info = tarfile.TarInfo(f"data/cars/{name}.mat")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
