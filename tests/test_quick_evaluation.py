"""A sweep's quick evaluation (issue 25): what it computes, how it says so, and that its cheaper pieces give the
reference's numbers (docs/measures.md, "A sweep's quick evaluation"; bench/quick_eval_equivalence.py checks a
whole sweep)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vae.base.errors import UserError
from vae.base.fileio import jsonable
from vae.measures import analysis
from vae.measures.metrics import DCI_SETTINGS, dci, dci_setting_name
from vae.training import evaluate


def _known_codes(kind: str, n: int = 450, seed: int = 0):
    """Two factors of 3 levels each, coded perfectly, rotated by 45 degrees, or with factor b collapsed away;
    300 training and 150 test codes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, (n, 2))
    a, b = y[:, 0] + 0.25 * rng.normal(size=n), y[:, 1] + 0.25 * rng.normal(size=n)
    noise = 0.1 * rng.normal(size=n)
    z = {
        "perfect": lambda: np.column_stack([a, b, noise]),
        "rotated": lambda: np.column_stack([(a + b) / np.sqrt(2), (a - b) / np.sqrt(2), noise]),
        "collapsed": lambda: np.column_stack([a, 1e-3 * rng.normal(size=n), noise]),
    }[kind]()
    cut = 2 * n // 3
    return z[:cut], y[:cut], z[cut:], y[cut:]


def _dci_at(setting, codes):
    return dci(*codes, **{k: v for k, v in DCI_SETTINGS[setting].items() if k != "label"})


# Known answers at the reference setting: D ~ 0.96 / 0.00 / 0.37, C ~ 0.91 / 0.34 / 0.44, I ~ 0.96 / 0.92 / 0.63.
# Tolerances: the sweep setting was within 0.013 of the reference in D and C and within 0.04 in I (6 of 150 test
# codes) on these codes at seeds 0-2.
@pytest.mark.parametrize("kind", ["perfect", "rotated", "collapsed"])
def test_the_sweep_dci_setting_agrees_with_the_reference_on_known_answer_codes(kind):
    codes = _known_codes(kind)
    ref, quick = _dci_at("reference", codes), _dci_at("sweep", codes)
    for key, tol in (("disentanglement", 0.03), ("completeness", 0.03), ("informativeness_test", 0.05)):
        assert quick[key] == pytest.approx(ref[key], abs=tol), key
    expected = {"perfect": (0.85, 1.0), "rotated": (0.0, 0.1), "collapsed": (0.3, 0.6)}[kind]
    assert expected[0] <= quick["disentanglement"] <= expected[1]


def test_the_sweep_dci_setting_is_named_in_every_result():
    out = _dci_at("sweep", _known_codes("perfect", n=200))
    assert out["setting"] == "sweep" and out["n_estimators"] == 50 and out["learning_rate"] == 0.2
    assert "learning_rate=0.2" in out["note"] and DCI_SETTINGS["sweep"]["label"].startswith("sweep (50 boosting")
    assert dci_setting_name(100, 10_000) == "reference" and dci_setting_name(100, 10_000, 0.2) == "custom"
    assert dci_setting_name(20, 2000) == "fast"


def test_a_sweeps_quick_evaluation_uses_the_sweep_setting_and_a_full_one_the_reference():
    assert evaluate.sweep_evaluation("quick") == {"generator_metrics": False, "dci_setting": "sweep"}
    assert evaluate.sweep_evaluation("full") == {"generator_metrics": True, "dci_setting": "reference"}
    with pytest.raises(UserError, match="quick or full"):
        evaluate.sweep_evaluation("fast")
    import inspect

    assert inspect.signature(evaluate.evaluate_run).parameters["dci_setting"].default == "reference"


def test_jsonable_writes_arrays_as_the_element_walk_does():
    arrays = [
        np.arange(6, dtype=np.int16).reshape(2, 3),
        np.array([0.1, 2.5e-300, -3.0], dtype=np.float32),
        np.array([1.0, np.nan, np.inf, -np.inf]),
        np.array([True, False]),
        np.zeros((0, 3)),
    ]
    for a in arrays:
        walked = json.dumps(jsonable(a.tolist()))
        assert json.dumps(jsonable(a)) == walked
    assert jsonable(np.array([1.0, np.nan])) == [1.0, None]


