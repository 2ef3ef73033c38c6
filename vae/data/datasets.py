"""The dataset folder format: write, load, import, list, delete (numpy and pillow only).

A dataset is a folder:
  dataset.json      format "vae-lab-dataset", format_version 1, the full spec and seed, counts per
                    split, image size, factor names and column names (no timestamps)
  factors.csv       one row per image: id, split, factor columns, weight, transect, point
  images.npy        uint8 (N, H, W), row i = id i (np.save; load with mmap_mode="r")
  images/NNNNNN.png the same images as PNG files, for browsing
It is written into a hidden temporary sibling folder and moved into place with os.replace, so a
folder with a dataset.json is always complete. The same spec and seed give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import unicodedata
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vae import __version__
from vae.base.errors import UserError
from vae.base.safety import on_disk, require_free_space, require_writable
from vae.data.presets import CHUNK, DatasetSpec, _split_train_validation, plan, render_rows
from vae.data.render import to_training_size

FORMAT = "vae-lab-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "validation", "hole", "transects")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
MAX_ZIP_BYTES = 2 * 1024**3  # the images of one import together, unpacked
MAX_IMAGE_BYTES = 64 * 1024**2  # one image file (a 4096 x 4096 16-bit PNG is 32 MB uncompressed)
MAX_NAME_BYTES = 100
FLOAT_FMT = "{:.6f}"


# ------------------------------------------------------------------ names and paths
def safe_name(name: str) -> str:
    """A user's dataset name, checked to be one plain folder name; raises UserError otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("dataset name is empty")
    name = name.strip()
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise UserError("dataset name must not contain control characters")
    if "/" in name or "\\" in name or os.path.isabs(name) or ":" in name:
        raise UserError(f"dataset name {name!r} must be a plain name, not a path (no '/', '\\\\' or ':')")
    if name in (".", "..") or name.startswith("."):
        raise UserError(f"dataset name {name!r} must not start with '.'")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:  # a file name holds 255 bytes; the temporary folder adds ~20
        raise UserError(
            f"dataset name must be at most {MAX_NAME_BYTES} bytes in UTF-8 "
            f"({len(name.encode('utf-8'))} given; an accented or non-Latin letter takes 2-4)"
        )
    return name


def columns_for(factor_names) -> list[str]:
    return ["id", "split", *factor_names, "weight", "transect", "point"]


# ------------------------------------------------------------------ writing
def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _render_chunk(spec_dict, columns, start, stop):
    spec = DatasetSpec.from_dict(spec_dict)
    imgs = render_rows(spec, columns, np.arange(start, stop))
    return start, imgs, [_png_bytes(im) for im in imgs]


def _csv_text(columns: dict, factor_names: list[str]) -> str:
    header = columns_for(factor_names)
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    n = len(columns["id"])
    fmt_cols = []
    for f in factor_names:
        col = columns[f]
        if np.issubdtype(col.dtype, np.integer):
            fmt_cols.append([str(int(v)) for v in col])
        else:
            fmt_cols.append([FLOAT_FMT.format(v) for v in col])
    weight = [FLOAT_FMT.format(v) for v in columns["weight"]]
    for i in range(n):
        point = int(columns["point"][i])
        row = [
            str(int(columns["id"][i])),
            str(columns["split"][i]),
            *(c[i] for c in fmt_cols),
            weight[i],
            str(columns["transect"][i]),
            str(point) if point else "",
        ]
        out.write(",".join(row) + "\n")
    return out.getvalue()


def _meta(spec: DatasetSpec, columns: dict, factor_names, image_size, extra=None) -> dict:
    splits, counts = np.unique(columns["split"], return_counts=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": spec.family,
        "preset": spec.preset,
        "seed": spec.seed,
        "spec": spec.to_dict(),
        "n_images": int(len(columns["id"])),
        "counts": {str(s): int(c) for s, c in zip(splits, counts)},
        "image_size": int(image_size),
        "image_shape": [int(image_size), int(image_size)],
        "factor_names": list(factor_names),
        "columns": columns_for(factor_names),
        "generator": f"vae-lab {__version__}",
    }
    meta.update(extra or {})
    return meta


