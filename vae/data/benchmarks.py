"""The field's benchmark datasets, read from the files researchers already have (numpy, h5py, scipy.io).

dSprites (Matthey et al. 2017, `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`), 3D Shapes (Burgess & Kim
2018, `3dshapes.h5`), MPI3D (Gondal et al. 2019, `mpi3d_{toy,realistic,real}.npz`), SmallNORB (LeCun et al.
2004, the six `smallnorb-*.mat.gz` files) and Cars3D (Reed et al. 2015, `nips2015-analogy-data.tar.gz`), as
disentanglement_lib and disent load them. Each file is checked against the MD5 its users publish (disent's
`uri_hash` "full", and for dSprites' npz the MD5 in common use), then converted into the lab's dataset folder
(vae.data.datasets): grayscale uint8 images at the chosen size (colour sets are converted with ITU-R 601 luma,
as Pillow's "L" mode does), the factor table with its factors' names, a seeded random 10% validation split,
and an optional subsample, plain or with two factors correlated (vae.data.correlation).

Large files are streamed: an npz member, a gzip'd matrix and a tar member are read in blocks of rows, so
converting a subsample of dSprites never holds the 3 GB image array in memory. Names and sizes are checked
before anything is read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vae.base.errors import UserError
from vae.base.safety import require_free_space, require_writable
from vae.data.correlation import correlated_rows
from vae.data.datasets import _csv_text, _folder_estimate, _meta, _png_bytes, _TempDataset, _write_folder
from vae.data.presets import DatasetSpec
from vae.data.render import to_training_size

BLOCK = 2048  # rows read per block from a stream
MAX_MEMBER_SLACK = 1 << 20  # an npz member may exceed its array by at most this (header, padding)


# ------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class SourceFile:
    """One file of a benchmark as published: its name, official address and MD5."""

    name: str
    url: str
    md5: str


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    files: tuple[SourceFile, ...]
    factor_names: tuple[str, ...]
    n_images: int  # the published set's image count
    colour: bool
    source_size: int  # the published images' side in pixels
    needs: int = 0  # files that must be present (the rest are optional: SmallNORB's test half)
    notes: str = ""
    opener: Callable = field(default=None, repr=False, compare=False)

    @property
    def required(self) -> tuple[SourceFile, ...]:
        return self.files[: self.needs or len(self.files)]


_DL = "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/"
_NORB = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"


def _norb_files(part: str, instances: str, md5s: tuple[str, str, str]) -> tuple[SourceFile, ...]:
    return tuple(
        SourceFile(
            f"smallnorb-5x{instances}x9x18x6x2x96x96-{part}-{kind}.mat.gz",
            f"{_NORB}smallnorb-5x{instances}x9x18x6x2x96x96-{part}-{kind}.mat.gz",
            md5,
        )
        for kind, md5 in zip(("dat", "cat", "info"), md5s)
    )


# ------------------------------------------------------------------ streams
def _npy_header(f) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, header bytes) of an .npy stream positioned at its start."""
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    if fortran:
        raise UserError("the array is stored in Fortran order, which the original files never are")
    return tuple(int(s) for s in shape), np.dtype(dtype), f.tell()