def test_factor_movement_gives_the_same_numbers_with_the_factors_design_kept():
    rng = np.random.default_rng(3)
    f = rng.uniform(size=(500, 2))
    codes = np.column_stack([f[:, 0] ** 2, f[:, 1] + 0.3 * f[:, 0], rng.normal(size=500)])
    analysis._DESIGN_CACHE.clear()
    cold = analysis.factor_movement(codes, f)["movement"]
    warm = analysis.factor_movement(codes, f)["movement"]  # the design comes from the cache
    assert np.array_equal(cold, warm) and len(analysis._DESIGN_CACHE) == 1
    other = rng.uniform(size=(500, 2))
    analysis._DESIGN_CACHE.clear()
    fresh = analysis.factor_movement(codes, other)["movement"]
    analysis.factor_movement(codes, f)
    assert np.array_equal(analysis.factor_movement(codes, other)["movement"], fresh)  # not the other factors'


def test_the_pixel_pca_is_computed_once_per_dataset_and_again_for_other_images():
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 255, (60, 64), dtype=np.uint8)
    factors = rng.uniform(size=(60, 2))
    evaluate._PIXEL_PCA_CACHE.clear()
    first = evaluate._pixel_pca(pixels, factors, ["a", "b"])
    assert evaluate._pixel_pca(pixels.copy(), factors.copy(), ["a", "b"]) is first
    changed = pixels.copy()
    changed[0, 0] ^= 1
    again = evaluate._pixel_pca(changed, factors, ["a", "b"])
    assert again is not first
    expected = analysis.pixel_pca(changed, factors, ["a", "b"])
    assert np.allclose(again["abs_r"], expected["abs_r"]) and np.allclose(again["components"], expected["components"])


@pytest.mark.slow  # two evaluations of a real (tiny) run, TensorFlow loaded
def test_a_quick_evaluation_says_its_dci_setting_and_evaluate_again_gives_the_reference(trained_run):
    from vae.data.datasets import load_dataset
    from vae.model.inference import encode, load_run_model, recon_loss_from_codes, recon_loss_per_image
    from vae.runs.folder import read_config

    quick = evaluate.evaluate_run(trained_run, **evaluate.sweep_evaluation("quick"))
    saved = json.loads((trained_run / "evaluation.json").read_text())
    assert saved["summary"]["dci_setting"] == "sweep" and saved["settings"]["dci"].startswith("sweep (50")
    assert saved["metrics"]["dci"]["setting"] == "sweep" and quick["summary"]["factor_vae"] is None
    # reconstruction losses decoded from the codes: the model's own call gives the same numbers
    ds = load_dataset(read_config(trained_run)["config"]["dataset"])
    model = load_run_model(trained_run)
    images = np.asarray(ds.images)
    split = np.asarray(ds.columns["split"]).astype(str)
    for s, value in saved["recon_loss_per_split"].items():
        idx = np.flatnonzero(split == s)[:2000]
        assert value == pytest.approx(float(np.mean(recon_loss_per_image(model, images[idx]))), rel=1e-5)
    idx = np.flatnonzero(split == "train")[:50]
    assert np.allclose(
        recon_loss_from_codes(model, images[idx], encode(model, images[idx])),
        recon_loss_per_image(model, images[idx]),
        rtol=1e-5,
        atol=1e-7,
    )
    full = evaluate.evaluate_run(trained_run)  # Evaluate again on the pages, `python -m vae evaluate`
    assert full["summary"]["dci_setting"] == "reference" and full["metrics"]["dci"]["setting"] == "reference"
    assert full["summary"]["mig"] == pytest.approx(quick["summary"]["mig"])


def test_the_sweeps_answer_names_the_dci_setting_when_it_is_not_the_reference():
    from vae.sweeps import report

    def rows(setting):
        return [
            {"run": f"r{i}", "state": "finished", "gamma": g, "seed": s, "eval_dci_disentanglement": 0.1 * s + g,
             "eval_mig": 0.2, "eval_dci_setting": setting}
            for i, (g, s) in enumerate((g, s) for g in (0.0, 0.01) for s in range(3))
        ]  # fmt: skip

    quick = {a["metric"]: a for a in report.answer(rows("sweep"), {"gamma": [0.0, 0.01]})}
    assert quick["eval_dci_disentanglement"]["label"] == "DCI disentanglement (DCI setting: sweep)"
    assert "(DCI setting: sweep)" in quick["eval_dci_disentanglement"]["comparisons"][0]["words"]
    assert quick["eval_mig"]["label"] == "MIG"
    ref = {a["metric"]: a for a in report.answer(rows("reference"), {"gamma": [0.0, 0.01]})}
    assert ref["eval_dci_disentanglement"]["label"] == "DCI disentanglement"