class _TempDataset:
    """A hidden sibling folder that becomes `out_dir` on commit, or vanishes on error."""

    def __init__(self, out_dir, overwrite):
        self.out = Path(out_dir)
        if self.out.is_symlink():
            raise UserError(f"{self.out} is a symbolic link; choose another dataset folder")
        if self.out.exists():
            if not (self.out / "dataset.json").is_file() and any(self.out.iterdir()):
                raise UserError(f"{self.out} exists and is not a dataset; choose another name")
            if (self.out / "dataset.json").is_file() and not overwrite:
                raise UserError(f"dataset {self.out.name!r} already exists; choose another name or overwrite it")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=self.out.parent))
        (self.tmp / "images").mkdir()

    def commit(self) -> Path:
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".old", dir=self.out.parent))
            os.replace(self.out, old / "d")
        os.chmod(self.tmp, 0o755)
        os.replace(self.tmp, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def abort(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def _write_folder(tmp: Path, meta: dict, columns: dict, factor_names, images_npy_writer):
    (tmp / "factors.csv").write_text(_csv_text(columns, factor_names), encoding="utf-8")
    images_npy_writer(tmp / "images.npy")
    (tmp / "dataset.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _folder_estimate(n: int, size: int, png_bytes: float, csv_bytes: int) -> int:
    """Bytes on disk of a dataset folder: images.npy, one PNG per image, factors.csv, dataset.json, folders."""
    return on_disk(128 + n * size * size) + n * on_disk(png_bytes) + on_disk(csv_bytes) + on_disk(4096) + 2 * 4096


def _sample_png_bytes(images) -> float:
    """Mean PNG size of a few images, plus 10% (the rest of the dataset may compress a little worse)."""
    return 1.1 * float(np.mean([len(_png_bytes(np.asarray(im))) for im in images]))


def estimate_dataset_bytes(spec: DatasetSpec, columns: dict | None = None, sample: int = 16) -> int:
    """Bytes the dataset folder of `spec` will take on disk, from 16 images rendered and encoded now."""
    spec.validate()
    columns = plan(spec) if columns is None else columns
    n = len(columns["id"])
    rows = np.unique(np.linspace(0, n - 1, min(sample, n)).round().astype(np.int64))
    png = _sample_png_bytes(render_rows(spec, columns, rows))
    return _folder_estimate(n, spec.image_size, png, len(_csv_text(columns, spec.factor_names)))


def write_dataset(
    spec: DatasetSpec, out_dir, progress=None, overwrite: bool = False, workers: int | None = None
) -> Path:
    """Generate `spec` and write it as a dataset folder at `out_dir` (atomically). Returns the path.

    `progress(done, total)` is called after each chunk of images. `workers`: processes to render
    and encode with (None: 1, which never forks, as a multi-threaded caller such as the dashboard's
    server needs; `python -m vae generate` uses 2, 1.24x faster on 2 cores: bench/RESULTS.md); the
    files are the same either way.
    """
    require_writable(f"write dataset {Path(out_dir).name}")
    spec.validate()
    columns = plan(spec)
    n = len(columns["id"])
    size = spec.image_size
    require_free_space(
        Path(out_dir).parent,
        estimate_dataset_bytes(spec, columns),
        f"write dataset {Path(out_dir).name} ({n:,} images)",
    )
    if workers is None:
        workers = 1
    target = _TempDataset(out_dir, overwrite)
    try:
        arr = np.lib.format.open_memmap(target.tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(n, size, size))
        chunks = [(s, min(n, s + CHUNK)) for s in range(0, n, CHUNK)]

        def store(result):
            start, imgs, pngs = result
            arr[start : start + len(imgs)] = imgs  # noqa: F821 (never called after `del arr` below)
            for k, data in enumerate(pngs):
                with open(target.tmp / "images" / f"{start + k:06d}.png", "wb") as f:
                    f.write(data)
            if progress is not None:
                progress(start + len(imgs), n)

        if workers > 1 and len(chunks) > 1:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_render_chunk, spec.to_dict(), columns, s, e) for s, e in chunks]
                for fut in futures:
                    store(fut.result())
        else:
            for s, e in chunks:
                store(_render_chunk(spec.to_dict(), columns, s, e))
        arr.flush()
        del arr
        meta = _meta(spec, columns, spec.factor_names, size)
        _write_folder(target.tmp, meta, columns, spec.factor_names, lambda p: None)
        return target.commit()
    except BaseException:
        target.abort()
        raise


# ------------------------------------------------------------------ loading
@dataclass
class Dataset:
    path: Path
    meta: dict
    images: np.ndarray
    columns: dict
    factor_names: list

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def splits(self) -> list[str]:
        return [s for s in SPLITS if s in self.meta["counts"]] + sorted(
            s for s in self.meta["counts"] if s not in SPLITS
        )

    def indices(self, split: str) -> np.ndarray:
        return self.columns["id"][self.columns["split"] == split]

    def factors(self, split: str | None = None) -> np.ndarray:
        sel = slice(None) if split is None else self.columns["split"] == split
        if not self.factor_names:
            return np.zeros((len(self.columns["id"][sel]), 0))
        return np.column_stack([self.columns[f][sel].astype(np.float64) for f in self.factor_names])

    def weights(self, split: str | None = None) -> np.ndarray:
        sel = slice(None) if split is None else self.columns["split"] == split
        return self.columns["weight"][sel]


def _read_columns(path: Path, factor_names) -> dict:
    expected = columns_for(factor_names)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path} is empty; the dataset is damaged")
            if header != expected:
                raise UserError(f"{path} has columns {str(header)[:200]}, expected {expected}; the dataset is damaged")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} is not a CSV file of factors ({str(exc)[:200]}); the dataset is damaged") from None
    try:
        cols = list(zip(*rows)) if rows else [()] * len(expected)
        out = {"id": np.array(cols[0], dtype=np.int64), "split": np.array(cols[1], dtype=str)}
        for k, f in enumerate(factor_names):
            raw = cols[2 + k]
            out[f] = np.array(raw, dtype=np.int64) if f == "shape" else np.array(raw, dtype=np.float64)
        out["weight"] = np.array(cols[-3], dtype=np.float64)
        out["transect"] = np.array(cols[-2], dtype=str)
        out["point"] = np.array([int(p) if p else 0 for p in cols[-1]], dtype=np.int64)
    except (ValueError, IndexError) as exc:
        raise UserError(f"{path} has a malformed row ({exc}); the dataset is damaged") from None
    return out