def _stream_rows(f, row_shape: tuple, dtype: np.dtype, n: int, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (position in `rows`, images) blocks for the sorted row indices `rows` of an (n, *row_shape) stream."""
    row_bytes = int(np.prod(row_shape)) * dtype.itemsize
    done = 0
    for start in range(0, n, BLOCK):
        if done >= len(rows):
            return
        stop = min(n, start + BLOCK)
        buf = f.read((stop - start) * row_bytes)
        if len(buf) != (stop - start) * row_bytes:
            raise UserError("the file ends early (truncated download?); download it again")
        hi = int(np.searchsorted(rows, stop))
        if hi > done:
            block = np.frombuffer(buf, dtype=dtype).reshape((stop - start, *row_shape))
            yield done, block[rows[done:hi] - start]
            done = hi


def _npz_member(zf: zipfile.ZipFile, key: str, path: Path):
    """(open stream, shape, dtype) of array `key` in an npz, its name and size checked before reading data."""
    name = key + ".npy"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise UserError(
            f"{path.name} has no array {key!r} (it holds {', '.join(zf.namelist()[:8])}); is it the right file?"
        ) from None
    f = zf.open(info)
    shape, dtype, header = _npy_header(f)
    expected = int(np.prod(shape)) * dtype.itemsize + header
    if not expected <= info.file_size <= expected + MAX_MEMBER_SLACK:
        raise UserError(
            f"{path.name}: {name} claims {info.file_size:,} bytes but its header describes "
            f"{expected:,}; the file is damaged"
        )
    return f, shape, dtype


@dataclass
class Table:
    """An opened benchmark: n rows, the factor table, and a reader of images by sorted row index."""

    n: int
    factors: dict[str, np.ndarray]
    read: Callable[[np.ndarray], Iterator[tuple[int, np.ndarray]]]
    close: Callable[[], None] = lambda: None


def _check_shape(path: Path, what: str, shape: tuple, expect_tail: tuple, n: int | None = None) -> None:
    if tuple(shape[1:]) != tuple(expect_tail) or (n is not None and shape[0] != n):
        want = (n if n is not None else "N", *expect_tail)
        raise UserError(f"{path.name}: {what} has shape {shape}, expected {want}; is it the right file?")


def _grid_factors(names: tuple[str, ...], sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The factor indices of a table stored in row-major order over `sizes` (the last factor fastest)."""
    idx = np.indices(sizes).reshape(len(sizes), -1)
    return {name: idx[k].astype(np.int64) for k, name in enumerate(names)}


# ------------------------------------------------------------------ the five openers
def _open_dsprites(path: Path) -> Table:
    zf = _open_zip(path)
    for key in ("imgs", "latents_values"):
        if key + ".npy" not in zf.namelist():
            zf.close()
            raise UserError(
                f"{path.name} has no {key!r} array; dSprites' npz holds imgs, latents_values, "
                f"latents_classes and metadata"
            )
    f, shape, dtype = _npz_member(zf, "latents_values", path)
    with f:
        values = np.frombuffer(f.read(), dtype=dtype).reshape(shape)
    _check_shape(path, "latents_values", shape, (6,))
    n = shape[0]
    # latents: color (always 1), shape (1, 2, 3), scale, orientation (radians), posX, posY
    factors = {
        "shape": np.rint(values[:, 1]).astype(np.int64),
        "scale": values[:, 2],
        "rotation": values[:, 3],
        "x": values[:, 4],
        "y": values[:, 5],
    }

    def read(rows):
        f, shape, dtype = _npz_member(zf, "imgs", path)
        _check_shape(path, "imgs", shape, shape[1:], n)
        if len(shape) != 3 or dtype != np.uint8:
            raise UserError(f"{path.name}: imgs is {dtype} {shape}, expected uint8 (N, 64, 64)")
        for pos, block in _stream_rows(f, shape[1:], dtype, n, rows):
            yield pos, (block * 255).astype(np.uint8)  # dSprites stores 0/1

    return Table(n, factors, read, zf.close)


def _open_shapes3d(path: Path) -> Table:
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path.name} is not a readable HDF5 file ({exc}); 3D Shapes is 3dshapes.h5") from None
    if "images" not in h5 or "labels" not in h5:
        h5.close()
        raise UserError(f"{path.name} lacks 'images' or 'labels'; is it 3dshapes.h5?")
    images, labels = h5["images"], h5["labels"]
    _check_shape(path, "images", images.shape, (64, 64, 3))
    _check_shape(path, "labels", labels.shape, (6,), images.shape[0])
    lab = np.asarray(labels[...], dtype=np.float64)
    names = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    factors = {k: lab[:, i] for i, k in enumerate(names)}
    factors["shape"] = np.rint(factors["shape"]).astype(np.int64)

    def read(rows):
        for start in range(0, len(rows), BLOCK):
            yield start, np.asarray(images[rows[start : start + BLOCK]], dtype=np.uint8)

    return Table(int(images.shape[0]), factors, read, h5.close)


