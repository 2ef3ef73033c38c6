"""Known answers for vae.measures.analysis.hole_interpolation: the hole as a zero-shot test
(docs/measures.md, "The hole as a zero-shot test")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from vae.base.errors import UserError
from vae.measures.analysis import hole_interpolation, hole_of_spec, hole_test, jsonable

CENTRE, RADIUS = np.array([1.25, 1.0]), 0.3


def draws(n, seed):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0.5, 2.0, n), rng.uniform(0.0, 2.0, n)])


def linear(f):
    return np.column_stack([f[:, 0], f[:, 1], np.zeros(len(f))])


def gently_curved(f):
    return np.column_stack([np.sin(1.2 * f[:, 0]), 0.5 * f[:, 1] + 0.2 * f[:, 0] ** 2, 0.3 * np.cos(f[:, 1])])


def setup(sheet, noise, seed=0):
    """Training draws outside the hole; evaluated: every hole draw plus fresh covered draws."""
    rng = np.random.default_rng(seed)
    ab = draws(5000, seed)
    inside = np.hypot(*(ab - CENTRE).T) <= RADIUS
    train = ab[~inside]
    fresh = draws(600, seed + 1)
    evaluated = np.vstack([ab[inside], fresh[np.hypot(*(fresh - CENTRE).T) > RADIUS]])
    extent = np.ptp(sheet(ab), axis=0).max()
    codes_train = sheet(train) + noise * extent * rng.normal(size=(len(train), 3))
    codes_eval = sheet(evaluated) + noise * extent * rng.normal(size=(len(evaluated), 3))
    return train, codes_train, evaluated, codes_eval, int(inside.sum())


@pytest.mark.parametrize("sheet", [linear, gently_curved])
@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_a_smooth_sheet_predicts_the_hole(sheet, noise):
    train, ctr, ev, cev, _ = setup(sheet, noise)
    out = hole_interpolation(ctr, train, cev, ev)
    assert out["hole_error"] <= 0.1
    assert out["n_hole"] > 400 and out["n_ring"] > 50 and out["diameter"] > 0
    json.dumps(jsonable(out))


def test_the_linear_map_is_exact():
    train, ctr, ev, cev, _ = setup(linear, 0.0)
    out = hole_interpolation(ctr, train, cev, ev)
    assert out["hole_error"] < 1e-3 and out["ring_error"] < 1e-3
    assert out["diameter"] == pytest.approx(0.6, rel=1e-3)  # the map is the identity on (a, b)


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_hole_codes_snapped_to_the_nearest_training_code_score_worse(noise):
    train, ctr, ev, cev, n_hole = setup(linear, noise)
    nearest = NearestNeighbors(n_neighbors=1).fit(train).kneighbors(ev[:n_hole])[1][:, 0]
    snapped = cev.copy()
    snapped[:n_hole] = ctr[nearest]  # memorisation: each hole image gets a seen image's code
    out = hole_interpolation(ctr, train, snapped, ev)
    assert out["hole_error"] >= 0.12
    assert out["ratio"] > 2


@pytest.mark.parametrize("sheet", [linear, gently_curved])
def test_hole_codes_collapsed_onto_one_code_score_at_least_one(sheet):
    train, ctr, ev, cev, n_hole = setup(sheet, 0.02)
    collapsed = cev.copy()
    collapsed[:n_hole] = ctr[np.argmin(train.sum(axis=1))]  # one training code for all hole images
    assert hole_interpolation(ctr, train, collapsed, ev)["hole_error"] >= 1.0


def test_hole_interpolation_rejects_mismatched_input():
    with pytest.raises(UserError, match="dims"):
        hole_interpolation(np.zeros((10, 3)), draws(10, 0), np.zeros((2, 2)), draws(2, 1))
    with pytest.raises(UserError, match="centre"):
        hole_interpolation(np.zeros((10, 3)), draws(10, 0), np.zeros((2, 3)), draws(2, 1), center=(1.0,))


def test_hole_test_measures_around_the_datasets_own_hole():
    """The pages' and evaluate's set-up: fitted on training codes, evaluated on hole + validation codes, with
    the hole the dataset's spec names (the study's when it names none)."""
    assert hole_of_spec(None) == hole_of_spec({}) == ((1.25, 1.0), 0.3)
    spec = {"hole_center": [0.9, 1.4], "hole_radius": 0.25}
    assert hole_of_spec(spec) == ((0.9, 1.4), 0.25)
    ab = draws(3000, 3)
    inside = np.hypot(ab[:, 0] - 0.9, ab[:, 1] - 1.4) <= 0.25
    train, hole, val = ab[~inside][:2400], ab[inside], ab[~inside][2400:]
    out = hole_test(linear(train), train, linear(hole), hole, linear(val), val, spec)
    assert out["n_hole"] == len(hole) and list(out["center"]) == [0.9, 1.4] and out["radius"] == 0.25
    assert out["hole_error"] < 1e-3  # a linear sheet predicts its hole exactly
    direct = hole_interpolation(linear(train), train, linear(np.vstack([hole, val])), np.vstack([hole, val]),
                                center=(0.9, 1.4), radius=0.25)
    assert out["ring_error"] == direct["ring_error"] and out["n_ring"] == direct["n_ring"]
