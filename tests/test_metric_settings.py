"""Metrics on disentanglement_lib's scale (docs/measures.md, "Disentanglement metrics"): DCI's reference
defaults, the labelled fast setting, notes beside uninformative numbers, settings recorded with every number."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier

from vae.measures.metrics import DCI_SETTINGS, dci, evaluate_all


def _toy(n=700, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, (n, 2))
    codes = np.column_stack(
        [y[:, 0] + 0.3 * rng.normal(size=n), y[:, 1] + y[:, 0] * 0.5 + 0.3 * rng.normal(size=n), rng.normal(size=n)]
    )
    return codes[:500], y[:500], codes[500:], y[500:]


def _library_dci(xtr, ytr, xte, yte):
    """disentanglement_lib dci.py, transcribed: GradientBoostingClassifier() with sklearn's defaults."""
    imp = np.zeros((xtr.shape[1], ytr.shape[1]))
    for j in range(ytr.shape[1]):
        model = GradientBoostingClassifier(random_state=0).fit(xtr, ytr[:, j])
        imp[:, j] = np.abs(model.feature_importances_)
    per_code = 1.0 - scipy.stats.entropy(imp.T + 1e-11, base=imp.shape[1])
    per_factor = 1.0 - scipy.stats.entropy(imp + 1e-11, base=imp.shape[0])
    return (np.sum(per_code * imp.sum(1) / imp.sum()), np.sum(per_factor * imp.sum(0) / imp.sum()))


@pytest.mark.slow  # 2 x 200 boosted trees per factor (~10 s on the shared machine): out of the fast lane
def test_dci_defaults_are_disentanglement_libs():
    sig = inspect.signature(dci).parameters
    assert sig["n_estimators"].default == 100 and sig["max_train"].default == 10_000
    xtr, ytr, xte, yte = _toy()
    out = dci(xtr, ytr, xte, yte)
    d, c = _library_dci(xtr, ytr, xte, yte)
    assert out["disentanglement"] == pytest.approx(d, abs=1e-9)
    assert out["completeness"] == pytest.approx(c, abs=1e-9)
    assert out["setting"] == "reference" and out["n_estimators"] == 100 and out["note"] == ""


def test_the_fast_setting_is_labelled_as_such():
    xtr, ytr, xte, yte = _toy(seed=1)
    cfg = {k: v for k, v in DCI_SETTINGS["fast"].items() if k != "label"}
    out = dci(xtr, ytr, xte, yte, **cfg)
    assert out["setting"] == "fast" and out["n_estimators"] == 20 and out["note"].startswith("fast setting")
    assert "not comparable" in DCI_SETTINGS["fast"]["label"]


def test_evaluate_all_records_dci_settings_and_notes_beside_uninformative_numbers():
    rng = np.random.default_rng(2)
    f = np.column_stack([rng.uniform(0.5, 2.0, 900), rng.uniform(0.0, 2.0, 900)])
    codes = np.column_stack([f, np.zeros(900)])  # a dead dim
    out = evaluate_all(codes[:700], f[:700], codes[700:], f[700:], dci_setting="fast")
    assert out["settings"]["dci"]["setting"] == "fast" and "fast" in out["settings"]["dci"]["label"]
    assert out["dci"]["setting"] == "fast" and "dci" in out["notes"]
    assert "modularity" in out["notes"] and "dead" in out["notes"]["modularity"]
    assert "continuous SAP" in out["notes"]["sap"]
    assert out["sap_continuous"]["score"] > 0.9 > out["sap"]["score"]
    assert out["factor_alignment"]["score"] >= 0.95
    with pytest.raises(Exception, match="dci_setting"):
        evaluate_all(codes[:700], f[:700], codes[700:], f[700:], dci_setting="slow")


def test_generator_scores_are_flagged_as_saturating_with_two_factors_only():
    from vae.measures.metrics import metric_notes

    two = metric_notes({"factor_vae": {"eval_accuracy": 1.0}, "beta_vae": {"eval_accuracy": 1.0}}, 2)
    assert "saturates" in two["factor_vae"] and "saturates" in two["beta_vae"]
    five = metric_notes({"factor_vae": {"eval_accuracy": 0.8}, "beta_vae": {"eval_accuracy": 0.8}}, 5)
    assert "factor_vae" not in five and "beta_vae" not in five