MPI3D_NAMES = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
# The published layouts, by image count: the first release (4 colours, 4 shapes) and the final one (6, 6).
MPI3D_LAYOUTS = {460_800: (4, 4, 2, 3, 3, 40, 40), 1_036_800: (6, 6, 2, 3, 3, 40, 40)}


def _open_mpi3d(path: Path, layouts: dict | None = None) -> Table:
    layouts = MPI3D_LAYOUTS if layouts is None else layouts
    zf = _open_zip(path)
    f, shape, dtype = _npz_member(zf, "images", path)
    f.close()
    _check_shape(path, "images", shape, (64, 64, 3))
    n = shape[0]
    if n not in layouts:
        zf.close()
        raise UserError(
            f"{path.name} holds {n:,} images; MPI3D's releases hold {' or '.join(f'{k:,}' for k in layouts)}"
        )
    factors = _grid_factors(MPI3D_NAMES, layouts[n])

    def read(rows):
        f, shape, dtype = _npz_member(zf, "images", path)
        yield from _stream_rows(f, shape[1:], dtype, n, rows)

    return Table(n, factors, read, zf.close)


_MATRIX_TYPES = {
    0x1E3D4C55: np.uint8,
    0x1E3D4C54: np.int32,
    0x1E3D4C56: np.int16,
    0x1E3D4C51: np.float32,
    0x1E3D4C53: np.float64,
}


def _open_matrix(path: Path):
    """(stream, shape, dtype) of a SmallNORB binary matrix file (gzip'd or not), positioned at its data.

    The format (cs.nyu.edu/~ylclab/data/norb-v1.0-small): int32 magic (the element type), int32 ndim, then
    max(3, ndim) int32 dimensions, little-endian; then the data, last dimension fastest.
    """
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    f = gzip.open(path, "rb") if gz else open(path, "rb")
    try:
        head = np.frombuffer(f.read(8), dtype="<i4")
        if len(head) != 2 or int(head[0]) not in _MATRIX_TYPES or not 1 <= int(head[1]) <= 8:
            raise UserError(f"{path.name} is not a SmallNORB matrix file (bad header)")
        ndim = int(head[1])
        dims = np.frombuffer(f.read(4 * max(3, ndim)), dtype="<i4")[:ndim]
    except (OSError, EOFError) as exc:
        f.close()
        raise UserError(f"{path.name} cannot be read ({exc})") from None
    except UserError:
        f.close()
        raise
    return f, tuple(int(d) for d in dims), np.dtype(_MATRIX_TYPES[int(head[0])]).newbyteorder("<")


def _open_smallnorb(folder: Path) -> Table:
    bench = BENCHMARKS["smallnorb"]
    if not folder.is_dir():
        raise UserError(f"SmallNORB is six files; give the folder that holds them, not {folder.name}")
    halves = []
    for k, part in enumerate((bench.files[:3], bench.files[3:])):
        paths = [folder / s.name for s in part]
        if all(p.is_file() for p in paths):
            halves.append(paths)
        elif k == 0:
            missing = ", ".join(p.name for p in paths if not p.is_file())
            raise UserError(f"{folder.name} lacks {missing}; SmallNORB's training files are required")
    cats, infos, dats = [], [], []
    for dat, cat, info in halves:
        f, shape, dtype = _open_matrix(cat)
        cats.append(np.frombuffer(f.read(), dtype=dtype)[: shape[0]].astype(np.int64))
        f.close()
        f, shape, dtype = _open_matrix(info)
        infos.append(np.frombuffer(f.read(), dtype=dtype).reshape(shape).astype(np.int64))
        f.close()
        f, shape, dtype = _open_matrix(dat)
        f.close()
        if len(shape) != 4 or shape[1] != 2 or shape[0] != len(cats[-1]) or len(infos[-1]) != shape[0]:
            raise UserError(f"{dat.name} holds {shape}; expected (N, 2, H, W) with N = the rows of {cat.name}")
        dats.append((dat, shape, dtype))
    cat, info = np.concatenate(cats), np.concatenate(infos)
    # info: instance, elevation (0..8), azimuth (0, 2, ..., 34), lighting (0..5); we keep the first camera
    factors = {
        "category": cat,
        "instance": info[:, 0],
        "elevation": info[:, 1],
        "azimuth": info[:, 2] // 2,
        "lighting": info[:, 3],
    }
    n = len(cat)

    def read(rows):
        offset = 0
        for dat, shape, dtype in dats:
            part = rows[(rows >= offset) & (rows < offset + shape[0])] - offset
            first = int(np.searchsorted(rows, offset))
            f, _, _ = _open_matrix(dat)
            with f:
                for pos, block in _stream_rows(f, shape[1:], dtype, shape[0], part):
                    yield first + pos, np.ascontiguousarray(block[:, 0])
            offset += shape[0]

    return Table(n, factors, read)


