"""The benchmark loaders: each converts a tiny file in its exact published format into a dataset whose row i
is the source's row i (image and factors), checks MD5s, downloads (from a file:// address here), and
subsamples with two factors correlated as asked."""

from __future__ import annotations

import gzip
import hashlib
import zipfile

import numpy as np
import pytest
from PIL import Image

from benchmark_files import MPI3D_TINY, write_cars3d, write_dsprites, write_mpi3d, write_shapes3d, write_smallnorb
from vae.base.errors import UserError
from vae.data import benchmarks
from vae.data.benchmarks import SourceFile, import_benchmark
from vae.data.correlation import correlated_rows
from vae.data.datasets import load_dataset
from vae.data.render import to_training_size


def _source_images(name, path):
    table = benchmarks.BENCHMARKS[name].opener(path)
    try:
        rows = np.arange(table.n)
        out = np.concatenate([b for _, b in table.read(rows)])
        return out, table.factors
    finally:
        table.close()


def test_rgb_to_gray_is_pillows_luma():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 9, 7, 3), dtype=np.uint8)
    want = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])
    np.testing.assert_array_equal(benchmarks.to_gray(rgb), want)


def test_dsprites_npz_becomes_a_dataset_row_for_row(tmp_path):
    src = write_dsprites(tmp_path / "dsprites.npz")
    out = import_benchmark("dsprites", src, tmp_path / "ds", check=False)
    ds = load_dataset(out)
    with np.load(src) as z:
        imgs, values = z["imgs"], z["latents_values"]
    np.testing.assert_array_equal(np.asarray(ds.images), imgs * 255)
    assert ds.factor_names == ["shape", "scale", "rotation", "x", "y"]
    np.testing.assert_array_equal(ds.columns["shape"], values[:, 1].astype(int))
    np.testing.assert_allclose(ds.columns["rotation"], values[:, 3], atol=1e-6)
    np.testing.assert_allclose(ds.columns["y"], values[:, 5], atol=1e-6)
    assert ds.meta["counts"] == {"train": 54, "validation": 6}
    assert ds.meta["source"]["verified"] is False and ds.meta["preset"] == "dsprites"


def test_shapes3d_h5_is_converted_to_gray_with_its_six_factors(tmp_path):
    src = write_shapes3d(tmp_path / "3dshapes.h5")
    ds = load_dataset(import_benchmark("shapes3d", src, tmp_path / "s", n=25, seed=3, check=False))
    import h5py

    with h5py.File(src) as f:
        images, labels = f["images"][...], f["labels"][...]
    rows = np.sort(np.random.default_rng(3).choice(40, 25, replace=False))
    np.testing.assert_array_equal(np.asarray(ds.images), benchmarks.to_gray(images[rows]))
    np.testing.assert_allclose(ds.factors(), labels[rows], atol=1e-6)
    assert ds.meta["source"]["subsample"] == 25 and "grayscale" in ds.meta["source"]["colour"]


