"""Reconstructions behave: Random says what it picked, results stay, the hole is marked only where there is one.

The model is replaced by a function that inverts the image (no TensorFlow): the page's behaviour,
not the network, is under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.test_pages import ROOT, captions
from vae.data import datasets
from vae.data import presets
from vae.views import plots, transects


@pytest.fixture
def fake_model(monkeypatch):
    """vae.model.inference's reconstruct / recon_loss_per_image replaced by cheap numpy, counting calls."""
    import pages._ui
    from vae.model import inference

    calls = {"reconstruct": 0}

    def reconstruct(model, images):
        calls["reconstruct"] += 1
        return 255 - np.asarray(images)

    monkeypatch.setattr(inference, "reconstruct", reconstruct)
    monkeypatch.setattr(
        inference,
        "recon_loss_per_image",
        lambda model, images: np.asarray(images, float).reshape(len(images), -1).mean(1) / 255,
    )
    monkeypatch.setattr(pages._ui, "model_of", lambda run_dir: "model")
    return calls


@pytest.fixture
def tiny_dataset(tmp_workspace):
    """A punctured dataset of 600 draws: its validation split has images in the covered ring (200 draws have
    none, so the hole comparison would not be shown)."""
    return datasets.write_dataset(
        presets.preset_spec("seed-punctured", n=600, image_size=32), tmp_workspace / "datasets" / "tiny"
    )


def full_dataset(root):
    return datasets.write_dataset(presets.preset_spec("seed-full", n=200, image_size=32), root / "datasets" / "full")


def page():
    return AppTest.from_file(str(ROOT / "pages" / "reconstructions.py"), default_timeout=60)


def button(at, label):
    return next(b for b in at.button if b.label.startswith(label))


def test_random_shows_the_index_it_picked(tiny_dataset, fake_run, fake_model):
    fake_run("r1", dataset=str(tiny_dataset))
    at = page().run()
    for _ in range(3):
        button(at, "Random").click().run()
        k = at.number_input(key="sample_k").value
        assert any(f"Random picked image {k} of validation" in c.value for c in at.caption)
    button(at, "Reconstruct").click().run()
    assert any(c.startswith(f"validation #{k}:") for c in captions(at))


def test_the_sample_and_the_transect_block_stay_on_screen_together(tiny_dataset, fake_run, fake_model):
    fake_run("r1", dataset=str(tiny_dataset))
    at = page().run()
    button(at, "Reconstruct").click().run()
    button(at, "Reconstruct transects and hole").click().run()
    assert not at.exception
    shown = captions(at)
    assert any(c.startswith("validation #0:") for c in shown)
    assert any(c.startswith("P1 / P2 / P3") for c in shown)
    assert any(c.startswith("Hole images") for c in shown)
    at.select_slider[0].set_value(1).run()  # any other widget: both stay
    assert any(c.startswith("validation #0:") for c in captions(at)) and any(c.startswith("P1") for c in captions(at))


def test_the_transect_block_is_kept_per_run_not_recomputed_on_a_switch(tiny_dataset, fake_run, fake_model):
    fake_run("r1", dataset=str(tiny_dataset))
    fake_run("r2", dataset=str(tiny_dataset))
    at = page().run()
    first = at.selectbox(key="run").value
    other = next(o for o in at.selectbox(key="run").options if first not in o)
    button(at, "Reconstruct transects").click().run()
    done = fake_model["reconstruct"]
    assert done > 0 and any(c.startswith("P1") for c in captions(at))
    at.selectbox(key="run").set_value(other.split()[0]).run()
    assert not any(c.startswith("P1") for c in captions(at))  # the other run has not been reconstructed
    at.selectbox(key="run").set_value(first).run()
    assert any(c.startswith("P1") for c in captions(at)) and fake_model["reconstruct"] == done


def test_no_hole_is_marked_on_a_dataset_without_one(tmp_workspace, fake_run, fake_model):
    ds_path = full_dataset(tmp_workspace)
    fake_run("r1", dataset=str(ds_path))
    at = page().run()
    assert not any(b.label == "Reconstruct transects and hole" for b in at.button)
    button(at, "Reconstruct transects").click().run()
    assert not at.exception
    text = " ".join(c.value for c in at.caption)
    assert "no hole" in text and "trained on here" in text and "Yellow boxes" not in text
    assert not any(m.label.startswith("Hole") for m in at.metric) and not at.metric


def _yellow_pixels(image):
    return int(np.all(image == plots.YELLOW, axis=-1).sum())


def test_the_transect_strips_box_the_hole_only_on_a_punctured_dataset(tiny_dataset, tmp_workspace):
    punctured, full = datasets.load_dataset(tiny_dataset), datasets.load_dataset(full_dataset(tmp_workspace))
    same = lambda x: np.asarray(x)  # noqa: E731
    loss = lambda x: np.ones(len(x))  # noqa: E731
    with_hole = transects.transect_block(punctured, same, loss)
    without = transects.transect_block(full, same, loss)
    assert with_hole["punctured"] and not without["punctured"]
    assert _yellow_pixels(with_hole["image"]) > 0 and _yellow_pixels(without["image"]) == 0
    # the same transect points lie in the study's hole region on both: only the punctured one marks them
    assert with_hole["in_region"] == without["in_region"] and any(without["in_region"].values())
    assert with_hole["n_hole"] == int((np.asarray(punctured.columns["split"]) == "hole").sum())
    assert "hole_loss" not in without


def test_hole_and_covered_ring_metrics_carry_counts_in_their_labels_not_as_deltas(tiny_dataset, fake_run, fake_model):
    fake_run("r1", dataset=str(tiny_dataset))
    at = page().run()
    button(at, "Reconstruct transects and hole").click().run()
    labels = [m.label for m in at.metric]
    assert any(lbl.startswith("Hole, ") and lbl.endswith(" images") for lbl in labels)
    assert any(lbl.startswith("Covered ring, ") for lbl in labels)
    assert all(not m.proto.delta for m in at.metric)
    assert any("Covered ring: the validation images" in c.value for c in at.caption)