_CAR = re.compile(r"(?:^|/)cars/(car_[0-9]{3}_mesh)\.mat$")
MAX_CAR_BYTES = 64 << 20


def _open_cars3d(path: Path) -> Table:
    from scipy.io import loadmat

    if path.is_dir():
        found = sorted(
            (m.group(1), p) for p in path.rglob("*.mat") if (m := _CAR.search(p.relative_to(path).as_posix()))
        )
        cars = [(name, (lambda p=p: p.read_bytes()), p.stat().st_size) for name, p in found]
        closer = lambda: None  # noqa: E731
    else:
        try:
            tf = tarfile.open(path)
        except (tarfile.TarError, OSError) as exc:
            raise UserError(
                f"{path.name} is not a readable tar archive ({exc}); Cars3D is nips2015-analogy-data.tar.gz"
            ) from None
        members = sorted(
            (m.group(1), info) for info in tf.getmembers() if info.isfile() and (m := _CAR.search(info.name))
        )
        cars = [(name, (lambda i=info: tf.extractfile(i).read()), info.size) for name, info in members]
        closer = tf.close
    if not cars:
        closer()
        raise UserError(f"{path.name} holds no cars/car_NNN_mesh.mat files; is it Cars3D's archive?")
    for name, _, size in cars:
        if size > MAX_CAR_BYTES:
            closer()
            raise UserError(f"{name}.mat is {size:,} bytes, over the {MAX_CAR_BYTES:,} a Cars3D file can be")
    views = 4 * 24
    factors = {
        "elevation": np.tile(np.repeat(np.arange(4), 24), len(cars)),
        "azimuth": np.tile(np.arange(24), 4 * len(cars)),
        "object": np.repeat(np.arange(len(cars)), views),
    }

    def read(rows):
        done = 0
        for k, (name, load, _) in enumerate(cars):
            hi = int(np.searchsorted(rows, (k + 1) * views))
            if hi == done:
                continue
            try:
                im = loadmat(io.BytesIO(load()))["im"]
            except (ValueError, KeyError, OSError, TypeError) as exc:
                raise UserError(f"{name}.mat cannot be read as Cars3D ({exc})") from None
            if im.ndim != 5 or im.shape[2:] != (3, 24, 4):
                raise UserError(f"{name}.mat holds 'im' of shape {im.shape}, expected (H, W, 3, 24, 4)")
            stack = np.transpose(im, (4, 3, 0, 1, 2)).reshape(views, *im.shape[:2], 3)  # elevation, azimuth
            yield done, np.asarray(stack[rows[done:hi] - k * views], dtype=np.uint8)
            done = hi

    return Table(len(cars) * views, factors, read, closer)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path.name} is not a readable npz file ({exc})") from None