def test_mpi3d_factors_follow_the_published_row_major_order(tmp_path):
    src = write_mpi3d(tmp_path / "mpi3d_toy.npz")
    n = int(np.prod(MPI3D_TINY))
    with pytest.raises(UserError, match="MPI3D's releases hold"):
        benchmarks._open_mpi3d(src)
    table = benchmarks._open_mpi3d(src, layouts={n: MPI3D_TINY})
    table.close()
    # row r = ((((((color*2 + shape)*1 + size)*1 + height)*1 + bg)*3 + h)*4 + v)
    assert table.factors["object_color"][24] == 1 and table.factors["horizontal_axis"][4] == 1
    assert table.factors["vertical_axis"][7] == 3 and table.factors["object_shape"][12] == 1
    orig = benchmarks.MPI3D_LAYOUTS.copy()
    benchmarks.MPI3D_LAYOUTS[n] = MPI3D_TINY
    try:
        ds = load_dataset(import_benchmark("mpi3d-toy", src, tmp_path / "m", check=False))
    finally:
        benchmarks.MPI3D_LAYOUTS.clear()
        benchmarks.MPI3D_LAYOUTS.update(orig)
    with np.load(src) as z:
        np.testing.assert_array_equal(np.asarray(ds.images), benchmarks.to_gray(z["images"]))
    assert ds.factor_names == list(benchmarks.MPI3D_NAMES)
    np.testing.assert_array_equal(ds.columns["vertical_axis"], np.tile(np.arange(4), n // 4))


def test_smallnorb_joins_both_halves_and_resizes_96_to_64(tmp_path):
    folder = write_smallnorb(tmp_path / "norb", n=30)
    ds = load_dataset(import_benchmark("smallnorb", folder, tmp_path / "n", check=False))
    assert ds.meta["n_images"] == 60
    first = np.asarray(ds.images[0])
    raw = benchmarks._open_matrix(folder / benchmarks.BENCHMARKS["smallnorb"].files[0].name)
    f, shape, dtype = raw
    with f:
        dat = np.frombuffer(f.read(), dtype=dtype).reshape(shape)
    np.testing.assert_array_equal(first, to_training_size(dat[0, 0], 64))
    assert set(np.unique(ds.columns["azimuth"])) <= set(range(18))
    with gzip.open(folder / benchmarks.BENCHMARKS["smallnorb"].files[5].name) as g:
        info = np.frombuffer(g.read()[20:], dtype="<i4").reshape(30, 4)
    np.testing.assert_array_equal(ds.columns["azimuth"][30:], info[:, 2] // 2)
    # the training half alone is enough; a folder without it is refused
    only_train = write_smallnorb(tmp_path / "norb2", n=10, testing=False)
    assert load_dataset(import_benchmark("smallnorb", only_train, tmp_path / "n2", check=False)).meta["n_images"] == 10
    (only_train / benchmarks.BENCHMARKS["smallnorb"].files[1].name).unlink()
    with pytest.raises(UserError, match="training files are required"):
        import_benchmark("smallnorb", only_train, tmp_path / "n3", check=False)


def test_cars3d_archive_gives_elevation_azimuth_object(tmp_path):
    src = write_cars3d(tmp_path / "nips2015-analogy-data.tar.gz", cars=2, size=16)
    ds = load_dataset(import_benchmark("cars3d", src, tmp_path / "c", size=32, check=False))
    assert ds.meta["n_images"] == 192
    images, factors = _source_images("cars3d", src)
    # the marker pixel (red channel of pixel 0,0) is elevation*24 + azimuth + 96*car in the writer
    marker = images[:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(
        marker, (factors["elevation"] * 24 + factors["azimuth"] + 96 * factors["object"]) % 256
    )
    want = np.stack([to_training_size(im, 32) for im in benchmarks.to_gray(images)])
    np.testing.assert_array_equal(np.asarray(ds.images), want)
    assert sorted(set(ds.columns["object"].astype(int))) == [0, 1]


def test_a_file_that_is_not_the_published_one_is_refused_unless_asked(tmp_path):
    src = write_dsprites(tmp_path / "dsprites.npz")
    with pytest.raises(UserError, match="MD5 .* published file's is 7da33b31b13a06f4b04a70402ce90c2e"):
        import_benchmark("dsprites", src, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_damaged_or_wrong_files_get_one_clear_error_and_leave_nothing(tmp_path):
    src = write_dsprites(tmp_path / "d.npz")
    data = src.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable npz"):
        import_benchmark("dsprites", tmp_path / "trunc.npz", tmp_path / "o1", check=False)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(UserError, match="no 'imgs' array"):
        import_benchmark("dsprites", tmp_path / "other.npz", tmp_path / "o2", check=False)
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="not a readable HDF5"):
        import_benchmark("shapes3d", tmp_path / "bad.h5", tmp_path / "o3", check=False)
    with pytest.raises(UserError, match="unknown benchmark"):
        import_benchmark("celeba", src, tmp_path / "o4", check=False)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"d.npz", "trunc.npz", "other.npz", "bad.h5"}, left  # no dataset, no temporary folder


def test_an_npz_member_larger_than_its_header_says_is_refused_before_reading(tmp_path):
    """A zip entry that claims gigabytes behind a tiny array header is refused from its directory entry."""
    path = tmp_path / "bomb.npz"
    header = tmp_path / "h.npy"
    np.save(header, np.zeros((2, 64, 64), np.uint8))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("imgs.npy", header.read_bytes() + bytes(50 << 20))
        zf.writestr(
            "latents_values.npy", (np.save(tmp_path / "v.npy", np.zeros((2, 6))), (tmp_path / "v.npy").read_bytes())[1]
        )
    with pytest.raises(UserError, match="claims .* bytes but its header describes"):
        import_benchmark("dsprites", path, tmp_path / "o", check=False)


def test_download_from_an_address_checks_md5_and_keeps_nothing_on_a_mismatch(tmp_path):
    src = write_dsprites(tmp_path / "tiny.npz")
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    dest = tmp_path / "downloads"
    seen = []
    got = benchmarks.download(
        "dsprites",
        dest,
        progress=lambda d, t: seen.append((d, t)),
        sources=(SourceFile("dsprites.npz", src.as_uri(), md5),),
    )
    assert got == dest / "dsprites.npz" and got.read_bytes() == src.read_bytes()
    assert seen and seen[-1][0] == src.stat().st_size
    with pytest.raises(UserError, match="has MD5 .* not the published"):
        benchmarks.download("dsprites", tmp_path / "d2", sources=(SourceFile("x.npz", src.as_uri(), "0" * 32),))
    assert list((tmp_path / "d2").iterdir()) == []
    with pytest.raises(UserError, match="cannot download"):
        benchmarks.download(
            "dsprites", tmp_path / "d3", sources=(SourceFile("y.npz", (tmp_path / "missing.npz").as_uri(), md5),)
        )


def test_verify_accepts_the_published_md5(tmp_path, monkeypatch):
    src = write_dsprites(tmp_path / "d.npz")
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    bench = benchmarks.BENCHMARKS["dsprites"]
    monkeypatch.setitem(
        benchmarks.BENCHMARKS,
        "dsprites",
        benchmarks.Benchmark(**{**bench.__dict__, "files": (SourceFile(src.name, "", md5),)}),
    )
    ds = load_dataset(import_benchmark("dsprites", src, tmp_path / "ok"))
    assert ds.meta["source"]["verified"] is True and ds.meta["source"]["files"][0]["md5"] == md5


@pytest.mark.parametrize("rho", [-0.8, -0.3, 0.0, 0.5, 0.9])
def test_a_correlated_pair_has_the_correlation_asked_for_on_10000_draws(rho):
    """Träuble et al. 2021's kernel on a full factor grid (40 x 32 x 32 values, 40,960 rows)."""
    grid = np.indices((40, 32, 32)).reshape(3, -1).astype(float)
    rows = correlated_rows(grid[0], grid[1], rho, 10_000, seed=1)
    assert len(rows) == len(np.unique(rows)) == 10_000
    r = np.corrcoef(grid[0][rows], grid[1][rows])[0, 1]
    assert abs(r - rho) <= 0.02
    assert np.unique(grid[0][rows]).size == 40 and np.unique(grid[1][rows]).size == 32  # supports kept
    assert abs(np.corrcoef(grid[0][rows], grid[2][rows])[0, 1]) < 0.05  # the third stays free


def test_an_unreachable_correlation_is_refused_with_the_reachable_range():
    a = np.repeat([0.0, 1.0], 50)
    b = np.tile([0.0, 1.0], 50)
    with pytest.raises(UserError, match="cannot be drawn"):
        correlated_rows(a, b, 0.99, 90)


def test_import_with_a_correlated_pair(tmp_path):
    src = write_shapes3d(tmp_path / "s.h5", n=400)
    ds = load_dataset(
        import_benchmark("shapes3d", src, tmp_path / "c", n=200, correlate=("floor_hue", "wall_hue", 0.7), check=False)
    )
    r = np.corrcoef(ds.columns["floor_hue"], ds.columns["wall_hue"])[0, 1]
    assert abs(r - 0.7) <= 0.02
    assert ds.meta["source"]["correlate"] == ["floor_hue", "wall_hue", 0.7]
    with pytest.raises(UserError, match="no factor 'hue'"):
        import_benchmark("shapes3d", src, tmp_path / "c2", n=100, correlate=("hue", "wall_hue", 0.5), check=False)
