"""The Dataset page converts a benchmark from the lab's downloads folder, or downloads it first (file:// here)."""

from __future__ import annotations

import hashlib

from streamlit.testing.v1 import AppTest

from benchmark_files import write_dsprites
from test_pages import ROOT
from vae.data import benchmarks
from vae.data.datasets import load_dataset


def _page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "dataset.py"), default_timeout=60)


def test_dataset_page_converts_a_benchmark_found_in_the_downloads_folder(tmp_workspace):
    folder = benchmarks.downloads_folder(tmp_workspace, "dsprites")
    folder.mkdir(parents=True)
    write_dsprites(folder / benchmarks.BENCHMARKS["dsprites"].files[0].name, n=50)
    at = _page().run()
    at.selectbox(key="bench_name").set_value("dsprites").run()
    assert any("Found in" in c.value for c in at.caption)
    # the tiny file is not the published one: with the check on, one clear error and nothing written
    next(b for b in at.button if b.label == "Convert").click().run()
    assert not at.exception and "published file's is" in at.error[0].value
    assert not (tmp_workspace / "datasets" / "dsprites").exists()
    at.checkbox(key="bench_verify").uncheck().run()
    at.number_input(key="bench_n").set_value(30).run()
    at.text_input(key="bench_out").input("ds-real").run()
    next(b for b in at.button if b.label == "Convert").click().run()
    assert not at.exception and any("Saved ds-real" in s.value for s in at.success)
    ds = load_dataset(tmp_workspace / "datasets" / "ds-real")
    assert ds.meta["n_images"] == 30 and ds.meta["source"]["verified"] is False


def test_dataset_page_downloads_checks_and_converts(tmp_workspace, tmp_path, monkeypatch):
    src = write_dsprites(tmp_path / "mirror.npz", n=40)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    bench = benchmarks.BENCHMARKS["dsprites"]
    mirror = benchmarks.SourceFile(bench.files[0].name, src.as_uri(), md5)
    monkeypatch.setitem(
        benchmarks.BENCHMARKS, "dsprites", benchmarks.Benchmark(**{**bench.__dict__, "files": (mirror,)})
    )
    at = _page().run()
    at.selectbox(key="bench_name").set_value("dsprites").run()
    next(b for b in at.button if b.label == "Download and convert").click().run()
    assert not at.exception and any("Saved dsprites" in s.value for s in at.success), [e.value for e in at.error]
    assert (benchmarks.downloads_folder(tmp_workspace, "dsprites") / bench.files[0].name).is_file()
    assert load_dataset(tmp_workspace / "datasets" / "dsprites").meta["source"]["verified"] is True