def _mpi3d(variant: str, md5: str) -> Benchmark:
    """One of MPI3D's three image sets of the same factors: toy (simple renders), realistic (realistic renders), real (photographs)."""
    name = f"mpi3d_{variant}.npz"
    return Benchmark(
        f"mpi3d-{variant}",
        f"MPI3D ({variant})",
        (SourceFile(name, _DL + name, md5),),
        MPI3D_NAMES,
        1_036_800,
        True,
        64,
        opener=_open_mpi3d,
    )


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "dsprites",
            "dSprites",
            (
                SourceFile(
                    "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                    "https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                    "7da33b31b13a06f4b04a70402ce90c2e",
                ),
            ),
            ("shape", "scale", "rotation", "x", "y"),
            737_280,
            False,
            64,
            opener=_open_dsprites,
            notes="the lab's `dsprites` preset renders look-alikes of this table",
        ),
        Benchmark(
            "shapes3d",
            "3D Shapes",
            (
                SourceFile(
                    "3dshapes.h5",
                    "https://storage.googleapis.com/3d-shapes/3dshapes.h5",
                    "099a2078d58cec4daad0702c55d06868",
                ),
            ),
            ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
            480_000,
            True,
            64,
            opener=_open_shapes3d,
            notes="the three hues become grey levels",
        ),
        _mpi3d("toy", "55889cb7c7dfc655d6e0277beee88868"),
        _mpi3d("realistic", "59a6225b88b635365f70c91b3e52f70f"),
        _mpi3d("real", "0f33f609918fb5c97996692f91129802"),
        Benchmark(
            "smallnorb",
            "SmallNORB",
            _norb_files(
                "training",
                "46789",
                (
                    "66054832f9accfe74a0f4c36a75bc0a2",
                    "23c8b86101fbf0904a000b43d3ed2fd9",
                    "51dee1210a742582ff607dfd94e332e3",
                ),
            )
            + _norb_files(
                "testing",
                "01235",
                (
                    "e4ad715691ed5a3a5f138751a4ceb071",
                    "5aa791cd7e6016cf957ce9bdb93b8603",
                    "a9454f3864d7fd4bb3ea7fc3eb84924e",
                ),
            ),
            ("category", "instance", "elevation", "azimuth", "lighting"),
            48_600,
            False,
            96,
            needs=3,
            opener=_open_smallnorb,
            notes="the training half is required, the testing half joins it when present; "
            "the first of each stereo pair is kept",
        ),
        Benchmark(
            "cars3d",
            "Cars3D",
            (
                SourceFile(
                    "nips2015-analogy-data.tar.gz",
                    "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz",
                    "4e866a7919c1beedf53964e6f7a23686",
                ),
            ),
            ("elevation", "azimuth", "object"),
            17_568,
            True,
            128,
            opener=_open_cars3d,
            notes="reads cars/car_NNN_mesh.mat from the archive or an unpacked folder",
        ),
    )
}


def benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UserError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}") from None


# ------------------------------------------------------------------ checksums and downloads
def md5_of(path, progress=None) -> str:
    h, done, total = hashlib.md5(), 0, os.path.getsize(path)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return h.hexdigest()


def source_paths(name: str, path) -> list[tuple[SourceFile, Path]]:
    """The benchmark's files found at `path` (a file, or a folder holding them), required ones checked."""
    bench, path = benchmark(name), Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; give the downloaded file (or folder), or use --download")
    if bench.name == "cars3d" and path.is_dir():
        return []  # an unpacked archive: no single file to check
    if path.is_file():
        if len(bench.required) != 1:
            raise UserError(f"{bench.title} is {len(bench.files)} files; give the folder that holds them")
        return [(bench.files[0], path)]
    found = [(s, path / s.name) for s in bench.files if (path / s.name).is_file()]
    missing = [s.name for s in bench.required if not (path / s.name).is_file()]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; download {bench.title} there (or use --download)")
    return found


def downloads_folder(root, name: str) -> Path:
    """Where the lab keeps (and the Dataset page looks for) a benchmark's files: <data root>/downloads/<name>/."""
    return Path(root) / "downloads" / benchmark(name).name


def local_source(root, name: str) -> Path | None:
    """The path to convert from when the benchmark's required files are in its downloads folder, else None.

    The Dataset page reads only this folder (not any path a browser names); the CLI reads any path.
    """
    bench, folder = benchmark(name), downloads_folder(root, name)
    if not all((folder / s.name).is_file() for s in bench.required):
        return None
    return folder / bench.files[0].name if len(bench.files) == 1 else folder


