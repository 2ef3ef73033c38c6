"""The Embedding page's factor panel beside the PCA panel, arrows, plots to scale, the epochs film,
and every number naming its codes (docs/measures.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.test_pages import _decode  # plotly's JSON arrays back to lists
from vae.data import datasets
from vae.measures import analysis
from vae.runs import folder

ROOT = Path(__file__).resolve().parent.parent


def figures(at):
    return [_decode(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]


def _aligned_run(fake_run, tiny_dataset, name="aligned", flat=1.0, epochs=2):
    """A run whose training codes are (a, b, flat * noise): the factors on their own axes."""
    run = fake_run(name, dataset=str(tiny_dataset), epochs=epochs)
    ds = datasets.load_dataset(tiny_dataset)
    rng = np.random.default_rng(0)
    for epoch in range(1, epochs + 1):
        path = folder.snapshot_path(run, epoch)
        snap = dict(np.load(path))
        rows = np.searchsorted(np.asarray(ds.columns["id"]), snap["index_train"])
        a, b = (np.asarray(ds.columns[f], float)[rows] for f in ("a", "b"))
        snap["mu_train"] = np.column_stack(
            [(a - 1.25) * 4, (b - 1.0) * 0.5 * epoch, flat * 0.01 * rng.normal(size=len(a))]
        ).astype(np.float32)
        np.savez_compressed(path, **snap)
    return run


def test_factor_panel_beside_pca_panel_with_arrows_and_equal_scales(fake_run, tiny_dataset):
    run = _aligned_run(fake_run, tiny_dataset)
    at = AppTest.from_file(str(ROOT / "pages" / "embedding.py"), default_timeout=90).run()
    assert not at.exception
    snap = folder.load_snapshot(run, 2)
    ds = datasets.load_dataset(tiny_dataset)
    rows = np.searchsorted(np.asarray(ds.columns["id"]), snap["index_train"])
    f = np.column_stack([np.asarray(ds.columns[k], float)[rows] for k in ("a", "b")])
    fa = analysis.factor_alignment(snap["mu_train"], f)
    pca = analysis.pca_alignment(snap["mu_train"])
    values = {m.label: m.value for m in at.metric}
    assert values["Factor alignment"] == f"{fa['score']:.3f}" and fa["score"] >= 0.95
    assert values["Principal axes on latent axes"] == (
        f"{pca['score']:.3f}" if pca["score"] is not None else "undefined"
    )
    figs = figures(at)
    latent, principal = figs[0], figs[1]
    names = [t.get("name") for t in latent["data"]]
    assert "a direction" in names and "b direction" in names and "PC1" in names
    assert any(t["type"] == "cone" for t in latent["data"])
    # equal scales (the ranges' ratios); a flat (collapsed) axis is drawn at 15% of the longest (plotly's
    # camera sat inside the cloud)
    for fig in (latent, principal):
        scene = fig["layout"]["scene"]
        assert scene["aspectmode"] == "manual" and max(scene["aspectratio"].values()) == 1.0
        assert min(scene["aspectratio"].values()) >= 0.15
    titles = [fig["layout"].get("title", {}).get("text") for fig in figs]
    assert "How much each factor moves each latent (rows unit length)" in titles
    assert "|cos(principal axis, latent axis)|" in titles
    assert "What the seed term prefers on this data" in titles  # the entanglement profile
    texts = " ".join(str(c.value) for c in at.caption)
    assert f"training codes of epoch 2 (N = {len(snap['mu_train'])})" in texts
    factor_table = at.dataframe[0].value
    assert list(factor_table["factor"]) == ["a", "b"] and list(factor_table["own axis"]) == ["μ1", "μ2"]


def test_a_flat_sheet_is_drawn_flat_and_said_to_be(fake_run, tiny_dataset):
    _aligned_run(fake_run, tiny_dataset, flat=0.0)
    at = AppTest.from_file(str(ROOT / "pages" / "embedding.py"), default_timeout=90).run()
    texts = " ".join(str(c.value) for c in at.caption)
    assert "Drawn to scale" in texts and "Nearly flat along μ3" in texts


def test_the_epochs_play_as_a_film(fake_run, tiny_dataset):
    _aligned_run(fake_run, tiny_dataset, epochs=3)
    at = AppTest.from_file(str(ROOT / "pages" / "embedding.py"), default_timeout=90).run()
    at.toggle(key="film").set_value(True).run()
    assert not at.exception
    film = next(fig for fig in figures(at) if fig.get("frames"))
    assert [fr["name"] for fr in film["frames"]] == ["1", "2", "3"]
    buttons = film["layout"]["updatemenus"][0]["buttons"]
    assert buttons[0]["method"] == "animate" and "Play" in buttons[0]["label"]
    # fixed ranges over all epochs: the growing b axis of epoch 3 fits in the first frame's axes
    assert film["layout"]["scene"]["yaxis"]["range"][1] >= 0.5 * 3 * 1.0 * 0.99


def test_undefined_pca_is_said_in_words(fake_run, tiny_dataset):
    run = fake_run("tied", dataset=str(tiny_dataset), epochs=1)
    path = folder.snapshot_path(run, 1)
    snap = dict(np.load(path))
    rng = np.random.default_rng(1)
    snap["mu_train"] = np.column_stack(
        [
            rng.normal(size=len(snap["index_train"])),
            rng.normal(size=len(snap["index_train"])),
            np.zeros(len(snap["index_train"])),
        ]
    ).astype(np.float32)
    x = snap["mu_train"][:, :2] - snap["mu_train"][:, :2].mean(0)
    snap["mu_train"][:, :2] = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # exact tie
    np.savez_compressed(path, **snap)
    at = AppTest.from_file(str(ROOT / "pages" / "embedding.py"), default_timeout=90).run()
    assert {m.label: m.value for m in at.metric}["Principal axes on latent axes"] == "undefined"
    assert any("principal axes not defined: two principal variances" in w.value for w in at.warning)


def test_the_hole_zero_shot_numbers_are_shown_for_a_punctured_dataset(fake_run, tiny_dataset):
    run = _aligned_run(fake_run, tiny_dataset, epochs=1)
    path = folder.snapshot_path(run, 1)
    snap = dict(np.load(path))
    ds = datasets.load_dataset(tiny_dataset)
    for split in ("hole", "validation"):  # codes on the same plane as the training codes
        rows = np.searchsorted(np.asarray(ds.columns["id"]), snap[f"index_{split}"])
        a, b = (np.asarray(ds.columns[f], float)[rows] for f in ("a", "b"))
        snap[f"mu_{split}"] = np.column_stack([(a - 1.25) * 4, (b - 1.0) * 0.5, np.zeros(len(a))]).astype(np.float32)
    np.savez_compressed(path, **snap)
    at = AppTest.from_file(str(ROOT / "pages" / "embedding.py"), default_timeout=90).run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert float(values["Hole error"]) < 0.1
    assert "Ratio hole / ring" in values and "Recon loss hole / ring" in values