def _meta_problem(meta) -> str | None:
    """What is wrong with a dataset.json's value (None if nothing): its format, version and field types."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return f"it is not a VAE Lab dataset (format is not {FORMAT!r})"
    if meta.get("format_version") != FORMAT_VERSION:
        return (
            f"it has dataset format version {meta.get('format_version')!r}; this version of the lab reads "
            f"version {FORMAT_VERSION} (regenerate or update the lab)"
        )
    for key in ("n_images", "counts", "image_size", "factor_names"):
        if key not in meta:
            return f"it lacks {key!r}"

    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not whole(meta["n_images"]):
        return f"'n_images' must be a whole number, got {meta['n_images']!r}"[:200]
    if not whole(meta["image_size"]) or not 1 <= meta["image_size"] <= 4096:
        return f"'image_size' must be a whole number of pixels, got {meta['image_size']!r}"[:200]
    counts = meta["counts"]
    if not isinstance(counts, dict) or not all(isinstance(k, str) and whole(v) for k, v in counts.items()):
        return f"'counts' must map each split to a whole number, got {counts!r}"[:200]
    names = meta["factor_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return f"'factor_names' must be a list of names, got {names!r}"[:200]
    for key in ("family", "preset"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"{key!r} must be text, got {meta[key]!r}"[:200]
    if not isinstance(meta.get("spec", {}), dict):
        return f"'spec' must be a JSON object, got {meta['spec']!r}"[:200]
    return None


def read_meta(path) -> dict:
    """A dataset folder's dataset.json, checked (format, version, field types); UserError if damaged."""
    meta_path = Path(path) / "dataset.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except IsADirectoryError:
        raise UserError(f"{meta_path} is a folder, not a file; the dataset is damaged") from None
    except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UserError(
            f"{meta_path} is not valid JSON ({(str(exc).splitlines() or ['?'])[0][:200]}); the dataset is damaged"
        ) from None
    problem = _meta_problem(meta)
    if problem:
        raise UserError(f"{meta_path}: {problem}; the dataset is damaged")
    return meta