def describe(name: str) -> str:
    """One line for people: the set, its image count and size in memory at 64 px gray, its files."""
    b = benchmark(name)
    files = ", ".join(s.name for s in b.required) + (" (+ the testing half, optional)" if b.needs else "")
    return (
        f"{b.title}: {b.n_images:,} images of {b.source_size}x{b.source_size} px"
        f"{' colour (converted to gray)' if b.colour else ''}, factors {', '.join(b.factor_names)}; "
        f"{b.n_images * 64 * 64 / 1e9:.1f} GB as 64x64 uint8 in memory. Files: {files}."
    )


def verify(name: str, path, progress=None) -> list[dict]:
    """Check each of the benchmark's files at `path` against its published MD5; raise UserError on a mismatch."""
    out = []
    for src, p in source_paths(name, path):
        digest = md5_of(p, progress)
        if digest != src.md5:
            raise UserError(
                f"{p.name} has MD5 {digest}, but the published file's is {src.md5}: it is not the "
                f"original (a partial or damaged download?). Download it again, or convert it "
                f"anyway with --no-verify (dataset.json records that it was not verified)"
            )
        out.append({"file": p.name, "md5": digest, "bytes": p.stat().st_size})
    return out


def download(
    name: str, dest_dir, progress=None, sources: tuple[SourceFile, ...] | None = None, timeout: float = 60.0
) -> Path:
    """Download the benchmark's files from their official addresses into `dest_dir` (checked, atomic).

    Each file goes to a temporary name, its MD5 is checked, and only then is it renamed; a file already
    there with the right MD5 is kept. Returns the path to give import_benchmark (the file, or the folder).
    `sources` replaces the published list (a mirror; the tests use file:// addresses).
    """
    require_writable(f"download {name}")
    bench = benchmark(name)
    sources = bench.files if sources is None else sources
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        final = dest / src.name
        if final.is_file() and md5_of(final) == src.md5:
            continue
        try:
            resp = urllib.request.urlopen(src.url, timeout=timeout)
        except (OSError, ValueError) as exc:
            raise UserError(
                f"cannot download {src.url} ({getattr(exc, 'reason', exc)}); is this machine "
                f"online? Otherwise download it elsewhere and give its path"
            ) from None
        total = int(resp.headers.get("Content-Length") or 0)
        require_free_space(dest, total, f"download {src.name}")
        fd, tmp = tempfile.mkstemp(prefix=f".{src.name}.", suffix=".part", dir=dest)
        h, done = hashlib.md5(), 0
        try:
            with resp, os.fdopen(fd, "wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, max(total, done))
            if h.hexdigest() != src.md5:
                raise UserError(
                    f"the download of {src.name} has MD5 {h.hexdigest()}, not the published "
                    f"{src.md5}; nothing was kept. Try again"
                )
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return dest / sources[0].name if len(bench.files) == 1 else dest


# ------------------------------------------------------------------ conversion
def to_gray(images: np.ndarray) -> np.ndarray:
    """uint8 (k, H, W, 3) -> (k, H, W) with ITU-R 601 luma, exactly as Pillow's convert("L")."""
    if images.ndim == 3:
        return images
    rgb = images.astype(np.uint32)
    return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)


