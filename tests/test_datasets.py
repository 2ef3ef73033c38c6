"""vae.data.datasets: the dataset folder format, importing, listing, deleting."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae.base.errors import UserError
from vae.data.datasets import delete_dataset, import_images, list_datasets, load_dataset, safe_name, write_dataset
from vae.data.presets import generate, preset_spec


def _small(**kw):
    return preset_spec("seed-punctured", n=60, image_size=32, **kw)


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_written_dataset_loads_with_images_columns_and_splits(tmp_path):
    spec = _small()
    calls = []
    path = write_dataset(spec, tmp_path / "ds", progress=lambda d, t: calls.append((d, t)))
    ds = load_dataset(path)
    g = generate(spec)
    assert isinstance(ds.images, np.memmap) and np.array_equal(np.asarray(ds.images), g.images)
    for key, col in g.columns.items():
        assert np.array_equal(ds.columns[key], col), key
    assert ds.meta["format"] == "vae-lab-dataset" and ds.meta["format_version"] == 1
    assert ds.meta["spec"] == spec.to_dict() and ds.image_size == 32 and ds.factor_names == ["a", "b"]
    assert ds.splits[0] == "train" and "transects" in ds.splits and sum(ds.meta["counts"].values()) == 105
    assert np.array_equal(ds.indices("transects"), np.arange(60, 105))
    assert ds.factors("hole").shape == ((ds.columns["split"] == "hole").sum(), 2)
    assert np.allclose(ds.weights("train"), 1 - ds.factors("train")[:, 1] / 2, atol=1e-6)
    assert calls[-1] == (105, 105)
    png = np.asarray(Image.open(path / "images" / "000007.png"))
    assert np.array_equal(png, g.images[7])
    assert "timestamp" not in (path / "dataset.json").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_same_spec_and_seed_give_identical_files(tmp_path):
    spec = preset_spec("dsprites", n=40, sampling="iid", noise_std=5.0, seed=3)
    a = _files(write_dataset(spec, tmp_path / "a"))
    b = _files(write_dataset(spec, tmp_path / "b", workers=2))
    assert a == b and len(a) == 40 + 3
    c = _files(write_dataset(preset_spec("dsprites", n=40, sampling="iid", noise_std=5.0, seed=4), tmp_path / "c"))
    assert a["images.npy"] != c["images.npy"]


def test_factors_csv_format(tmp_path):
    path = write_dataset(preset_spec("dsprites", n=20), tmp_path / "s")
    lines = (path / "factors.csv").read_text().splitlines()
    assert lines[0] == "id,split,shape,scale,rotation,x,y,weight,transect,point"
    fields = lines[1].split(",")
    assert fields[2] in ("0", "1", "2") and len(fields[3].split(".")[1]) == 6 and fields[-2:] == ["", ""]
    star = write_dataset(_small(), tmp_path / "st")
    last = (star / "factors.csv").read_text().splitlines()[-1]
    assert last == "104,transects,2.000000,0.000000,1.000000,P3,15"


def test_refuses_to_overwrite_unless_asked(tmp_path):
    spec = _small()
    path = write_dataset(spec, tmp_path / "ds")
    with pytest.raises(UserError, match="already exists"):
        write_dataset(spec, path)
    write_dataset(_small(seed=5), path, overwrite=True)
    assert load_dataset(path).meta["seed"] == 5
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="not a dataset"):
        write_dataset(spec, other, overwrite=True)
    assert (other / "mine.txt").read_text() == "keep"


def test_failed_write_leaves_nothing_behind(tmp_path):
    def boom(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(_small(), tmp_path / "ds", progress=boom)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda p: (p / "images.npy").unlink(), "missing images.npy"),
        (lambda p: (p / "factors.csv").unlink(), "missing factors.csv"),
        (lambda p: (p / "dataset.json").write_text("{oops"), "not valid JSON"),
        (lambda p: (p / "dataset.json").write_text(json.dumps({"format": "other"})), "not a VAE Lab dataset"),
        (lambda p: _edit_meta(p, format_version=2), "format version 2"),
        (lambda p: _edit_meta(p, n_images=99), "expected uint8"),
        (lambda p: (p / "factors.csv").write_text("id,split,c,weight,transect,point\n"), "columns"),
        (
            lambda p: (p / "factors.csv").write_text(
                "\n".join((p / "factors.csv").read_text().splitlines()[:-3]) + "\n"
            ),
            "rows",
        ),
        (
            lambda p: (p / "factors.csv").write_text(
                (p / "factors.csv").read_text().replace("transects,", "train,", 1)
            ),
            "split counts",
        ),
        (lambda p: np.save(p / "images.npy", np.zeros((105, 32, 32), np.float32)), "expected uint8"),
    ],
)
def test_load_refuses_damaged_datasets_with_clear_errors(tmp_path, damage, message):
    path = write_dataset(_small(), tmp_path / "ds")
    damage(path)
    with pytest.raises(UserError, match=message):
        load_dataset(path)


def _edit_meta(path, **changes):
    meta = json.loads((path / "dataset.json").read_text())
    meta.update(changes)
    (path / "dataset.json").write_text(json.dumps(meta))


def test_load_of_missing_or_plain_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no dataset folder"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(UserError, match="no dataset.json"):
        load_dataset(tmp_path)


def _png(arr, mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _user_folder(root: Path) -> Path:
    src = root / "mine"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (40 + i, 30, 3), dtype=np.uint8)).save(src / f"rgb_{i}.png")
    Image.fromarray(rng.integers(0, 255, (50, 70), dtype=np.uint8)).save(src / "sub" / "photo.jpg")
    Image.fromarray((np.arange(100 * 80, dtype=np.uint16).reshape(100, 80) * 8)).save(src / "deep16.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "empty.png").write_bytes(b"")
    (src / "notes.txt").write_text("hello")
    return src


def test_import_skips_unreadable_files_with_reasons(tmp_path):
    path, report = import_images(_user_folder(tmp_path), tmp_path / "out", size=32)
    ds = load_dataset(path)
    assert report["imported"] == 10 and ds.images.shape == (10, 32, 32)
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"broken.png", "empty.png"}  # notes.txt is ignored unread and unnamed
    assert report["ignored"] == 1 and "empty" in reasons["empty.png"]
    assert "unreadable" in reasons["broken.png"] or "not an image" in reasons["broken.png"]
    assert ds.meta["family"] == "imported" and ds.factor_names == []
    assert ds.meta["counts"] == {"train": 9, "validation": 1}
    deep = ds.images[0]  # deep16.png sorts first; 16-bit -> 8-bit
    assert deep.max() > 100 and deep.dtype == np.uint8


def test_import_with_no_usable_images_is_a_user_error(tmp_path):
    src = tmp_path / "junk"
    src.mkdir()
    (src / "a.txt").write_text("x")
    with pytest.raises(UserError, match="no usable images"):
        import_images(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_import_from_zip(tmp_path):
    z = tmp_path / "imgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(5):
            zf.writestr(f"d/{i}.png", _png(np.full((20, 20), 40 * i, np.uint8)))
        zf.writestr("d/readme.md", "hi")
    path, report = import_images(z, tmp_path / "out", size=32)
    assert report["imported"] == 5 and report["skipped"] == [] and report["ignored"] == 1  # d/readme.md
    assert list(load_dataset(path).images[:, 0, 0]) == [0, 40, 80, 120, 160]


@pytest.mark.parametrize("bad", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_zip_slip_is_refused(tmp_path, bad):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok.png", _png(np.zeros((8, 8), np.uint8)))
        zf.writestr(bad, _png(np.zeros((8, 8), np.uint8)))
    with pytest.raises(UserError, match="unsafe path"):
        import_images(z, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.png").exists()


def test_zip_over_size_limit_is_refused(tmp_path):
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.png", b"\0" * 200_000)
    with pytest.raises(UserError, match="limit"):
        import_images(z, tmp_path / "out", max_zip_bytes=100_000)


def test_list_and_delete_datasets(tmp_path):
    root = tmp_path / "datasets"
    write_dataset(_small(), root / "one")
    write_dataset(preset_spec("dsprites", n=20), root / "two")
    (root / "stray").mkdir()
    rows = list_datasets(root)
    assert [r["name"] for r in rows] == ["one", "two"]
    assert rows[1]["family"] == "sprites" and rows[1]["counts"] == {"train": 18, "validation": 2}
    assert rows[0]["bytes"] > 0 and rows[0]["image_size"] == 32 and rows[0]["preset"] == "seed-punctured"
    with pytest.raises(UserError, match="not a dataset"):
        delete_dataset(root / "stray", root=root)
    outside = write_dataset(_small(), tmp_path / "elsewhere")
    with pytest.raises(UserError, match="outside"):
        delete_dataset(outside, root=root)
    assert outside.exists()
    delete_dataset(root / "one", root=root)
    assert [r["name"] for r in list_datasets(root)] == ["two"] and (root / "stray").exists()
    assert list_datasets(tmp_path / "missing") == []


@pytest.mark.parametrize("bad", ["", "  ", "..", ".hidden", "a/b", "a\\b", "/etc", "x\x00y", "tab\tname"])
def test_safe_name_refuses_paths_and_control_characters(bad):
    with pytest.raises(UserError):
        safe_name(bad)


def test_safe_name_accepts_plain_names():
    assert safe_name(" my set-1 ") == "my set-1"