def load_dataset(path) -> Dataset:
    """Open a dataset folder (images memory-mapped); raises UserError if it is not a valid one."""
    path = Path(path)
    meta_path = path / "dataset.json"
    if not path.is_dir():
        raise UserError(f"no dataset folder at {path}")
    if not meta_path.exists():
        raise UserError(f"{path} is not a dataset (no dataset.json)")
    meta = read_meta(path)
    for name in ("factors.csv", "images.npy"):
        if (path / name).is_dir():
            raise UserError(f"{path.name}/{name} is a folder, not a file; the dataset is damaged")
        if not (path / name).is_file():
            raise UserError(f"{path.name} is missing {name}; the dataset is incomplete")
    factor_names = list(meta["factor_names"])
    columns = _read_columns(path / "factors.csv", factor_names)
    try:
        with open(path / "images.npy", "rb") as f:
            if f.read(6) != b"\x93NUMPY":  # random bytes would otherwise read as a (refused) pickle
                raise ValueError("not a .npy array file: empty, cut short at its start, or overwritten")
        images = np.load(path / "images.npy", mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(
            f"{path.name}/images.npy cannot be read ({(str(exc).splitlines() or ['?'])[0][:200]}); "
            "the dataset is damaged"
        ) from None
    n, size = int(meta["n_images"]), int(meta["image_size"])
    if images.dtype != np.uint8 or images.shape != (n, size, size):
        raise UserError(f"{path.name}/images.npy holds {images.dtype} {images.shape}, expected uint8 {(n, size, size)}")
    if len(columns["id"]) != n:
        raise UserError(f"{path.name}/factors.csv has {len(columns['id'])} rows but dataset.json says {n} images")
    if not np.array_equal(columns["id"], np.arange(n)):
        raise UserError(f"{path.name}/factors.csv ids are not 0..{n - 1} in order")
    splits, counts = np.unique(columns["split"], return_counts=True)
    if {str(s): int(c) for s, c in zip(splits, counts)} != {k: int(v) for k, v in meta["counts"].items()}:
        raise UserError(f"{path.name}: split counts in factors.csv do not match dataset.json")
    return Dataset(path, meta, images, columns, factor_names)


# ------------------------------------------------------------------ importing a user's images
def _to_gray8(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if im.mode == "F":
            top = max(float(arr.max(initial=0)), 1e-12) if arr.max(initial=0) > 1 else 1.0
        return np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    if im.mode != "L":
        im = im.convert("L")
    return np.asarray(im, dtype=np.uint8)


def _decode(data: bytes):
    """(uint8 gray image, None) or (None, reason)."""
    if not data:
        return None, "empty file"
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.width == 0 or im.height == 0:
                return None, "image has no pixels"
            return _to_gray8(im), None
    except UnidentifiedImageError:
        return None, "not an image (unrecognised format)"
    except Image.DecompressionBombError:
        return None, "image too large (pixel count over Pillow's safety limit)"
    except (OSError, ValueError, SyntaxError) as exc:
        return None, f"unreadable ({exc})"


def _is_image_name(name: str) -> str | None:
    """None if `name` (a path inside the source) may be an image to read, else why it is ignored unread."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.startswith(".") or name.startswith("__MACOSX/"):
        return "hidden or system file"
    if not base.lower().endswith(IMAGE_EXTENSIONS):
        return "not an image"
    return None


def _too_big(size: int, max_image: int) -> str | None:
    if size > max_image:
        return f"file of {size / 1024**2:.0f} MB, over the {max_image / 1024**2:.0f} MB limit per image (not read)"
    return None


def _zip_members(src: Path, max_bytes: int, max_image: int):
    """(name, bytes, None), (name, None, reason) for an image that cannot be used, or (None, None, reason)
    for a file that is not an image (ignored unread, not named). Names and declared sizes are checked
    before an entry is read, and an entry never yields more than its declared size."""
    try:
        zf = zipfile.ZipFile(src)
    except zipfile.BadZipFile:
        raise UserError(f"{src.name} is not a readable zip file") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for info in infos:
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
                raise UserError(f"{src.name} holds an entry with an unsafe path ({name!r}); refusing the zip")
        images = [i for i in infos if _is_image_name(i.filename) is None]
        total = sum(i.file_size for i in images if i.file_size <= max_image)
        if total > max_bytes:
            raise UserError(
                f"{src.name}'s images unpack to {total / 1e9:.1f} GB, over the {max_bytes / 1e9:.1f} GB "
                "limit; import them in parts"
            )
        for info in sorted(infos, key=lambda i: i.filename):
            ignored = _is_image_name(info.filename)
            if ignored is not None:
                yield None, None, ignored
                continue
            big = _too_big(info.file_size, max_image)
            if big is not None:
                yield info.filename, None, big
                continue
            try:
                with zf.open(info) as f:
                    data = f.read(info.file_size + 1)  # zipfile yields at most the declared size
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
                yield info.filename, None, f"unreadable zip entry ({exc})"
                continue
            yield info.filename, data, None


def _folder_members(src: Path, max_image: int):
    for p in sorted(q for q in src.rglob("*") if q.is_file() or q.is_symlink()):
        rel = p.relative_to(src).as_posix()
        ignored = _is_image_name(rel)
        if ignored is not None:
            yield None, None, ignored
            continue
        if p.is_symlink():
            yield rel, None, "symbolic link (skipped)"
            continue
        try:
            size = p.stat().st_size
            big = _too_big(size, max_image)
            if big is not None:
                yield rel, None, big
                continue
            with open(p, "rb") as f:
                data = f.read(min(size, max_image) + 1)
        except OSError as exc:
            yield rel, None, f"unreadable ({exc.strerror or exc})"
            continue
        if len(data) > size:  # it grew since stat: read it again, whole, next time
            yield rel, None, "file changed while it was read"
            continue
        yield rel, data, None


def import_images(
    src,
    out_dir,
    size: int = 64,
    fit: str = "stretch",
    overwrite: bool = False,
    max_zip_bytes: int = MAX_ZIP_BYTES,
    progress=None,
    max_image_bytes: int = MAX_IMAGE_BYTES,
):
    """Turn a folder or .zip of PNG/JPEG images into a dataset (family "imported", no factors).

    Colour becomes grayscale and 16-bit becomes 8-bit; every image is resized to size x size
    (`fit` as in vae.data.render.to_training_size). The last 10% are validation. Each file's name and
    size are checked before it is read: files without a PNG/JPEG extension and hidden files are ignored
    unread (counted, not named), an image over `max_image_bytes` is skipped unread, and a zip whose
    images unpack to more than `max_zip_bytes` is refused. Returns (path, report) where report =
    {"imported": n, "skipped": [{"file", "reason"}, ...] (images that could not be used), "ignored": m}.
    """
    require_writable(f"import images into {Path(out_dir).name}")
    src = Path(src)
    spec = DatasetSpec(family="imported", n=None, image_size=size, fit=fit, seed=0, transects=False)
    spec.validate()
    if src.is_dir():
        members = _folder_members(src, max_image_bytes)
    elif src.is_file() and zipfile.is_zipfile(src):
        members = _zip_members(src, max_zip_bytes, max_image_bytes)
    elif src.exists():
        raise UserError(f"{src.name} is neither a folder nor a .zip file")
    else:
        raise UserError(f"{src} does not exist")

    images, skipped, ignored = [], [], 0
    for name, data, reason in members:
        if name is None:
            ignored += 1
            continue
        if reason is None:
            gray, reason = _decode(data)
        if reason is not None:
            skipped.append({"file": name, "reason": reason})
            continue
        images.append(to_training_size(gray, size, fit))
    if not images:
        raise UserError(
            f"no usable images in {src.name} ({len(skipped)} image(s) skipped, {ignored} other file(s) "
            "ignored; PNG or JPEG files expected)"
        )
    n = len(images)
    spec.n = n
    columns = {
        "id": np.arange(n, dtype=np.int64),
        "split": _split_train_validation(n, 0.1).astype(str),
        "weight": np.ones(n),
        "transect": np.full(n, "", dtype=str),
        "point": np.zeros(n, dtype=np.int64),
    }
    stack = np.stack(images)
    need = _folder_estimate(
        n, size, _sample_png_bytes(stack[np.linspace(0, n - 1, min(16, n)).astype(int)]), len(_csv_text(columns, []))
    )
    require_free_space(Path(out_dir).parent, need, f"import {n:,} images into {Path(out_dir).name}")
    target = _TempDataset(out_dir, overwrite)
    try:
        for i, img in enumerate(stack):
            (target.tmp / "images" / f"{i:06d}.png").write_bytes(_png_bytes(img))
            if progress is not None and (i + 1) % CHUNK == 0:
                progress(i + 1, n)
        meta = _meta(spec, columns, [], size, {"source": src.name, "skipped": len(skipped), "ignored": ignored})
        _write_folder(target.tmp, meta, columns, [], lambda p: np.save(p, stack, allow_pickle=False))
        path = target.commit()
    except BaseException:
        target.abort()
        raise
    if progress is not None:
        progress(n, n)
    return path, {"imported": n, "skipped": skipped, "ignored": ignored}


# ------------------------------------------------------------------ listing and deleting
def _folder_bytes(path: Path) -> int:
    """Bytes the folder takes on disk (allocated blocks, as the size estimate before Generate counts them:
    a 300-byte PNG takes a 4 KiB block), where the file system says; else the files' sizes."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            blocks = getattr(st, "st_blocks", None)
            total += blocks * 512 if blocks else st.st_size
    return total


def list_datasets(root) -> list[dict]:
    """The datasets directly under `root`, by name: name, path, family, preset, counts, image_size,
    n_images, bytes, and error (None, or why dataset.json could not be read)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or not p.is_dir() or not (p / "dataset.json").exists():
            continue
        row = {
            "name": p.name,
            "path": str(p),
            "family": None,
            "preset": None,
            "counts": {},
            "image_size": None,
            "n_images": None,
            "bytes": _folder_bytes(p),
            "error": None,
        }
        try:
            meta = read_meta(p)
            row.update(
                family=meta.get("family"),
                preset=meta.get("preset"),
                counts=meta["counts"],
                image_size=meta["image_size"],
                n_images=meta["n_images"],
            )
        except UserError as exc:
            row["error"] = str(exc)
        out.append(row)
    return out


def delete_dataset(path, root=None) -> None:
    """Delete a dataset folder. Refuses anything without a dataset.json, symbolic links, and (when
    `root` is given) anything that is not a folder inside `root`."""
    path = Path(path)
    require_writable(f"delete dataset {path.name}")
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link; not deleting it")
    if not (path / "dataset.json").is_file():
        raise UserError(f"{path} is not a dataset folder (no dataset.json); not deleting it")
    if root is not None:
        real, real_root = path.resolve(), Path(root).resolve()
        if real == real_root or real_root not in real.parents:
            raise UserError(f"{path} is outside the datasets folder {root}; not deleting it")
    trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".deleting", dir=path.parent))
    os.replace(path, trash / "d")
    shutil.rmtree(trash, ignore_errors=True)