def choose_rows(n_total: int, factors: dict, n: int | None, correlate: tuple | None, seed: int) -> np.ndarray:
    """Sorted rows to keep: all, a seeded random subsample of n, or n with two factors correlated."""
    if correlate is not None:
        if n is None:
            raise UserError("a correlated subsample needs its size: give n (--n) with the correlation")
        f1, f2, rho = correlate
        for f in (f1, f2):
            if f not in factors:
                raise UserError(f"no factor {f!r} to correlate; this set has {', '.join(factors)}")
        if f1 == f2:
            raise UserError("choose two different factors to correlate")
        return correlated_rows(factors[f1], factors[f2], float(rho), n, seed)
    if n is None or n >= n_total:
        return np.arange(n_total)
    if n < 2:
        raise UserError(f"a subsample needs at least 2 images, not {n}")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def import_benchmark(
    name: str,
    path,
    out_dir,
    size: int = 64,
    fit: str = "stretch",
    n: int | None = None,
    correlate: tuple | None = None,
    seed: int = 0,
    validation_fraction: float = 0.1,
    check: bool = True,
    overwrite: bool = False,
    progress=None,
    check_progress=None,
) -> Path:
    """Convert a benchmark's published file(s) at `path` into a dataset folder at `out_dir` (atomically).

    `n`: keep a seeded random subsample of n images; `correlate=(factor1, factor2, rho)`: keep n images
    (all when n is None) in which the two factors have Pearson correlation rho (vae.data.correlation).
    `check`: verify the published MD5 first (False converts a file that is not the original, and says so in
    dataset.json). `check_progress(bytes, total)` is called while checking, `progress(images, total)` while
    converting.
    """
    require_writable(f"import benchmark {name} into {Path(out_dir).name}")
    bench, path = benchmark(name), Path(path)
    spec = DatasetSpec(
        family="imported",
        preset=bench.name,
        n=None,
        image_size=size,
        fit=fit,
        seed=seed,
        transects=False,
        validation_fraction=validation_fraction,
    )
    spec.validate()
    checked = verify(name, path, check_progress) if check else []
    table = bench.opener(path)
    try:
        rows = choose_rows(table.n, table.factors, n, correlate, seed)
        k = len(rows)
        split = np.full(k, "train", dtype="<U10")
        split[np.random.default_rng(seed + 1).permutation(k)[: int(round(validation_fraction * k))]] = "validation"
        columns = {
            "id": np.arange(k, dtype=np.int64),
            "split": split,
            "weight": np.ones(k),
            "transect": np.full(k, "", dtype=str),
            "point": np.zeros(k, dtype=np.int64),
        }
        for f in bench.factor_names:
            col = np.asarray(table.factors[f])[rows]
            if np.issubdtype(col.dtype, np.floating) and np.all(col == np.rint(col)) and f == "shape":
                col = col.astype(np.int64)
            columns[f] = col
        csv_bytes = len(_csv_text(columns, list(bench.factor_names)))
        require_free_space(
            Path(out_dir).parent,
            _folder_estimate(k, size, size * size + 100, csv_bytes),
            f"import {k:,} images of {bench.title}",
        )
        spec.n = k
        target = _TempDataset(out_dir, overwrite)
        try:
            arr = np.lib.format.open_memmap(target.tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(k, size, size))
            done = 0
            for pos, block in table.read(rows):
                gray = to_gray(block)
                if gray.shape[1:] != (size, size):
                    gray = np.stack([to_training_size(im, size, fit) for im in gray])
                arr[pos : pos + len(gray)] = gray
                for j, im in enumerate(gray):
                    (target.tmp / "images" / f"{pos + j:06d}.png").write_bytes(_png_bytes(im))
                done = pos + len(gray)
                if progress is not None:
                    progress(done, k)
            if done != k:
                raise UserError(f"{path.name} yielded {done:,} of {k:,} images; the file is damaged")
            arr.flush()
            del arr
            extra = {
                "source": {
                    "benchmark": bench.name,
                    "title": bench.title,
                    "path": path.name,
                    "verified": bool(check),
                    "files": checked,
                    "rows_of_source": int(table.n),
                    "subsample": None if n is None else int(n),
                    "correlate": None if correlate is None else list(correlate),
                    "colour": "RGB converted to grayscale (ITU-R 601 luma)" if bench.colour else "gray",
                }
            }
            _write_folder(
                target.tmp,
                _meta(spec, columns, list(bench.factor_names), size, extra),
                columns,
                list(bench.factor_names),
                lambda p: None,
            )
            return target.commit()
        except BaseException:
            target.abort()
            raise
    finally:
        table.close()
